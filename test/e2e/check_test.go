package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/chartsync/chartsync/internal/testenv"
)

// checkHistory makes a repository whose branch "feature" (forked from
// "main", with main merged back in) holds every kind of change `check`
// must see or ignore, one chart each; and branches "down-only" and
// "ignored-only" with one change each. It returns the repo.
func checkHistory(t *testing.T) *gitRepo {
	r := newGitRepo(t)
	sub := testenv.Chart("charts/vend/charts/sub", "sub", "0.1.0")
	r.Write(testenv.Merge(
		testenv.Chart("charts/tmpl", "tmpl", "1.0.0"),
		testenv.Chart("charts/vals", "vals", "1.0.0"),
		testenv.Chart("charts/vend", "vend", "1.0.0", "dependencies:\n- name: sub\n  version: 0.1.0"), sub,
		testenv.Chart("charts/ign", "ign", "1.0.0"),
		map[string]string{"charts/ign/.helmignore": "*.bak\n", "charts/ign/notes.bak": "one\n"},
		testenv.Chart("charts/bumped", "bumped", "1.0.0"),
		testenv.Chart("charts/down", "down", "2.0.0"),
		testenv.Chart("charts/old-name", "ren", "1.0.0"),
		testenv.Chart("charts/ren2", "ren2", "1.0.0"),
		testenv.Chart("charts/coll", "coll", "1.0.0"),
		testenv.Chart("charts/untouched", "untouched", "1.0.0"),
		testenv.Chart("charts/broken", "broken", "1.0.0"),
		testenv.Chart("charts/badver", "badver", "1.0.0"),
		// Charts reading outside their directory: a file:// dependency
		// and a symlink. Their directories' git trees never change here.
		testenv.Chart("charts/fdep", "fdep", "1.0.0", "dependencies:\n- name: common\n  version: 0.1.0\n  repository: file://../../libs/common"),
		testenv.Chart("libs/common", "common", "0.1.0"),
		testenv.Chart("charts/link", "link", "1.0.0"),
		map[string]string{"shared/extra.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: a\n", "charts/link/templates/extra.yaml": "-> ../../../shared/extra.yaml"},
	))
	r.Commit("base")

	r.Git("checkout", "-q", "-b", "down-only")
	r.Write(testenv.Chart("charts/down", "down", "1.5.0"))
	r.Commit("downgrade down")
	r.Git("checkout", "-q", "main")
	r.Git("checkout", "-q", "-b", "ignored-only")
	r.Write(map[string]string{"charts/ign/notes.bak": "two\n"})
	r.Commit("edit an ignored file")
	r.Git("checkout", "-q", "main")

	r.Git("checkout", "-q", "-b", "feature")
	r.Write(map[string]string{
		"charts/tmpl/templates/configmap.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-tmpl2\n",
		"charts/ign/notes.bak":                   "two\n",
		"charts/vend/charts/sub/values.yaml":     "replicas: 2\n",
		"charts/bumped/templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-bumped2\n",
		"libs/common/values.yaml":                "replicas: 5\n",
		"shared/extra.yaml":                      "apiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n",
	})
	r.Write(testenv.Chart("charts/bumped", "bumped", "1.0.1"))
	r.Commit("feature: template, ignored file, vendored subchart, bumped chart")
	r.Write(testenv.Merge(
		map[string]string{"charts/vals/values.yaml": "replicas: 3\n"},
		testenv.Chart("charts/down", "down", "1.5.0"),
		testenv.Chart("charts/coll2", "coll", "1.0.0"),
		testenv.Chart("charts/fna", "fn-1.0.0", "1.0.0"), // both fn-1.0.0-1.0.0.tgz
		testenv.Chart("charts/fnb", "fn", "1.0.0-1.0.0"),
		map[string]string{"charts/broken/templates/bad.yaml": "{{ .Values.replicas \n"},
		map[string]string{"charts/badver/Chart.yaml": "apiVersion: v2\nname: badver\nversion: 1.0\n"},
	))
	r.Git("mv", "charts/old-name", "charts/new-name")
	r.Git("mv", "charts/ren2", "charts/moved2")
	r.Write(map[string]string{"charts/new-name/values.yaml": "replicas: 4\n"})
	r.Commit("feature: values, downgrade, collision, broken, renames")

	// main moves on: untouched is bumped there; feature merges main.
	r.Git("checkout", "-q", "main")
	r.Write(testenv.Merge(testenv.Chart("charts/untouched", "untouched", "1.0.1"),
		map[string]string{"charts/untouched/values.yaml": "replicas: 9\n"}))
	r.Commit("main: bump untouched")
	r.Git("checkout", "-q", "feature")
	r.Git("merge", "-q", "--no-edit", "main")
	return r
}

