package swift

import (
	"strconv"
	"strings"
)

// ConfigFromEnv returns the authentication settings named by the OpenStack
// client environment variables, read through getenv (os.Getenv in
// production). Container and the store's own settings are left empty.
//
// When OS_AUTH_URL is set, the OS_* variables are used:
//
//	OS_AUTH_URL                       AuthURL
//	OS_IDENTITY_API_VERSION           AuthVersion ("3", "2.0", "2")
//	OS_USERNAME, OS_USER_ID           User, UserID
//	OS_PASSWORD                       Key
//	OS_PROJECT_NAME (OS_TENANT_NAME)  Project
//	OS_PROJECT_ID (OS_TENANT_ID)      ProjectID
//	OS_USER_DOMAIN_NAME, _ID          Domain, DomainID
//	OS_PROJECT_DOMAIN_NAME, _ID       ProjectDomain, ProjectDomainID
//	OS_REGION_NAME                    Region
//	OS_INTERFACE (OS_ENDPOINT_TYPE)   EndpointType
//	OS_APPLICATION_CREDENTIAL_ID, _NAME, _SECRET
//
// Otherwise the swift v1 variables are: ST_AUTH (AuthURL), ST_USER (User),
// ST_KEY (Key), and AuthVersion is 1 unless ST_AUTH_VERSION says otherwise.
// A version that does not parse is passed on as -1, for New to reject.
func ConfigFromEnv(getenv func(string) string) Config {
	if getenv("OS_AUTH_URL") == "" {
		cfg := Config{
			AuthURL: getenv("ST_AUTH"),
			User:    getenv("ST_USER"),
			Key:     getenv("ST_KEY"),
		}
		if cfg.AuthURL != "" {
			cfg.AuthVersion = 1
			if v := getenv("ST_AUTH_VERSION"); v != "" {
				cfg.AuthVersion = parseVersion(v)
			}
		}
		return cfg
	}
	first := func(names ...string) string {
		for _, name := range names {
			if v := getenv(name); v != "" {
				return v
			}
		}
		return ""
	}
	cfg := Config{
		AuthURL:                     getenv("OS_AUTH_URL"),
		User:                        getenv("OS_USERNAME"),
		UserID:                      getenv("OS_USER_ID"),
		Key:                         getenv("OS_PASSWORD"),
		Project:                     first("OS_PROJECT_NAME", "OS_TENANT_NAME"),
		ProjectID:                   first("OS_PROJECT_ID", "OS_TENANT_ID"),
		Domain:                      getenv("OS_USER_DOMAIN_NAME"),
		DomainID:                    getenv("OS_USER_DOMAIN_ID"),
		ProjectDomain:               getenv("OS_PROJECT_DOMAIN_NAME"),
		ProjectDomainID:             getenv("OS_PROJECT_DOMAIN_ID"),
		Region:                      getenv("OS_REGION_NAME"),
		EndpointType:                first("OS_INTERFACE", "OS_ENDPOINT_TYPE"),
		ApplicationCredentialID:     getenv("OS_APPLICATION_CREDENTIAL_ID"),
		ApplicationCredentialName:   getenv("OS_APPLICATION_CREDENTIAL_NAME"),
		ApplicationCredentialSecret: getenv("OS_APPLICATION_CREDENTIAL_SECRET"),
	}
	if v := getenv("OS_IDENTITY_API_VERSION"); v != "" {
		cfg.AuthVersion = parseVersion(v)
	}
	return cfg
}

// parseVersion reads "3", "3.0", "2.0", "v3" as a major version, or -1.
func parseVersion(v string) int {
	v = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(v)), "v")
	major, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(major)
	if err != nil || n < 1 || n > 3 {
		return -1
	}
	return n
}
