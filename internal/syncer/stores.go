package syncer

import (
	"context"
	"fmt"

	"os"

	"github.com/chartsync/chartsync/internal/config"
	"github.com/chartsync/chartsync/internal/gitsrc"
	"github.com/chartsync/chartsync/internal/publisher/local"
	"github.com/chartsync/chartsync/internal/publisher/s3"
	"github.com/chartsync/chartsync/internal/publisher/store"
	"github.com/chartsync/chartsync/internal/publisher/swift"
)

// openStore builds the backend a [store.NAME] table describes. Secrets
// come from the *_file keys, else from the AWS or OpenStack conventions.
func openStore(ctx context.Context, sc config.Store) (store.Store, error) {
	switch sc.Type {
	case "local":
		return local.New(ctx, local.Config{Path: sc.Path})
	case "s3":
		id, err := config.ReadSecret(sc.AccessKeyIDFile)
		if err != nil {
			return nil, err
		}
		secret, err := config.ReadSecret(sc.SecretAccessKeyFile)
		if err != nil {
			return nil, err
		}
		return s3.New(ctx, s3.Config{
			Bucket: sc.Bucket, Region: sc.Region, Endpoint: sc.Endpoint, PathStyle: sc.PathStyle,
			Profile: sc.Profile, AccessKeyID: id, SecretAccessKey: secret,
		})
	case "swift":
		cfg := swift.ConfigFromEnv(lookupEnv)
		key, err := config.ReadSecret(sc.KeyFile)
		if err != nil {
			return nil, err
		}
		appSecret, err := config.ReadSecret(sc.ApplicationCredentialSecretFile)
		if err != nil {
			return nil, err
		}
		for _, f := range []struct {
			dst *string
			v   string
		}{
			{&cfg.AuthURL, sc.AuthURL}, {&cfg.User, sc.User}, {&cfg.Key, key},
			{&cfg.Project, sc.Project}, {&cfg.ProjectID, sc.ProjectID},
			{&cfg.Domain, sc.Domain}, {&cfg.ProjectDomain, sc.ProjectDomain},
			{&cfg.Region, sc.SwiftRegion}, {&cfg.ApplicationCredentialID, sc.ApplicationCredentialID},
			{&cfg.ApplicationCredentialSecret, appSecret},
		} {
			if f.v != "" {
				*f.dst = f.v
			}
		}
		if sc.AuthVersion != 0 {
			cfg.AuthVersion = sc.AuthVersion
		}
		cfg.Container = sc.Container
		return swift.New(ctx, cfg)
	}
	return nil, fmt.Errorf("type %q is not supported", sc.Type)
}

// gitAuth resolves the git credentials the config names.
func gitAuth(g config.Git) (gitsrc.Auth, error) {
	token, err := config.ReadSecret(g.TokenFile)
	if err != nil {
		return gitsrc.Auth{}, fmt.Errorf("git token: %w", err)
	}
	if g.TokenEnv != "" {
		token = lookupEnv(g.TokenEnv)
	}
	return gitsrc.Auth{
		SSHKeyFile:     g.SSHKeyFile,
		KnownHostsFile: g.KnownHostsFile,
		Username:       g.Username,
		Token:          token,
	}, nil
}

// lookupEnv reads credentials named by the config (token_env, and the AWS
// and OpenStack conventions). The store backends never read it themselves.
var lookupEnv = os.Getenv
