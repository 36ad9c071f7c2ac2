// Package config loads and validates chartsync's TOML configuration. Keys
// are decoded over defaults; an unknown key is an error naming it. Secrets
// are never stored in the file itself: keys ending in _file name a file to
// read, and the environment supplies the AWS and OpenStack conventions.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Default is where the Debian package installs the configuration.
const Default = "/etc/chartsync/chartsync.toml"

// Config is the whole configuration file.
type Config struct {
	StateDir      string           `toml:"state_dir"`
	Schedule      string           `toml:"schedule"`
	Splay         Duration         `toml:"splay"`
	ShutdownGrace Duration         `toml:"shutdown_grace"`
	Git           Git              `toml:"git"`
	HTTP          HTTP             `toml:"http"`
	Metrics       Metrics          `toml:"metrics"`
	Repositories  []Repository     `toml:"repository"`
	Stores        map[string]Store `toml:"store"`
}

// Git says where the charts come from.
type Git struct {
	URL            string `toml:"url"`
	Branch         string `toml:"branch"`
	SSHKeyFile     string `toml:"ssh_key_file"`
	KnownHostsFile string `toml:"known_hosts_file"`
	Username       string `toml:"username"`
	TokenFile      string `toml:"token_file"`
	TokenEnv       string `toml:"token_env"`
}

// HTTP configures the daemon's listener.
type HTTP struct {
	Listen        string   `toml:"listen"`
	SyncTokenFile string   `toml:"sync_token_file"`
	ReadyMaxAge   Duration `toml:"ready_max_age"`
}

// Metrics configures metric output outside the HTTP listener.
type Metrics struct {
	Textfile string `toml:"textfile"`
}

// Repository is one chart repository: charts found by globs in git,
// published under a prefix of a store.
type Repository struct {
	Name    string   `toml:"name"`
	Charts  []string `toml:"charts"`
	Store   string   `toml:"store"`
	Prefix  string   `toml:"prefix"`
	BaseURL string   `toml:"base_url"`
	Lint    string   `toml:"lint"`
	// Signing: the key (a user id or part of it) in a secret keyring file,
	// and an optional file holding its passphrase.
	SignKey        string `toml:"sign_key"`
	KeyringFile    string `toml:"keyring_file"`
	PassphraseFile string `toml:"passphrase_file"`
	// Size limits: index.yaml and each package above them are refused
	// (0: the publisher's defaults, 64 MiB and 20 MiB).
	MaxIndexSize   ByteSize `toml:"max_index_size"`
	MaxPackageSize ByteSize `toml:"max_package_size"`
}

// storeKeys lists the keys of a [store.NAME] table that each type takes;
// a key of another type is an error, not silently ignored.
var storeKeys = map[string][]string{
	"local": {"path"},
	"s3": {"bucket", "region", "endpoint", "path_style", "profile",
		"access_key_id_file", "secret_access_key_file"},
	"swift": {"auth_url", "auth_version", "container", "user", "key_file", "project",
		"project_id", "domain", "project_domain", "swift_region",
		"application_credential_id", "application_credential_secret_file"},
}

func appliesTo(key, typ string) bool {
	return key == "type" || slices.Contains(storeKeys[typ], key) || storeKeys[typ] == nil
}

// Store is one [store.NAME] table. Which keys apply depends on Type.
type Store struct {
	Type string `toml:"type"`

	// local
	Path string `toml:"path"`

	// s3
	Bucket              string `toml:"bucket"`
	Region              string `toml:"region"`
	Endpoint            string `toml:"endpoint"`
	PathStyle           bool   `toml:"path_style"`
	Profile             string `toml:"profile"`
	AccessKeyIDFile     string `toml:"access_key_id_file"`
	SecretAccessKeyFile string `toml:"secret_access_key_file"`

	// swift
	AuthURL                         string `toml:"auth_url"`
	AuthVersion                     int    `toml:"auth_version"`
	Container                       string `toml:"container"`
	User                            string `toml:"user"`
	KeyFile                         string `toml:"key_file"`
	Project                         string `toml:"project"`
	ProjectID                       string `toml:"project_id"`
	Domain                          string `toml:"domain"`
	ProjectDomain                   string `toml:"project_domain"`
	SwiftRegion                     string `toml:"swift_region"`
	ApplicationCredentialID         string `toml:"application_credential_id"`
	ApplicationCredentialSecretFile string `toml:"application_credential_secret_file"`
}

