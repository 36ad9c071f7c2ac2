package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chartsync/chartsync/internal/testenv"
)

// TestDrift: an indexed version whose build at the commit has other bytes
// is reported as drift, per chart, in the summary of every run, in the log
// once per chart and commit, and in chartsync_drifted_charts. Another
// tool's bytes of the same files are drift only; an unbumped edit is drift
// and a content_differs failure.
func TestDrift(t *testing.T) {
	r := newGitRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/alpha", "alpha", "1.0.0"), testenv.Chart("charts/beta", "beta", "1.0.0")))
	r.Commit("charts")
	textfile := filepath.Join(t.TempDir(), "chartsync.prom")
	s, store := newLocalSite(t, r, fmt.Sprintf("[metrics]\ntextfile = %q\n", textfile))

	// beta is stored by helm package before chartsync ever runs: adopted.
	if err := os.MkdirAll(store, 0o755); err != nil {
		t.Fatal(err)
	}
	newHelm(t).run("package", filepath.Join(r.Dir, "charts", "beta"), "--destination", store)
	gauge := func() string {
		t.Helper()
		b, err := os.ReadFile(textfile)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^chartsync_drifted_charts\{repository="stable"\} (\S+)$`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("no chartsync_drifted_charts in the textfile:\n%s", b)
		}
		return string(m[1])
	}
	logged := func(out, chart string) int {
		return len(regexp.MustCompile(`level=WARN msg="drift: [^"]*"[^\n]* chart=`+chart+` `).FindAllString(out, -1))
	}
	betaLine := regexp.MustCompile(`DRIFT stable: beta 1\.0\.0 \(charts/beta\): .*same files, other bytes`)
	alphaLine := regexp.MustCompile(`DRIFT stable: alpha 1\.0\.0 \(charts/alpha\): .*content_differs`)

	// First run: beta adopted from helm's bytes; it is indexed now, and
	// compared from the next cycle on.
	s.mustRun("run", "--once")
	out := s.mustRun("run", "--once")
	if !betaLine.MatchString(out) || logged(out, "beta") != 1 {
		t.Errorf("beta's drift not reported once in summary and log:\n%s", out)
	}
	if alphaLine.MatchString(out) || logged(out, "alpha") != 0 {
		t.Errorf("alpha reported as drift, but chartsync built it:\n%s", out)
	}
	if g := gauge(); g != "1" {
		t.Errorf("chartsync_drifted_charts = %s, want 1", g)
	}
	// Same commit: summary again, not the log.
	out = s.mustRun("run", "--once")
	if !betaLine.MatchString(out) || logged(out, "beta") != 0 {
		t.Errorf("same commit: want beta's drift in the summary and not logged again:\n%s", out)
	}

	// alpha edited without a bump: drift and a content_differs failure;
	// beta's drift is logged again for the new commit.
	r.Write(map[string]string{"charts/alpha/values.yaml": "replicas: 2\n"})
	r.Commit("unbumped edit")
	code, out := s.run("run", "--once")
	if code != 1 || !strings.Contains(out, "content differs") {
		t.Errorf("unbumped edit: exit %d, want 1 with a content differs failure:\n%s", code, out)
	}
	if !alphaLine.MatchString(out) || logged(out, "alpha") != 1 || !betaLine.MatchString(out) || logged(out, "beta") != 1 {
		t.Errorf("new commit: want both drifts in the summary and logged once:\n%s", out)
	}
	if g := gauge(); g != "2" {
		t.Errorf("chartsync_drifted_charts = %s, want 2", g)
	}

	// The edit reverted: alpha builds the indexed bytes again.
	r.Write(map[string]string{"charts/alpha/values.yaml": "replicas: 1\n"})
	r.Commit("revert")
	out = s.mustRun("run", "--once")
	if alphaLine.MatchString(out) || logged(out, "alpha") != 0 {
		t.Errorf("reverted: alpha still reported as drift:\n%s", out)
	}
	if g := gauge(); g != "1" {
		t.Errorf("chartsync_drifted_charts = %s, want 1", g)
	}
}
