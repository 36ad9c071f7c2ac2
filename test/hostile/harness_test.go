package hostile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/repo"

	"github.com/chartsync/chartsync/internal/testenv"
)

var binary string // the chartsync binary under test

func TestMain(m *testing.M) { testenv.MainWithBinary(m, &binary) }

// gitRepo is an upstream repository of charts, written by the attacker.
type gitRepo = testenv.GitRepo

func newRepo(t *testing.T) *gitRepo { return testenv.NewGitRepo(t) }

// site is one chartsync installation publishing one repository, "stable",
// of the git repository to a local store.
type site struct {
	t        *testing.T
	config   string
	stateDir string
	store    string // the local store's directory; the index is store/index.yaml
}

// newSite configures chartsync to publish the charts matching globs of r to
// a local store. extra goes at the top level of the config (before [git]);
// repoExtra goes into the [[repository]] table.
func newSite(t *testing.T, r *gitRepo, globs []string, extra, repoExtra string) *site {
	t.Helper()
	dir := t.TempDir()
	s := &site{t: t, config: filepath.Join(dir, "chartsync.toml"), stateDir: filepath.Join(dir, "state"), store: filepath.Join(dir, "store")}
	quoted := make([]string, len(globs))
	for i, g := range globs {
		quoted[i] = fmt.Sprintf("%q", g)
	}
	cfg := fmt.Sprintf(`state_dir = %q
%s
[git]
url = %q
branch = "main"
[[repository]]
name = "stable"
charts = [%s]
store = "main"
%s
[store.main]
type = "local"
path = %q
`, s.stateDir, extra, r.Dir, strings.Join(quoted, ", "), repoExtra, s.store)
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// outcome is what the JSON log says of one chart directory.
type outcome struct {
	Time    time.Time `json:"time"`
	Msg     string    `json:"msg"` // "published" or "chart failed"
	Dir     string    `json:"dir"`
	Chart   string    `json:"chart"`
	Version string    `json:"version"`
	Reason  string    `json:"reason"`
	Err     string    `json:"err"`
}

// result is one run of chartsync.
type result struct {
	code     int
	stdout   string
	stderr   string
	elapsed  time.Duration
	maxRSS   int64              // peak resident set size of the process and the children it waited for, bytes
	packing  time.Duration      // from the "git checkout" log line to the last one: discovery, packaging, publishing
	charts   map[string]outcome // by chart directory
	warnings []string           // lint warnings logged
}

// run runs chartsync with args (e.g. "run", "--once") and the site's config,
// JSON logs at debug level, and parses the per-chart outcomes. It fails the
// test if the process cannot be started or runs longer than 10 minutes.
func (s *site) run(args ...string) *result {
	s.t.Helper()
	args = append(args, "--config", s.config, "--log-format", "json", "--log-level", "debug")
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	timer := time.AfterFunc(10*time.Minute, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	res := &result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start), charts: map[string]outcome{}}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("chartsync %s: %v", strings.Join(args, " "), err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.maxRSS = ru.Maxrss * 1024
	}
	sc := bufio.NewScanner(strings.NewReader(res.stderr))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var checkout, last time.Time
	for sc.Scan() {
		var o outcome
		if json.Unmarshal(sc.Bytes(), &o) != nil {
			continue
		}
		last = o.Time
		switch o.Msg {
		case "git checkout":
			checkout = o.Time
		case "published", "chart failed":
			res.charts[o.Dir] = o
		case "lint":
			res.warnings = append(res.warnings, sc.Text())
		}
	}
	if !checkout.IsZero() {
		res.packing = last.Sub(checkout)
	}
	s.t.Logf("chartsync %s: exit %d in %v (%v after the checkout), peak RSS %d MB", strings.Join(args[:len(args)-6], " "), res.code,
		res.elapsed.Round(time.Millisecond), res.packing.Round(time.Millisecond), res.maxRSS>>20)
	return res
}

// mustRun runs chartsync and fails the test unless it exits with code.
func (s *site) mustRun(code int, args ...string) *result {
	s.t.Helper()
	res := s.run(args...)
	if res.code != code {
		s.t.Fatalf("chartsync %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.code, code, res.stdout, res.stderr)
	}
	return res
}

// published asserts that the chart in dir was published by this run.
func (res *result) published(t *testing.T, dir string) {
	t.Helper()
	if o, ok := res.charts[dir]; !ok || o.Msg != "published" {
		t.Errorf("%s: %+v, want published\nstdout:\n%s", dir, o, res.stdout)
	}
}

// failed asserts that the chart in dir failed with reason and an error
// containing every one of want, and returns the error text.
func (res *result) failed(t *testing.T, dir, reason string, want ...string) string {
	t.Helper()
	o, ok := res.charts[dir]
	if !ok || o.Msg != "chart failed" {
		t.Errorf("%s: %+v, want failed (%s)\nstdout:\n%s", dir, o, reason, res.stdout)
		return ""
	}
	if o.Reason != reason {
		t.Errorf("%s: reason %q, want %q (err: %s)", dir, o.Reason, reason, o.Err)
	}
	for _, w := range want {
		if !strings.Contains(o.Err, w) {
			t.Errorf("%s: error %q lacks %q", dir, o.Err, w)
		}
	}
	return o.Err
}

// only asserts that the run reported exactly the chart directories dirs
// (published or failed), nothing else.
func (res *result) only(t *testing.T, dirs ...string) {
	t.Helper()
	var got []string
	for d := range res.charts {
		got = append(got, d)
	}
	sort.Strings(got)
	sort.Strings(dirs)
	if strings.Join(got, ",") != strings.Join(dirs, ",") {
		t.Errorf("charts reported: %q, want %q\nstdout:\n%s", got, dirs, res.stdout)
	}
}

// index reads the store's index.yaml.
func (s *site) index() *repo.IndexFile {
	s.t.Helper()
	idx, err := repo.LoadIndexFile(filepath.Join(s.store, "index.yaml"))
	if err != nil {
		s.t.Fatal(err)
	}
	return idx
}

// indexed returns "name-version" of every index entry, sorted.
func (s *site) indexed() []string {
	s.t.Helper()
	var out []string
	for name, vs := range s.index().Entries {
		for _, v := range vs {
			out = append(out, name+"-"+v.Version)
		}
	}
	sort.Strings(out)
	return out
}

// stored returns the files of the store (slash-separated path -> bytes),
// without index.yaml.
func (s *site) stored() map[string][]byte {
	s.t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(s.store, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(s.store, p)
		if rel == "index.yaml" {
			return nil
		}
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		s.t.Fatal(err)
	}
	return out
}

// storedNames returns the sorted names of the store's files, without
// index.yaml.
func (s *site) storedNames() []string {
	var out []string
	for n := range s.stored() {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// want compares two string lists and reports a difference.
func want(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}