// Duration is a time.Duration written as a Go duration string ("2m30s").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// Load reads the file at path over the defaults and validates it.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := parse(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes TOML over the defaults and validates the result. Relative
// paths are taken as relative to the working directory.
func Parse(b []byte) (*Config, error) { return parse(b, ".") }

// parse decodes TOML over the defaults, makes relative paths relative to
// dir (the config file's directory), and validates the result.
func parse(b []byte, dir string) (*Config, error) {
	c := &Config{
		StateDir:      "/var/lib/chartsync",
		Schedule:      "@every 2m",
		ShutdownGrace: Duration{5 * time.Minute},
		Git:           Git{Branch: "master"},
		HTTP:          HTTP{ReadyMaxAge: Duration{15 * time.Minute}},
	}
	md, err := toml.Decode(string(b), c)
	if err != nil {
		return nil, err
	}
	if un := md.Undecoded(); len(un) > 0 {
		keys := make([]string, len(un))
		for i, k := range un {
			keys[i] = k.String() + lineOf(b, k[len(k)-1])
		}
		return nil, fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
	}
	for name, st := range c.Stores {
		for _, key := range md.Keys() {
			if len(key) == 3 && key[0] == "store" && key[1] == name && !appliesTo(key[2], st.Type) {
				return nil, fmt.Errorf("store.%s: key %s does not apply to type %q%s", name, key[2], st.Type, lineOf(b, key[2]))
			}
		}
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p, _ = filepath.Abs(filepath.Join(dir, *p))
		}
	}
	abs(&c.StateDir)
	if isLocalPath(c.Git.URL) {
		abs(&c.Git.URL)
	}
	for _, p := range []*string{&c.Git.SSHKeyFile, &c.Git.KnownHostsFile, &c.Git.TokenFile,
		&c.HTTP.SyncTokenFile, &c.Metrics.Textfile} {
		abs(p)
	}
	for i := range c.Repositories {
		r := &c.Repositories[i]
		if r.Lint == "" {
			r.Lint = "strict"
		}
		r.Prefix = strings.Trim(r.Prefix, "/")
		abs(&r.KeyringFile)
		abs(&r.PassphraseFile)
		r.BaseURL = strings.TrimRight(r.BaseURL, "/")
	}
	for name, s := range c.Stores {
		for _, p := range []*string{&s.Path, &s.AccessKeyIDFile, &s.SecretAccessKeyFile, &s.KeyFile, &s.ApplicationCredentialSecretFile} {
			abs(p)
		}
		c.Stores[name] = s
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	prefixRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)
)

