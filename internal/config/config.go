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
	StateDir      string   `toml:"state_dir"`
	Schedule      string   `toml:"schedule"`
	Splay         Duration `toml:"splay"`
	ShutdownGrace Duration `toml:"shutdown_grace"`
	// CycleTimeout bounds a whole sync cycle: when it runs out the cycle is
	// cancelled and counted as a timeout.
	CycleTimeout Duration         `toml:"cycle_timeout"`
	Git          Git              `toml:"git"`
	HTTP         HTTP             `toml:"http"`
	Metrics      Metrics          `toml:"metrics"`
	Repositories []Repository     `toml:"repository"`
	Stores       map[string]Store `toml:"-"` // decoded by decodeStores
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
	// Timeout bounds one clone or fetch (with its checkout).
	Timeout Duration `toml:"timeout"`
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
	// IndexFormat is how index.yaml is written: "yaml" or "json" (helm
	// reads both; JSON parses about 6 times faster). Unset, an existing
	// index keeps its format and a new one is YAML.
	IndexFormat string `toml:"index_format"`
}

// Store is one [store.NAME] table: the keys every store takes, and the
// settings of its backend, decoded from the same table into the backend's
// own type so that a key of another backend is an unknown key, reported at
// its own line. Exactly one of Local, S3 and Swift is set, as Type says.
type Store struct {
	Type string `toml:"type"`
	// Timeout bounds each request to the store (a get, a create, a
	// replace, a listing).
	Timeout Duration `toml:"timeout"`

	Local *LocalStore `toml:"-"`
	S3    *S3Store    `toml:"-"`
	Swift *SwiftStore `toml:"-"`
}

// LocalStore is a [store.NAME] table of type "local".
type LocalStore struct {
	Path string `toml:"path"`
}

// S3Store is a [store.NAME] table of type "s3".
type S3Store struct {
	Bucket              string `toml:"bucket"`
	Region              string `toml:"region"`
	Endpoint            string `toml:"endpoint"`
	PathStyle           bool   `toml:"path_style"`
	Profile             string `toml:"profile"`
	AccessKeyIDFile     string `toml:"access_key_id_file"`
	SecretAccessKeyFile string `toml:"secret_access_key_file"`
}