type checkOutput struct {
	Base, Head string
	Failed     bool
	Findings   []struct {
		Kind, Severity, Name, Version, Dir, Reason, Message, Repository string
		BaseDir                                                         string   `json:"base_dir"`
		BaseVersion                                                     string   `json:"base_version"`
		Files                                                           []string `json:"files"`
		Others                                                          []string `json:"others"`
	}
}

func runCheck(t *testing.T, dir string, args ...string) (int, checkOutput, string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"check", "--output", "json"}, args...)...)
	cmd.Dir = dir
	var out strings.Builder
	cmd.Stdout = &out
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var o checkOutput
	if code < 2 {
		if err := json.Unmarshal([]byte(out.String()), &o); err != nil {
			t.Fatalf("check output: %v\n%s\n%s", err, out.String(), stderr.String())
		}
	}
	return code, o, stderr.String()
}

// TestCheck drives `chartsync check` over checkHistory: it finds exactly
// the planted findings, across a merge and renames.
func TestCheck(t *testing.T) {
	r := checkHistory(t)
	wt := filepath.Join(t.TempDir(), "wt")
	r.Git("worktree", "add", "-q", "--detach", wt, "feature")
	// A configuration whose store and state dir do not exist: check uses
	// only the repositories' charts, lint and names.
	site, _ := newLocalSite(t, r, "")
	// A CI clone of the change: the base is a remote branch; --no-local
	// makes git send a pack, as from a server.
	clone := filepath.Join(t.TempDir(), "clone")
	r.Git("clone", "-q", "--no-local", r.Dir, clone)
	mainID := r.Git("rev-parse", "main")

	all := []string{
		"broken charts/badver",
		"broken charts/broken",
		"collision charts/coll2",
		"collision charts/fna",
		"collision charts/fnb",
		"downgrade charts/down",
		"unbumped charts/fdep [charts/common/values.yaml]",
		"unbumped charts/link [templates/extra.yaml]",
		"unbumped charts/new-name [values.yaml]",
		"unbumped charts/tmpl [templates/configmap.yaml]",
		"unbumped charts/vals [values.yaml]",
		"unbumped charts/vend [charts/sub/values.yaml]",
	}
	for _, tc := range []struct {
		name      string
		dir       string // "" is the repository's checkout
		args      []string
		want      []string
		wantExit  int
		wantFails bool
	}{
		{"feature against main, head defaults to HEAD", "", []string{"--base", "main", "--charts", "charts/*"}, all, 1, true},
		{"in a linked worktree", wt, []string{"--base", "main", "--charts", "charts/*"}, all, 1, true},
		{"in a clone, base a remote branch", clone, []string{"--base", "origin/main", "--charts", "charts/*"}, all, 1, true},
		{"base a short commit id", "", []string{"--base", mainID[:10], "--charts", "charts/*"}, all, 1, true},
		{"explicit head", "", []string{"--base", "main", "--head", "feature", "--charts", "charts/*"}, all, 1, true},
		{"charts of the configured repositories", "", []string{"--base", "main", "--config", site.config}, all, 1, true},
		{"same commit", "", []string{"--base", "main", "--head", "main", "--charts", "charts/*"}, nil, 0, false},
		{"downgrade alone is a warning", "", []string{"--base", "main~1", "--head", "down-only", "--charts", "charts/*"}, []string{"downgrade charts/down"}, 0, false},
		{"helmignored file", "", []string{"--base", "main~1", "--head", "ignored-only", "--charts", "charts/*"}, nil, 0, false},
		{"globs select", "", []string{"--base", "main", "--charts", "charts/tmpl", "--charts", "charts/down"}, []string{"downgrade charts/down", "unbumped charts/tmpl [templates/configmap.yaml]"}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir
			if dir == "" {
				dir = r.Dir
			}
			code, out, stderr := runCheck(t, dir, tc.args...)
			if code != tc.wantExit {
				t.Errorf("exit %d, want %d\n%s", code, tc.wantExit, stderr)
			}
			if out.Failed != tc.wantFails {
				t.Errorf("failed %v, want %v", out.Failed, tc.wantFails)
			}
			var got []string
			for _, f := range out.Findings {
				if wantRepo := map[bool]string{true: "stable"}[strings.Contains(tc.name, "configured")]; f.Repository != wantRepo {
					t.Errorf("%s: repository %q, want %q", f.Dir, f.Repository, wantRepo)
				}
				s := f.Kind + " " + f.Dir
				if f.Kind == "unbumped" {
					s += " [" + strings.Join(f.Files, " ") + "]"
				}
				got = append(got, s)
			}
			sort.Strings(got)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("findings:\n%s\nwant:\n%s\n(%+v)", strings.Join(got, "\n"), strings.Join(tc.want, "\n"), out.Findings)
			}
		})
	}

	// Details: the rename names its old directory, the collision the
	// other one, broken the reason run gives; text output has one line
	// per finding.
	_, out, _ := runCheck(t, r.Dir, "--base", "main", "--charts", "charts/*")
	for _, f := range out.Findings {
		switch f.Dir {
		case "charts/new-name":
			if f.BaseDir != "charts/old-name" || f.Name != "ren" {
				t.Errorf("rename: %+v", f)
			}
		case "charts/coll2":
			if strings.Join(f.Others, ",") != "charts/coll" || f.Severity != "error" {
				t.Errorf("collision: %+v", f)
			}
		case "charts/down":
			if f.BaseVersion != "2.0.0" || f.Version != "1.5.0" || f.Severity != "warning" {
				t.Errorf("downgrade: %+v", f)
			}
		case "charts/broken":
			if f.Reason != "lint" {
				t.Errorf("broken template: reason %q, want lint: %s", f.Reason, f.Message)
			}
		case "charts/badver":
			if f.Reason != "version" {
				t.Errorf("broken version: reason %q, want version: %s", f.Reason, f.Message)
			}
		}
	}
	cmd := exec.Command(binary, "check", "--base", "main", "--charts", "charts/*")
	cmd.Dir = r.Dir
	code, text := runCmd(t, cmd)
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if code != 1 || len(lines) != len(all) {
		t.Errorf("text output: exit %d, %d lines, want 1 and %d:\n%s", code, len(lines), len(all), text)
	}
	for _, want := range []string{
		`error: unbumped: chart "vend" 1.0.0 (charts/vend): package changed without a version bump: charts/sub/values.yaml`,
		`warning: downgrade: chart "down" 1.5.0 (charts/down): version 1.5.0 is lower than 2.0.0 at base`,
		`error: broken: chart "badver" (charts/badver): invalid chart version`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}

	// Bad revisions and flags are usage errors.
	for _, args := range [][]string{
		{"--base", "no-such-branch", "--charts", "charts/*"},
		{"--charts", "charts/*"},
		{"--base", "main", "--output", "yaml", "--charts", "charts/*"},
		{"--base", "main", "--config", site.config, "--charts", "charts/*"},
		{"--base", "main", "--config", filepath.Join(t.TempDir(), "none.toml")},
	} {
		cmd := exec.Command(binary, append([]string{"check"}, args...)...)
		cmd.Dir = r.Dir
		if code, out := runCmd(t, cmd); code != 2 {
			t.Errorf("check %v: exit %d, want 2:\n%s", args, code, out)
		}
	}
}