// Validate checks values and cross references. It does not touch the
// network, the git URL or the stores.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if c.StateDir == "" || !filepath.IsAbs(c.StateDir) {
		add("state_dir %q: must be an absolute path", c.StateDir)
	}
	if c.Schedule == "" {
		add("schedule: must not be empty")
	}
	if c.Splay.Duration < 0 || c.ShutdownGrace.Duration < 0 || c.HTTP.ReadyMaxAge.Duration < 0 {
		add("splay, shutdown_grace and http.ready_max_age must not be negative")
	}
	if c.Git.URL == "" {
		add("git.url: must be set")
	}
	if c.Git.Branch == "" {
		add("git.branch: must not be empty")
	}
	if c.Git.TokenFile != "" && c.Git.TokenEnv != "" {
		add("git: set token_file or token_env, not both")
	}
	if c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			add("http.listen %q: %v", c.HTTP.Listen, err)
		}
	}
	if len(c.Repositories) == 0 {
		add("no [[repository]] configured")
	}
	seen := map[string]bool{}
	locations := map[string]string{}
	for i, r := range c.Repositories {
		where := fmt.Sprintf("repository %d (%s)", i+1, r.Name)
		if !nameRE.MatchString(r.Name) {
			add("%s: name must match %s", where, nameRE)
		}
		if seen[r.Name] {
			add("%s: duplicate name", where)
		}
		seen[r.Name] = true
		if len(r.Charts) == 0 {
			add("%s: charts: at least one glob", where)
		}
		for _, g := range r.Charts {
			if _, err := path.Match(g, ""); err != nil || path.IsAbs(g) || strings.Contains(g, "..") {
				add("%s: charts glob %q: must be a valid relative pattern inside the repository", where, g)
			}
		}
		if _, ok := c.Stores[r.Store]; !ok {
			add("%s: store %q is not a configured [store.NAME]", where, r.Store)
		}
		if r.Prefix != "" && !prefixRE.MatchString(r.Prefix) || strings.Contains(r.Prefix, "..") {
			add("%s: prefix %q: only letters, digits, '_', '.', '-' and '/' separators", where, r.Prefix)
		}
		if loc := r.Store + "/" + r.Prefix; locations[loc] != "" {
			add("%s: same store and prefix as repository %s", where, locations[loc])
		} else {
			locations[loc] = r.Name
		}
		if r.BaseURL != "" && !strings.HasPrefix(r.BaseURL, "http://") && !strings.HasPrefix(r.BaseURL, "https://") {
			add("%s: base_url %q: must be an http(s) URL", where, r.BaseURL)
		}
		if (r.SignKey == "") != (r.KeyringFile == "") || r.PassphraseFile != "" && r.SignKey == "" {
			add("%s: sign_key and keyring_file go together (passphrase_file needs both)", where)
		}
		if r.Lint != "strict" && r.Lint != "warn" {
			add("%s: lint %q: must be \"strict\" or \"warn\"", where, r.Lint)
		}
		if r.MaxIndexSize < 0 || r.MaxPackageSize < 0 {
			add("%s: max_index_size and max_package_size must not be negative", where)
		}
	}
	for name, s := range c.Stores {
		if err := s.validate(); err != nil {
			add("store %s: %v", name, err)
		}
	}
	return errors.Join(errs...)
}

func (s Store) validate() error {
	switch s.Type {
	case "local":
		if !filepath.IsAbs(s.Path) {
			return fmt.Errorf("path %q: must be an absolute path", s.Path)
		}
	case "s3":
		if s.Bucket == "" {
			return errors.New("bucket: must be set")
		}
		if (s.AccessKeyIDFile == "") != (s.SecretAccessKeyFile == "") {
			return errors.New("access_key_id_file and secret_access_key_file go together")
		}
	case "swift":
		if s.Container == "" {
			return errors.New("container: must be set")
		}
		if s.AuthVersion < 0 || s.AuthVersion > 3 {
			return fmt.Errorf("auth_version %d: must be 1, 2 or 3 (or unset: from the environment or auth_url)", s.AuthVersion)
		}
	default:
		return fmt.Errorf("type %q: must be local, s3 or swift", s.Type)
	}
	return nil
}

// lineOf returns " (line N)" for the first line that assigns key, or "".
// The TOML decoder does not report where an undecoded key was.
func lineOf(b []byte, key string) string {
	re := regexp.MustCompile(`^\s*"?` + regexp.QuoteMeta(key) + `"?\s*=`)
	for i, l := range strings.Split(string(b), "\n") {
		if re.MatchString(l) {
			return fmt.Sprintf(" (line %d)", i+1)
		}
	}
	return ""
}

// isLocalPath reports whether a git URL is a plain path rather than a URL
// (scheme://) or scp-like address (user@host:path).
func isLocalPath(u string) bool {
	if u == "" || strings.Contains(u, "://") {
		return false
	}
	colon := strings.Index(u, ":")
	return colon < 0 || strings.Contains(u[:colon], "/")
}

// ReadSecret returns the trimmed contents of a secret file named in the
// config, or "" when name is empty.
func ReadSecret(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