// SwiftStore is a [store.NAME] table of type "swift".
type SwiftStore struct {
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

// Defaults of the timeouts.
const (
	DefaultCycleTimeout = 10 * time.Minute
	DefaultGitTimeout   = 2 * time.Minute
	DefaultStoreTimeout = time.Minute
)

// parse decodes TOML over the defaults, makes relative paths relative to
// dir (the config file's directory), and validates the result.
func parse(b []byte, dir string) (*Config, error) {
	c := &Config{
		StateDir:      "/var/lib/chartsync",
		Schedule:      "@every 2m",
		ShutdownGrace: Duration{5 * time.Minute},
		CycleTimeout:  Duration{DefaultCycleTimeout},
		Git:           Git{Branch: "master", Timeout: Duration{DefaultGitTimeout}},
		HTTP:          HTTP{ReadyMaxAge: Duration{15 * time.Minute}},
	}
	md, err := toml.Decode(string(b), c)
	if err != nil {
		return nil, err
	}
	var unknown []string
	for _, k := range md.Undecoded() {
		if k[0] != "store" {
			unknown = append(unknown, k.String()+lineOf(b, k))
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown key %s", strings.Join(unknown, ", "))
	}
	if !md.IsDefined("git", "timeout") && c.Git.Timeout.Duration > c.CycleTimeout.Duration {
		c.Git.Timeout = c.CycleTimeout // the default never outlives the cycle
	}
	if c.Stores, err = decodeStores(b); err != nil {
		return nil, err
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
	for _, s := range c.Stores {
		switch {
		case s.Local != nil:
			abs(&s.Local.Path)
		case s.S3 != nil:
			abs(&s.S3.AccessKeyIDFile)
			abs(&s.S3.SecretAccessKeyFile)
		case s.Swift != nil:
			abs(&s.Swift.KeyFile)
			abs(&s.Swift.ApplicationCredentialSecretFile)
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeStores decodes each [store.NAME] table into the settings of its
// type. A key that its type does not take is an unknown key, reported with
// the line of that table that sets it.
func decodeStores(b []byte) (map[string]Store, error) {
	var raw struct {
		Stores map[string]toml.Primitive `toml:"store"`
	}
	md, err := toml.Decode(string(b), &raw)
	if err != nil {
		return nil, err
	}
	out := map[string]Store{}
	for name, p := range raw.Stores {
		s := Store{Timeout: Duration{DefaultStoreTimeout}}
		if err := md.PrimitiveDecode(p, &s); err != nil {
			return nil, fmt.Errorf("store.%s: %w", name, err)
		}
		var settings any
		switch s.Type {
		case "local":
			s.Local = &LocalStore{}
			settings = s.Local
		case "s3":
			s.S3 = &S3Store{}
			settings = s.S3
		case "swift":
			s.Swift = &SwiftStore{}
			settings = s.Swift
		}
		if settings != nil {
			if err := md.PrimitiveDecode(p, settings); err != nil {
				return nil, fmt.Errorf("store.%s: %w", name, err)
			}
		}
		out[name] = s
	}
	var errs []error
	for _, k := range md.Undecoded() {
		if len(k) < 3 || k[0] != "store" {
			continue
		}
		typ := out[k[1]].Type
		if typ != "local" && typ != "s3" && typ != "swift" {
			continue // Validate reports the type itself
		}
		errs = append(errs, fmt.Errorf("store.%s: unknown key %s for type %q%s", k[1], strings.Join(k[2:], "."), typ, lineOf(b, k)))
	}
	return out, errors.Join(errs...)
}

var (
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	segmentRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// checkPrefix checks a prefix after parse has trimmed its leading and
// trailing slashes (so "/stable/" is "stable"). Anything else that is not
// already a clean path is refused, never rewritten: "./stable", "a//b",
// "a/./b", and "." or ".." as a segment.
func checkPrefix(p string) error {
	if p == "" {
		return nil
	}
	for _, seg := range strings.Split(p, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("prefix %q: empty path segment (\"//\"); write %q", p, path.Clean(p))
		case seg == "." || seg == "..":
			return fmt.Errorf("prefix %q: %q segments are not allowed; write the plain path", p, seg)
		case !segmentRE.MatchString(seg):
			return fmt.Errorf("prefix %q: only letters, digits, '_', '.', '-' and '/' separators", p)
		}
	}
	return nil
}

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
	if c.CycleTimeout.Duration <= 0 || c.Git.Timeout.Duration <= 0 {
		add("cycle_timeout and git.timeout must be positive")
	} else if c.Git.Timeout.Duration > c.CycleTimeout.Duration {
		add("git.timeout %s: must not be longer than cycle_timeout %s", c.Git.Timeout, c.CycleTimeout)
	}
	if c.Git.URL == "" {
		add("git.url: must be set")
	} else if err := CheckGitURL(c.Git.URL); err != nil {
		add("git.url: %v", err)
	}
	if c.Git.Branch == "" {
		add("git.branch: must not be empty")
	}
	if c.Git.TokenFile != "" && c.Git.TokenEnv != "" {
		add("git: set token_file or token_env, not both")
	}
	if c.Metrics.Textfile != "" && !strings.HasSuffix(c.Metrics.Textfile, ".prom") {
		add("metrics.textfile %q: must end in .prom (node_exporter's textfile collector reads no other file)", c.Metrics.Textfile)
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
		if err := checkPrefix(r.Prefix); err != nil {
			add("%s: %v", where, err)
		} else {
			for _, o := range c.Repositories[:i] {
				if o.Store == r.Store && o.Prefix == r.Prefix {
					add("%s: same store and prefix as repository %s (prefix %q)", where, o.Name, r.Prefix)
				}
			}
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
		if r.IndexFormat != "" && r.IndexFormat != "yaml" && r.IndexFormat != "json" {
			add("%s: index_format %q: must be \"yaml\" or \"json\"", where, r.IndexFormat)
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
	if s.Timeout.Duration <= 0 {
		return fmt.Errorf("timeout %s: must be positive", s.Timeout)
	}
	switch {
	case s.Local != nil:
		if !filepath.IsAbs(s.Local.Path) {
			return fmt.Errorf("path %q: must be an absolute path", s.Local.Path)
		}
	case s.S3 != nil:
		if s.S3.Bucket == "" {
			return errors.New("bucket: must be set")
		}
		if (s.S3.AccessKeyIDFile == "") != (s.S3.SecretAccessKeyFile == "") {
			return errors.New("access_key_id_file and secret_access_key_file go together")
		}
	case s.Swift != nil:
		if s.Swift.Container == "" {
			return errors.New("container: must be set")
		}
		if s.Swift.AuthVersion < 0 || s.Swift.AuthVersion > 3 {
			return fmt.Errorf("auth_version %d: must be 1, 2 or 3 (or unset: from the environment or auth_url)", s.Swift.AuthVersion)
		}
	default:
		return fmt.Errorf("type %q: must be local, s3 or swift", s.Type)
	}
	return nil
}

// lineOf returns " (line N)" for the line that assigns key inside its
// table, or "". The TOML decoder does not report where an undecoded key
// was, so the file is scanned: table headers set the current table (array
// tables match whatever their index) and a line "name = ..." in the table
// key's parent path matches. Dotted keys and inline tables are not followed.
func lineOf(b []byte, key toml.Key) string {
	var table []string
	parent := key[:len(key)-1]
	last := key[len(key)-1]
	assign := regexp.MustCompile(`^\s*(?:"` + regexp.QuoteMeta(last) + `"|'` + regexp.QuoteMeta(last) + `'|` + regexp.QuoteMeta(last) + `)\s*=`)
	for i, l := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[") {
			h := strings.Trim(strings.SplitN(t, "]", 2)[0], "[ ")
			table = table[:0]
			for _, part := range strings.Split(h, ".") {
				table = append(table, strings.Trim(strings.TrimSpace(part), `"'`))
			}
			continue
		}
		if slices.Equal(table, parent) && assign.MatchString(l) {
			return fmt.Sprintf(" (line %d)", i+1)
		}
	}
	return ""
}

// sshUserRE is a plain user name: what ssh URLs may carry before "@".
var sshUserRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// CheckGitURL refuses a git URL that carries credentials: they would be
// logged and written to the checkout's .git/config. It never parses the URL
// with net/url, which gives up on passwords containing '/', '#', '%' or a
// space and so would let them through. Rules: an http(s), git or file URL
// may hold no '@' at all (a literal '@' in a path is written %40); an ssh://
// or scp-like (user@host:path) URL may name a plain user, never a password.
// The error never repeats the URL.
func CheckGitURL(u string) error {
	const hint = "credentials in git.url are refused (they would appear in logs and in the checkout's .git/config): " +
		"put the token in [git] token_file (or token_env) and the user name in [git] username"
	if isLocalPath(u) {
		return nil
	}
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok { // scp-like: user@host:path
		if user, _, found := strings.Cut(u, "@"); found && !sshUserRE.MatchString(user) {
			return errors.New(hint)
		}
		return nil
	}
	switch strings.ToLower(scheme) {
	case "ssh", "git+ssh", "ssh+git":
		if user, _, found := strings.Cut(rest, "@"); found && !sshUserRE.MatchString(user) {
			return errors.New(hint)
		}
		return nil
	default:
		if strings.Contains(rest, "@") {
			return errors.New(hint + " (a literal '@' in the path is written %40)")
		}
		return nil
	}
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
