package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chartsync/chartsync/internal/testenv"
)

// verifyHistory makes a history where alpha 1.0.0 is only in the first
// commit, beta 1.0.0 is edited without a bump after it was published, and
// gamma 2.0.0 appears last. Each commit is published by a normal cycle.
// It returns the commits, oldest first.
func verifyHistory(t *testing.T, r *gitRepo, s *site) []string {
	t.Helper()
	var commits []string
	step := func(files map[string]string, msg string, wantCode int) {
		t.Helper()
		r.Write(files)
		commits = append(commits, r.Commit(msg))
		if s == nil {
			return
		}
		if code, out := s.run("run", "--once"); code != wantCode {
			t.Fatalf("%s: run --once exit %d, want %d\n%s", msg, code, wantCode, out)
		}
	}
	step(testenv.Merge(testenv.Chart("charts/alpha", "alpha", "1.0.0"), testenv.Chart("charts/beta", "beta", "1.0.0")), "alpha and beta", 0)
	step(testenv.Merge(testenv.Chart("charts/alpha", "alpha", "1.1.0"), map[string]string{"charts/alpha/values.yaml": "replicas: 3\n"}), "alpha 1.1.0", 0)
	// An unbumped edit: content_differs, beta 1.0.0 stays as published.
	step(map[string]string{"charts/beta/values.yaml": "replicas: 5\n"}, "beta edited, not bumped", 1)
	step(testenv.Chart("charts/gamma", "gamma", "2.0.0"), "gamma", 1)
	return commits
}

type verifyLine struct {
	Repository, Name, Version, Digest, Status, Commit, Dir, Reason string
}

func verifyJSON(t *testing.T, s *site) (int, map[string]verifyLine) {
	t.Helper()
	code, out := runCmdStdout(t, s, "verify", "--output", "json")
	var lines []verifyLine
	if err := json.Unmarshal([]byte(out), &lines); err != nil {
		t.Fatalf("verify --output json: %v\n%s", err, out)
	}
	m := map[string]verifyLine{}
	for _, l := range lines {
		m[l.Name+"-"+l.Version] = l
	}
	return code, m
}

// runCmdStdout runs chartsync with the site's config and returns stdout
// only (the log and the error go to stderr).
func runCmdStdout(t *testing.T, s *site, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary, append(args, "--config", s.config)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, errOut.String())
	}
	return 0, out.String()
}

// TestVerify: on a store chartsync filled over a history, verify finds
// every entry's commit (the first one for alpha 1.0.0, which is gone at
// the head; the one before the unbumped edit for beta). A package replaced
// in the store, or built by helm package instead, differs: exit 1.
func TestVerify(t *testing.T) {
	r := newGitRepo(t)
	s, store := newLocalSite(t, r, "")
	commits := verifyHistory(t, r, s)

	code, out := s.run("verify")
	if code != 0 {
		t.Fatalf("verify: exit %d, want 0\n%s", code, out)
	}
	if !strings.Contains(out, "repository stable at "+commits[3]+": 4 verified, 0 differ, 0 not in git") {
		t.Errorf("verify summary:\n%s", out)
	}
	code, got := verifyJSON(t, s)
	want := map[string]string{"alpha-1.0.0": commits[0], "alpha-1.1.0": commits[1], "beta-1.0.0": commits[0], "gamma-2.0.0": commits[3]}
	if code != 0 || len(got) != len(want) {
		t.Fatalf("verify json: exit %d, %d entries, want 0 and %d: %v", code, len(got), len(want), got)
	}
	for k, c := range want {
		if got[k].Status != "verified" || got[k].Commit != c {
			t.Errorf("%s: %s at %s, want verified at %s", k, got[k].Status, got[k].Commit, c)
		}
	}

	// beta packaged by helm and written over the stored package and its
	// index digest: the same files, other bytes.
	h := newHelm(t)
	pkgDir := t.TempDir()
	r.Git("checkout", "-q", commits[0])
	h.run("package", filepath.Join(r.Dir, "charts", "beta"), "--destination", pkgDir)
	r.Git("checkout", "-q", "main")
	helmBytes, err := os.ReadFile(filepath.Join(pkgDir, "beta-1.0.0.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	idxFile := filepath.Join(store, "index.yaml")
	idx, err := os.ReadFile(idxFile)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(filepath.Join(store, "beta-1.0.0.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(idx), sha(old)) {
		t.Fatalf("index does not list beta's digest %s", sha(old))
	}
	writeFile(t, filepath.Join(store, "beta-1.0.0.tgz"), helmBytes)
	writeFile(t, idxFile, []byte(strings.Replace(string(idx), sha(old), sha(helmBytes), 1)))
	code, got = verifyJSON(t, s)
	if code != 1 || got["beta-1.0.0"].Status != "differs" || got["beta-1.0.0"].Reason != "no commit builds the indexed sha256" {
		t.Errorf("helm-built beta: exit %d, %+v; want exit 1, differs as no commit builds it", code, got["beta-1.0.0"])
	}
	code, out = s.run("verify")
	if code != 1 || !regexp.MustCompile(`stable\s+DIFFERS\s+beta\s+1\.0\.0\s+no commit builds`).MatchString(out) {
		t.Errorf("verify text: exit %d\n%s", code, out)
	}
	for _, k := range []string{"alpha-1.0.0", "alpha-1.1.0", "gamma-2.0.0"} {
		if got[k].Status != "verified" {
			t.Errorf("%s: %s, want verified", k, got[k].Status)
		}
	}

	// alpha 1.0.0 replaced in the store, the index untouched.
	writeFile(t, idxFile, idx)
	writeFile(t, filepath.Join(store, "beta-1.0.0.tgz"), old)
	writeFile(t, filepath.Join(store, "alpha-1.0.0.tgz"), helmBytes)
	code, got = verifyJSON(t, s)
	if code != 1 || got["alpha-1.0.0"].Status != "differs" || !strings.Contains(got["alpha-1.0.0"].Reason, "stored package has sha256 "+sha(helmBytes)) {
		t.Errorf("replaced alpha: exit %d, %+v; want exit 1, differs by its stored bytes", code, got["alpha-1.0.0"])
	}
	if got["beta-1.0.0"].Status != "verified" {
		t.Errorf("beta restored: %+v, want verified", got["beta-1.0.0"])
	}
}

func writeFile(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
