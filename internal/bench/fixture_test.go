// Package bench measures what a chartsync cycle costs on a repository the
// size of a real one (about 100 charts), side by side with the helm CLI
// doing the same work. It holds only tests and benchmarks; run them with
// `make bench` or
//
//	go test -run '^$' -bench . -benchtime 3x ./internal/bench/
//
// A plain `go test` only compiles the benchmarks and runs a quick check of
// the generated repository.
package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/chartsync/chartsync/internal/packager"
)

// numCharts is the size of the generated repository: Wikimedia's
// deployment-charts, the model user, has about 94 charts.
const numCharts = 100

// subchartEvery says how often a chart vendors a subchart under charts/.
const subchartEvery = 4

// numCommits is the length of the generated history (issue 10: at least
// 10,000 commits): the first adds the charts, each later one bumps one
// chart's version, in turn.
const numCommits = 10000

// upstream is a generated git repository of charts.
type upstream struct {
	dir    string   // the working tree, also the clone URL
	charts []string // chart directories relative to dir, sorted
}

// newUpstream writes numCharts charts under charts/ of a new git repository
// (branch main) in a temp dir of tb and commits them with the git CLI.
//
// Each chart is what `helm create` writes (Chart.yaml, values.yaml,
// .helmignore and nine templates including _helpers.tpl, NOTES.txt and a
// test hook), generated in-process with helm's own scaffolding, plus a
// ConfigMap and a files/ entry that differ per chart. Every
// subchartEvery-th chart also vendors a `helm create` subchart under
// charts/ and declares it as a dependency, as charts with a vendored
// database do. Every chart has a symlink, templates/_common.tpl, to a
// template shared by all (common/_common.tpl, outside charts/). Then
// numCommits-1 commits (git fast-import) bump one chart's version each,
// and the working tree is reset to the last one.
func newUpstream(tb testing.TB) *upstream {
	tb.Helper()
	u := &upstream{dir: tb.TempDir()}
	chartsDir := filepath.Join(u.dir, "charts")
	if err := os.MkdirAll(chartsDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	writeFile(tb, filepath.Join(u.dir, "common", "_common.tpl"), "{{- define \"common.note\" }}shared{{ end }}\n")
	chartYAMLs := make([]string, numCharts)
	for i := range numCharts {
		name := fmt.Sprintf("svc-%03d", i)
		dir, err := chartutil.Create(name, chartsDir)
		if err != nil {
			tb.Fatalf("create chart %s: %v", name, err)
		}
		chartYAML := readFile(tb, filepath.Join(dir, "Chart.yaml"))
		chartYAML = strings.Replace(chartYAML, "\nversion: 0.1.0\n", fmt.Sprintf("\nversion: 1.%d.%d\n", i/10, i%10), 1)
		if i%subchartEvery == 0 {
			if _, err := chartutil.Create("postgresql", filepath.Join(dir, "charts")); err != nil {
				tb.Fatalf("create subchart of %s: %v", name, err)
			}
			chartYAML += "dependencies:\n- name: postgresql\n  version: 0.1.0\n  repository: https://charts.example.org\n"
		}
		writeFile(tb, filepath.Join(dir, "Chart.yaml"), chartYAML)
		chartYAMLs[i] = chartYAML
		if err := os.Symlink("../../../common/_common.tpl", filepath.Join(dir, "templates", "_common.tpl")); err != nil {
			tb.Fatal(err)
		}
		writeFile(tb, filepath.Join(dir, "files", "app.conf"), fmt.Sprintf("# %s\nlisten = 0.0.0.0:%d\nworkers = %d\n", name, 8000+i, 1+i%8))
		writeFile(tb, filepath.Join(dir, "templates", "configmap.yaml"), `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "`+name+`.fullname" . }}
  labels:
    {{- include "`+name+`.labels" . | nindent 4 }}
data:
  app.conf: |-
    {{- .Files.Get "files/app.conf" | nindent 4 }}
`)
		u.charts = append(u.charts, filepath.ToSlash(filepath.Join("charts", name)))
	}
	u.git(tb, "init", "-q", "-b", "main")
	u.git(tb, "add", "-A")
	u.git(tb, "commit", "-q", "-m", fmt.Sprintf("%d charts", numCharts))
	u.history(tb, chartYAMLs)
	return u
}

// history appends numCommits-1 commits to main with git fast-import, the
// n-th setting chart i = n%numCharts's version to 1.<i/10>.<i%10>-<n> (a
// version distinct per commit), then resets the working tree to the new
// head and packs the repository, as a long-lived repository is.
func (u *upstream) history(tb testing.TB, chartYAMLs []string) {
	tb.Helper()
	var in bytes.Buffer
	for n := 2; n <= numCommits; n++ {
		i := n % numCharts
		y := strings.Replace(chartYAMLs[i], fmt.Sprintf("\nversion: 1.%d.%d\n", i/10, i%10),
			fmt.Sprintf("\nversion: 1.%d.%d-%d\n", i/10, i%10, n), 1)
		msg := fmt.Sprintf("bump svc-%03d", i)
		fmt.Fprintf(&in, "commit refs/heads/main\ncommitter bench <bench@example.org> %d +0000\ndata %d\n%s\n",
			1700000000+n*60, len(msg), msg)
		if n == 2 {
			in.WriteString("from refs/heads/main^0\n")
		}
		fmt.Fprintf(&in, "M 100644 inline charts/svc-%03d/Chart.yaml\ndata %d\n%s\n", i, len(y), y)
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir, cmd.Stdin = u.dir, &in
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("git fast-import: %v\n%s", err, out)
	}
	u.git(tb, "reset", "-q", "--hard", "main")
	u.git(tb, "repack", "-q", "-a", "-d")
}

// git runs the git CLI in the working tree with a fixed identity.
func (u *upstream) git(tb testing.TB, args ...string) {
	tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = u.dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@example.org",
		"GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@example.org",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func readFile(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func writeFile(tb testing.TB, name, data string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// TestUpstream checks the generated repository is what the benchmarks
// claim: numCharts top-level charts with distinct names, the vendored
// subcharts not counted as top-level, and one chart of each kind packaging
// and linting cleanly.
func TestUpstream(t *testing.T) {
	u := newUpstream(t)
	charts, errs := packager.Discover(t.Context(), os.DirFS(u.dir), []string{"charts/*"})
	if len(errs) > 0 {
		t.Fatalf("Discover errors: %v", errs)
	}
	if len(charts) != numCharts {
		t.Fatalf("Discover found %d charts, want %d", len(charts), numCharts)
	}
	names := map[string]bool{}
	for i, c := range charts {
		if c.Dir != u.charts[i] {
			t.Errorf("chart %d in %s, want %s", i, c.Dir, u.charts[i])
		}
		names[c.Metadata.Name] = true
	}
	if len(names) != numCharts {
		t.Errorf("%d distinct chart names, want %d", len(names), numCharts)
	}
	for _, c := range []packager.Chart{charts[0], charts[1]} { // with and without a subchart
		pkg, err := packager.Build(t.Context(), os.DirFS(u.dir), c, packager.Options{})
		if err != nil {
			t.Fatalf("Build %s: %v", c.Dir, err)
		}
		if want := len(c.Metadata.Dependencies); len(pkg.Metadata.Dependencies) != want {
			t.Errorf("%s: %d dependencies, want %d", c.Dir, len(pkg.Metadata.Dependencies), want)
		}
	}
	cmd := exec.Command("git", "rev-list", "--count", "main")
	cmd.Dir = u.dir
	if out, err := cmd.Output(); err != nil || strings.TrimSpace(string(out)) != fmt.Sprint(numCommits) {
		t.Errorf("git rev-list --count main = %q, %v; want %d commits", out, err, numCommits)
	}
	if target, err := os.Readlink(filepath.Join(u.dir, charts[0].Dir, "templates", "_common.tpl")); err != nil || target != "../../../common/_common.tpl" {
		t.Errorf("symlink templates/_common.tpl = %q, %v", target, err)
	}
	if len(charts[0].Metadata.Dependencies) != 1 || len(charts[1].Metadata.Dependencies) != 0 {
		t.Errorf("charts 0 and 1 have %d and %d dependencies, want 1 and 0",
			len(charts[0].Metadata.Dependencies), len(charts[1].Metadata.Dependencies))
	}
}
