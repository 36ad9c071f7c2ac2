package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		file    string
		wantErr string // substring; "" means valid
	}{
		{"good.toml", ""},
		{"unknown-key.toml", "unknown key git.brnach (line 4)"},
		{"bad-syntax.toml", "line 1"},
		{"missing-store.toml", `store "nope" is not a configured [store.NAME]`},
		{"bad-values.toml", `invalid duration "soon"`},
		{"bad-prefix.toml", `prefix "a/../../b"`},
		{"bad-prefix.toml", `charts glob "../charts/*"`},
		{"bad-prefix.toml", `lint "loose"`},
		{"bad-prefix.toml", `index_format "xml": must be "yaml" or "json"`},
		{"bad-prefix.toml", `type "ftp"`},
		{"duplicate-location.toml", "same store and prefix as repository a"},
		{"swift-bad-version.toml", "auth_version 4"},
		{"key-of-other-type.toml", `store.main: unknown key bucket for type "local" (line 10)`},
		{"misplaced-key.toml", `store.b: unknown key region for type "local" (line 15)`},
		{"bad-textfile.toml", `metrics.textfile "/var/lib/prometheus/node-exporter/chartsync.txt": must end in .prom`},
		{"bad-timeouts.toml", `git.timeout 20m0s: must not be longer than cycle_timeout 10m0s`},
		{"bad-timeouts.toml", `store main: timeout 0s: must be positive`},
		{"does-not-exist.toml", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.wantErr, func(t *testing.T) {
			_, err := Load(filepath.Join("testdata", tt.file))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("no error, want %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestDefaultsAndNormalisation(t *testing.T) {
	c, err := Load("testdata/good.toml")
	if err != nil {
		t.Fatal(err)
	}
	r := c.Repositories[0]
	if r.Prefix != "stable" || r.BaseURL != "https://charts.example.org/stable" || r.Lint != "strict" {
		t.Errorf("repository not normalised: %+v", r)
	}
	if c.Splay.Duration != 20*time.Second || c.ShutdownGrace.Duration != 5*time.Minute {
		t.Errorf("durations: splay %v, grace %v", c.Splay, c.ShutdownGrace)
	}
}

func TestRelativePathsFollowTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := `state_dir = "state"
[git]
url = "../repo"
[[repository]]
name = "a"
charts = ["charts/*"]
store = "l"
[store.l]
type = "local"
path = "out"
`
	if err := os.WriteFile(filepath.Join(dir, "c.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(filepath.Join(dir, "c.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "state"); c.StateDir != want {
		t.Errorf("state_dir %q, want %q", c.StateDir, want)
	}
	if want := filepath.Join(filepath.Dir(dir), "repo"); c.Git.URL != want {
		t.Errorf("git.url %q, want %q", c.Git.URL, want)
	}
	if want := filepath.Join(dir, "out"); c.Stores["l"].Local.Path != want {
		t.Errorf("store path %q, want %q", c.Stores["l"].Local.Path, want)
	}
}

func TestGitURLKinds(t *testing.T) {
	for u, local := range map[string]bool{
		"/srv/git": true, "../git": true, "file:///srv/git": false,
		"https://example.org/r/x": false, "git@example.org:x.git": false, "ssh://git@example.org/x": false,
	} {
		if got := isLocalPath(u); got != local {
			t.Errorf("isLocalPath(%q) = %v, want %v", u, got, local)
		}
	}
}

// The documented example is a valid configuration.
func TestExampleIsValid(t *testing.T) {
	if _, err := Load("../../chartsync.toml.example"); err != nil {
		t.Fatal(err)
	}
}

// base is a valid configuration; tests append to it or replace its lines.
const base = `[git]
url = "GITURL"
[[repository]]
name = "a"
charts = ["charts/*"]
store = "main"
prefix = "PREFIX"
[store.main]
type = "local"
path = "/srv/charts"
`

func withGit(u string) string {
	return strings.Replace(strings.Replace(base, "GITURL", u, 1), "PREFIX", "a", 1)
}
func withPrefix(p string) string {
	return strings.Replace(strings.Replace(base, "PREFIX", p, 1), "GITURL", "/srv/git", 1)
}

// Issue 9 case 11: credentials in the git URL are refused at config time,
// whatever url.Parse makes of them, and the error never repeats them.
func TestGitURLCredentialsAreRefused(t *testing.T) {
	refused := []string{
		"https://alice:S3CRET@example.org/r/charts",
		"https://alice:S3C/RET@example.org/r/charts",
		"https://alice:S3C#RET@example.org/r/charts",
		"https://alice:S3C%zzRET@example.org/r/charts",
		"https://alice:S3C RET@example.org/r/charts",
		"https://ghp_TOKENTOKENTOKEN@example.org/r/charts",
		"http://alice:S3CRET@127.0.0.1:8080/charts.git",
		"git://S3CRET@example.org/charts.git",
		"ssh://git:S3CRET@example.org/charts.git",
		"ssh://git:S3C/RET@example.org/charts.git",
		"git:S3CRET@example.org:charts.git",
		"git:S3C/RET@example.org:charts.git",
		"file://alice:S3CRET@/srv/git",
	}
	for _, u := range refused {
		_, err := Parse([]byte(withGit(u)))
		if err == nil {
			t.Errorf("%q: accepted", u)
			continue
		}
		if !strings.Contains(err.Error(), "token_file") {
			t.Errorf("%q: error does not point to token_file: %v", u, err)
		}
		for _, word := range []string{"S3C", "RET", "TOKEN", "alice"} {
			if strings.Contains(u, word) && strings.Contains(err.Error(), word) {
				t.Errorf("%q: error repeats %q: %v", u, word, err)
			}
		}
	}
	accepted := []string{
		"https://example.org/r/charts", "ssh://git@example.org/charts.git", "git@example.org:charts.git",
		"file:///srv/git", "/srv/git@2", "https://example.org/r/a%40b",
	}
	for _, u := range accepted {
		if _, err := Parse([]byte(withGit(u))); err != nil {
			t.Errorf("%q: %v", u, err)
		}
	}
}

// Issue 9 case 16: a prefix is either normalised (surrounding slashes are
// trimmed) or refused, and the duplicate-location check compares the
// normalised form.
func TestPrefixesAreNormalisedOrRefused(t *testing.T) {
	for in, want := range map[string]string{"/stable": "stable", "stable/": "stable", "/a/b/": "a/b", "": "", "/": ""} {
		c, err := Parse([]byte(withPrefix(in)))
		if err != nil {
			t.Errorf("prefix %q: %v", in, err)
			continue
		}
		if got := c.Repositories[0].Prefix; got != want {
			t.Errorf("prefix %q normalised to %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"./stable": `prefix "./stable": "." segments are not allowed`,
		"a//b":     `prefix "a//b": empty path segment ("//"); write "a/b"`,
		"..":       `prefix "..": ".." segments are not allowed`,
		"a/../b":   `prefix "a/../b": ".." segments are not allowed`,
		"a/./b":    `prefix "a/./b": "." segments are not allowed`,
		"a b":      `prefix "a b": only letters`,
	} {
		_, err := Parse([]byte(withPrefix(in)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("prefix %q: error %v, want %q", in, err, want)
		}
	}
	two := withPrefix("/x/") + "[[repository]]\nname = \"b\"\ncharts = [\"other/*\"]\nstore = \"main\"\nprefix = \"x\"\n"
	if _, err := Parse([]byte(two)); err == nil || !strings.Contains(err.Error(), `same store and prefix as repository a (prefix "x")`) {
		t.Errorf("\"/x/\" and \"x\" in one store: %v", err)
	}
}

func TestGitTimeoutDefaultsWithinTheCycle(t *testing.T) {
	c, err := Parse([]byte("cycle_timeout = \"30s\"\n" + withPrefix("a")))
	if err != nil {
		t.Fatal(err)
	}
	if c.Git.Timeout.Duration != 30*time.Second {
		t.Errorf("git.timeout %s, want cycle_timeout 30s", c.Git.Timeout)
	}
	c, err = Parse([]byte(withPrefix("a")))
	if err != nil {
		t.Fatal(err)
	}
	if c.Git.Timeout.Duration != DefaultGitTimeout || c.CycleTimeout.Duration != DefaultCycleTimeout || c.Stores["main"].Timeout.Duration != DefaultStoreTimeout {
		t.Errorf("defaults: git %s, cycle %s, store %s", c.Git.Timeout, c.CycleTimeout, c.Stores["main"].Timeout)
	}
}
