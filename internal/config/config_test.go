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
		{"bad-prefix.toml", `type "ftp"`},
		{"duplicate-location.toml", "same store and prefix as repository a"},
		{"swift-bad-version.toml", "auth_version 4"},
		{"key-of-other-type.toml", `store.main: key bucket does not apply to type "local" (line 10)`},
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
	if want := filepath.Join(dir, "out"); c.Stores["l"].Path != want {
		t.Errorf("store path %q, want %q", c.Stores["l"].Path, want)
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
