package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cliRun runs the CLI in-process and returns its exit status and output.
func cliRun(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	o := &options{stdout: &out, stderr: &out}
	cmd := newRootCmd(o)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	code := exitOK
	if err := cmd.Execute(); err != nil {
		code = exitUsage
		if ee, ok := err.(*exitError); ok {
			code = ee.code
		}
		out.WriteString("Error: " + err.Error())
	}
	return code, out.String()
}

// Issue 13 point 3: every configuration the daemon refuses, check-config
// refuses too, with exit status 2 and the same reason; the refused `run`
// (daemon and --once) and `plan` create nothing: no state directory, no
// store directory.
func TestCheckConfigRefusesWhatRunRefuses(t *testing.T) {
	for _, k := range []string{"ST_AUTH", "ST_USER", "ST_KEY", "OS_AUTH_URL", "CHARTSYNC_TEST_UNSET_TOKEN"} {
		t.Setenv(k, "")
	}
	secrets := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(secrets, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty, blank, token := write("empty", ""), write("blank", " \n\t\n"), write("token", "s3cr3t\n")
	missing := filepath.Join(secrets, "missing")

	tests := []struct {
		name    string
		top     string // top-level keys
		git     string // keys of [git]
		tables  string // [http], [metrics] tables
		repo    string // keys of the [[repository]]
		store   string // the [store.main] table
		wantErr string
	}{
		{name: "invalid schedule", top: `schedule = "every second"`, wantErr: `schedule "every second"`},
		{name: "schedule that never fires", top: `schedule = "0 0 30 2 *"`, wantErr: "never fires"},
		{name: "negative cycle timeout", top: `cycle_timeout = "-1s"`, wantErr: "cycle_timeout and git.timeout must be positive"},
		{name: "git timeout beyond the cycle", top: `cycle_timeout = "1m"`, git: `timeout = "2m"`, wantErr: "must not be longer than cycle_timeout"},
		{name: "missing sync token file", tables: "[http]\nsync_token_file = \"" + missing + "\"", wantErr: "http.sync_token_file"},
		{name: "empty sync token file", tables: "[http]\nsync_token_file = \"" + empty + "\"", wantErr: "is empty: POST /sync would be open to anyone"},
		{name: "blank sync token file", tables: "[http]\nsync_token_file = \"" + blank + "\"", wantErr: "is empty: POST /sync would be open to anyone"},
		{name: "missing git token file", git: `token_file = "` + missing + `"`, wantErr: "git token"},
		{name: "empty git token file", git: `token_file = "` + empty + `"`, wantErr: "git token: " + empty + " is empty"},
		{name: "unset git token variable", git: `token_env = "CHARTSYNC_TEST_UNSET_TOKEN"`, wantErr: "CHARTSYNC_TEST_UNSET_TOKEN (git.token_env) is not set"},
		{name: "password in the git url", git: `url = "https://alice:pa/ss@127.0.0.1/charts.git"`, wantErr: "token_file"},
		{name: "token as the git user", git: `url = "https://ghp_abc@127.0.0.1/charts.git"`, wantErr: "token_file"},
		{name: "prefix ./stable", repo: `prefix = "./stable"`, wantErr: `prefix "./stable"`},
		{name: "textfile not .prom", tables: "[metrics]\ntextfile = \"" + filepath.Join(secrets, "chartsync.txt") + "\"", wantErr: "must end in .prom"},
		{name: "missing signing keyring", repo: "sign_key = \"charts@example.org\"\nkeyring_file = \"" + missing + "\"", wantErr: "repository stable"},
		{name: "missing s3 secret file", store: "type = \"s3\"\nbucket = \"charts\"\nregion = \"us-east-1\"\naccess_key_id_file = \"" + token + "\"\nsecret_access_key_file = \"" + missing + "\"", wantErr: "secret_access_key_file"},
		{name: "empty s3 secret file", store: "type = \"s3\"\nbucket = \"charts\"\nregion = \"us-east-1\"\naccess_key_id_file = \"" + token + "\"\nsecret_access_key_file = \"" + empty + "\"", wantErr: "the file is empty"},
		{name: "swift without a user", store: "type = \"swift\"\nauth_url = \"http://127.0.0.1:1/auth/v1.0\"\ncontainer = \"charts\"", wantErr: "user (or application credential) is required"},
		{name: "misplaced store key", store: "type = \"local\"\npath = \"STORE\"\nbucket = \"charts\"", wantErr: `unknown key bucket for type "local"`},
		{name: "unknown key", top: `schedul = "@every 2m"`, wantErr: "unknown key schedul"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			state, storeDir := filepath.Join(dir, "state"), filepath.Join(dir, "store")
			gitKeys := tt.git
			if !strings.Contains(gitKeys, "url =") {
				gitKeys = "url = \"" + filepath.Join(dir, "git") + "\"\n" + gitKeys
			}
			storeTable := tt.store
			if storeTable == "" {
				storeTable = "type = \"local\"\npath = \"STORE\""
			}
			cfg := "state_dir = \"" + state + "\"\n" + tt.top + "\n" + tt.tables + "\n[git]\n" + gitKeys +
				"\n[[repository]]\nname = \"stable\"\ncharts = [\"charts/*\"]\nstore = \"main\"\n" + tt.repo +
				"\n[store.main]\n" + strings.ReplaceAll(storeTable, "STORE", storeDir) + "\n"
			file := filepath.Join(dir, "chartsync.toml")
			if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"check-config"}, {"run", "--once"}, {"run"}, {"plan"}} {
				code, out := cliRun(t, append(args, "--config", file)...)
				if code != exitUsage {
					t.Errorf("%s: exit %d, want %d\n%s", strings.Join(args, " "), code, exitUsage, out)
				}
				if !strings.Contains(out, tt.wantErr) {
					t.Errorf("%s: output does not contain %q:\n%s", strings.Join(args, " "), tt.wantErr, out)
				}
				for _, p := range []string{state, storeDir} {
					if _, err := os.Stat(p); !os.IsNotExist(err) {
						t.Errorf("%s created %s", strings.Join(args, " "), p)
					}
				}
			}
		})
	}
}

// A configuration check-config accepts creates nothing either.
func TestCheckConfigCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	state, storeDir := filepath.Join(dir, "state"), filepath.Join(dir, "store")
	cfg := "state_dir = \"" + state + "\"\n[git]\nurl = \"" + dir + "\"\n[[repository]]\nname = \"a\"\ncharts = [\"charts/*\"]\nstore = \"main\"\n[store.main]\ntype = \"local\"\npath = \"" + storeDir + "\"\n"
	file := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := cliRun(t, "check-config", "--config", file); code != exitOK {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, p := range []string{state, storeDir} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("check-config created %s", p)
		}
	}
}
