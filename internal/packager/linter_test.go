package packager

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/chartsync/chartsync/internal/testenv"
)

// spinTemplate renders for minutes: 10^10 loop iterations.
const spinTemplate = "{{- range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}\n"

// hogTemplate renders 3 GB of output, 100 MB at a time.
const hogTemplate = "{{- range until 30 }}{{ repeat 100000000 \"a\" }}{{ end }}\n"

// TestLinterBoundsTime: a template that renders for minutes fails the chart
// when the lint's time is up, whatever the lint mode, and its verdict is
// cached (case 6).
func TestLinterBoundsTime(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, testenv.Merge(chartFiles("charts/foo", "foo", "1.0.0", ""), map[string]string{"charts/foo/templates/spin.yaml": spinTemplate}))
	l := testLinter(t)
	l.Timeout = 2 * time.Second
	start := time.Now()
	_, err := buildOne(t, root, "charts/foo", Options{Lint: LintWarn, Linter: l})
	d := time.Since(start)
	wantFail(t, err, ReasonLint, "lint took longer than 2s")
	t.Logf("spin: failed after %v", d)
	if d > 30*time.Second {
		t.Errorf("took %v, want about 2 s", d)
	}
	start = time.Now()
	_, err = buildOne(t, root, "charts/foo", Options{Linter: l})
	wantFail(t, err, ReasonLint, "lint took longer than 2s")
	if d := time.Since(start); d > time.Second {
		t.Errorf("second build took %v: the verdict was not cached", d)
	}
	if l.runs.Load() != 1 {
		t.Errorf("lint worker ran %d times, want 1", l.runs.Load())
	}
}

// TestLinterBoundsMemory: a template that allocates gigabytes fails the
// chart at the memory bound (case 6).
func TestLinterBoundsMemory(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, testenv.Merge(chartFiles("charts/foo", "foo", "1.0.0", ""), map[string]string{"charts/foo/templates/hog.yaml": hogTemplate}))
	l := testLinter(t)
	l.Memory = 512 << 20
	start := time.Now()
	_, err := buildOne(t, root, "charts/foo", Options{Linter: l})
	wantFail(t, err, ReasonLint, "lint used more than 512 MiB of memory")
	t.Logf("hog: failed after %v", time.Since(start))
}

// TestLinterCancel: a done context kills the worker and Build returns the
// context's error, not a chart failure.
func TestLinterCancel(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, testenv.Merge(chartFiles("charts/foo", "foo", "1.0.0", ""), map[string]string{"charts/foo/templates/spin.yaml": spinTemplate}))
	l := testLinter(t)
	fsys := os.DirFS(root)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err := Build(ctx, fsys, Chart{Dir: "charts/foo"}, Options{Linter: l})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Build = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("cancelled build returned after %v", d)
	}
	if _, ok := l.lookup(l.key("x")); ok || len(l.cache) != 0 {
		t.Errorf("a cancelled lint left a verdict: %v", l.cache)
	}
}

// TestLinterCache: verdicts are kept by package digest, in memory and in
// the directory, so a new Linter on the same directory lints nothing again;
// the findings are the same as the default Linter's, which caches nothing
// on disk.
func TestLinterCache(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, testenv.Merge(chartFiles("charts/foo", "foo", "1.0.0", ""), map[string]string{"charts/foo/templates/broken.yaml": "kind: [\n"}))
	_, want := buildOne(t, root, "charts/foo", Options{})
	dir := t.TempDir()
	l, err := NewLinter(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		_, err := buildOne(t, root, "charts/foo", Options{Linter: l})
		wantFail(t, err, ReasonLint, "[ERROR] templates/broken.yaml")
		if err.Error() != want.Error() {
			t.Errorf("build %d: %v, default Linter: %v", i, err, want)
		}
	}
	if l.runs.Load() != 1 {
		t.Errorf("worker ran %d times, want 1", l.runs.Load())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("cache files %v", files)
	}
	again, err := NewLinter(dir)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := buildOne(t, root, "charts/foo", Options{Linter: again, Lint: LintWarn})
	if err != nil {
		t.Fatal(err)
	}
	if again.runs.Load() != 0 || !strings.Contains(strings.Join(pkg.Warnings, "\n"), "[ERROR] templates/broken.yaml") {
		t.Errorf("new linter on the same directory ran %d times; warnings %q", again.runs.Load(), pkg.Warnings)
	}
}

// TestLinterBareEnvironment: the worker sees none of the parent's
// environment (credentials live there).
func TestLinterBareEnvironment(t *testing.T) {
	t.Setenv("CHARTSYNC_TEST_SECRET", "hunter2")
	l := testLinter(t)
	// Not a worker: a shell that prints its environment as a verdict.
	cmdline := `printf '{"warnings":["%s"]}' "$(env | tr '\n' ' ')"`
	l.exe = "/bin/sh"
	v, err := l.runArgs(context.Background(), "x", nil, "-c", cmdline)
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Join(v.Warnings, "")
	if strings.Contains(env, "hunter2") || !strings.Contains(env, "CHARTSYNC_INTERNAL_LINT_WORKER=x") {
		t.Errorf("worker environment: %s", env)
	}
}

// TestLinterWorkerEndsOnItsOwn: a worker whose parent never kills it (the
// parent was killed) exits soon after its time is up.
func TestLinterWorkerEndsOnItsOwn(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, testenv.Merge(chartFiles("foo", "foo", "1.0.0", ""), map[string]string{"foo/templates/spin.yaml": spinTemplate}))
	pkg, err := Build(context.Background(), os.DirFS(root), Chart{Dir: "foo"}, Options{Lint: LintWarn, Linter: &Linter{exe: "/bin/false", cache: map[string]Verdict{}}})
	if err == nil || pkg != nil {
		t.Fatalf("Build with a broken worker = %v, %v; want an error", pkg, err)
	}
	data := string(mustPackage(t, root))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = []string{LintWorkerChart + "=foo", LintWorkerTime + "=1s"}
	cmd.Stdin = strings.NewReader(data)
	start := time.Now()
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 4 {
		t.Errorf("worker ended with %v, want exit status 4", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("worker ran %v", d)
	}
}

// mustPackage packages the chart in root/foo without linting it.
func mustPackage(t *testing.T, root string) []byte {
	t.Helper()
	tr := newTree(os.DirFS(root), Limits{})
	files, _, err := tr.loadDir(context.Background(), "foo", false)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	data, err := writeArchive(ch)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestLintSkip: a build only for comparison lints nothing, starts no
// worker, and gives the same bytes as a linted build.
func TestLintSkip(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, testenv.Merge(chartFiles("charts/foo", "foo", "1.0.0", ""), map[string]string{"charts/foo/templates/broken.yaml": "kind: [\n"}))
	l := testLinter(t)
	skipped, err := buildOne(t, root, "charts/foo", Options{Lint: LintSkip, Linter: l})
	if err != nil {
		t.Fatal(err)
	}
	linted, err := buildOne(t, root, "charts/foo", Options{Lint: LintWarn})
	if err != nil {
		t.Fatal(err)
	}
	if skipped.Digest != linted.Digest || len(skipped.Warnings) != 0 || l.runs.Load() != 0 {
		t.Errorf("LintSkip: digest %s (linted %s), warnings %q, %d workers", skipped.Digest, linted.Digest, skipped.Warnings, l.runs.Load())
	}
}

// TestLintHelperOf: the helper next to the executable wins over the one in
// ../libexec/chartsync; with neither the error names both.
func TestLintHelperOf(t *testing.T) {
	root := t.TempDir()
	exe := filepath.Join(root, "bin", "chartsync")
	next := filepath.Join(root, "bin", LintHelper)
	libexec := filepath.Join(root, "libexec", "chartsync", LintHelper)
	_, err := lintHelperOf(exe)
	if err == nil || !strings.Contains(err.Error(), next) || !strings.Contains(err.Error(), libexec) {
		t.Errorf("no helper: %v, want an error naming %s and %s", err, next, libexec)
	}
	for _, tc := range []struct {
		name  string
		files map[string]os.FileMode
		want  string
	}{
		{"libexec", map[string]os.FileMode{libexec: 0o755}, libexec},
		{"next wins", map[string]os.FileMode{libexec: 0o755, next: 0o755}, next},
		{"not executable", map[string]os.FileMode{libexec: 0o755, next: 0o644}, libexec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.RemoveAll(root)
			for p, mode := range tc.files {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, mode); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := lintHelperOf(exe); err != nil || got != tc.want {
				t.Errorf("lintHelperOf = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
