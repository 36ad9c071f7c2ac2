package syncer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chartsync/chartsync/internal/config"
	"github.com/chartsync/chartsync/internal/metrics"
)

// upstream is a git repository of charts made with the git CLI.
type upstream struct {
	t   *testing.T
	dir string
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	u := &upstream{t: t, dir: t.TempDir()}
	u.git("init", "-q", "-b", "main")
	return u
}

func (u *upstream) git(args ...string) {
	u.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = u.dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		u.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// chart writes a chart that lints cleanly into dir.
func (u *upstream) chart(dir, name, version string) {
	u.write(dir+"/Chart.yaml", fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\ndescription: test chart\n", name, version))
	u.write(dir+"/values.yaml", "replicas: 1\n")
	u.write(dir+"/templates/configmap.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-"+name+
		"\ndata:\n  replicas: {{ .Values.replicas | quote }}\n")
}

func (u *upstream) write(name, data string) {
	u.t.Helper()
	p := filepath.Join(u.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		u.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		u.t.Fatal(err)
	}
}

func (u *upstream) commit(msg string) {
	u.t.Helper()
	u.git("add", "-A")
	u.git("commit", "-q", "-m", msg)
}

// site is one installation: a state dir and a local store.
type site struct {
	t     *testing.T
	cfg   *config.Config
	store string
}

func newSite(t *testing.T, u *upstream) *site {
	t.Helper()
	dir := t.TempDir()
	s := &site{t: t, store: filepath.Join(dir, "store")}
	cfg, err := config.Parse(fmt.Appendf(nil, `state_dir = %q
[git]
url = %q
branch = "main"
[[repository]]
name = "r"
charts = ["charts/*"]
store = "main"
[store.main]
type = "local"
path = %q
`, filepath.Join(dir, "state"), u.dir, s.store))
	if err != nil {
		t.Fatal(err)
	}
	s.cfg = cfg
	return s
}

// run runs one cycle with a new Syncer, as `chartsync run --once` does,
// and returns the result, the Syncer (for its work counters) and the
// number of store requests the cycle made.
func (s *site) run() (*Result, *Syncer, int) {
	s.t.Helper()
	m := metrics.New(prometheus.NewRegistry(), "test", "test")
	sy, err := New(context.Background(), s.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), m)
	if err != nil {
		s.t.Fatal(err)
	}
	res := sy.Run(context.Background())
	if res.CycleErr() != nil {
		s.t.Fatalf("cycle failed: %v", res.CycleErr())
	}
	n := 0
	for _, op := range []string{metrics.OpGet, metrics.OpOpen, metrics.OpCreate, metrics.OpReplace, metrics.OpList} {
		n += int(testutil.ToFloat64(m.StoreOperations.WithLabelValues("local", op)))
	}
	return res, sy, n
}

// outcomes maps each chart directory to "outcome reason".
func outcomes(res *Result) map[string]string {
	out := map[string]string{}
	for _, c := range res.Charts {
		out[c.Dir] = strings.TrimSpace(string(c.Outcome) + " " + c.Reason)
	}
	return out
}

func wantOutcomes(t *testing.T, what string, res *Result, want map[string]string) {
	t.Helper()
	got := outcomes(res)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: outcomes %v, want %v", what, got, want)
	}
}

// A cycle with the commit and the index of the last good cycle discovers
// and packages nothing and makes 1 store request (the listing: the index
// is the one cached), even in a new process; it reports what the last
// cycle decided, failures included. Once such a cycle changed nothing, the
// next ones with the same listing replay it without reading the index
// cache, the digests or the builds. A new commit that changes one
// chart builds only that chart; one that changes what another chart's
// symlink points to builds that chart, and fails it (an edit without a
// bump). An index changed by someone else makes a full cycle.
func TestNoopCycle(t *testing.T) {
	u := newUpstream(t)
	u.chart("charts/a", "a", "1.0.0")
	u.chart("charts/b", "b", "1.0.0")
	u.write("shared/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-extra\n")
	if err := os.Symlink("../../../shared/extra.yaml", filepath.Join(u.dir, "charts/b/templates/extra.yaml")); err != nil {
		t.Fatal(err)
	}
	u.chart("charts/bad", "bad", "1.0.0")
	u.write("charts/bad/Chart.yaml", "apiVersion: v2\nname: bad\nversion: not-semver\n")
	u.commit("one")
	s := newSite(t, u)

	res, sy, _ := s.run()
	wantOutcomes(t, "first cycle", res, map[string]string{"charts/a": "published", "charts/b": "published", "charts/bad": "failed version"})
	if d := sy.work.discovered.Load(); d != 1 {
		t.Errorf("first cycle discovered %d times, want 1", d)
	}

	// The first no-op cycle reads the index and reconciles; it changes
	// nothing, so the next ones replay it from one listing.
	noop := map[string]string{"charts/a": "skipped", "charts/b": "skipped", "charts/bad": "failed version"}
	for i := range 3 {
		res, sy, ops := s.run()
		wantOutcomes(t, fmt.Sprintf("no-op cycle %d", i+1), res, noop)
		if d, b := sy.work.discovered.Load(), sy.work.built.Load(); d != 0 || b != 0 {
			t.Errorf("no-op cycle %d: discovered %d times and built %d charts, want none", i+1, d, b)
		}
		if want := min(i, 1); int(sy.work.replayed.Load()) != want {
			t.Errorf("no-op cycle %d: replayed %d times, want %d", i+1, sy.work.replayed.Load(), want)
		}
		if ops != 1 {
			t.Errorf("no-op cycle %d: %d store requests, want 1", i+1, ops)
		}
		if r := res.Repos[0]; r.Entries != 2 || r.GitCharts != 2 || r.GitVersions != 2 {
			t.Errorf("no-op cycle %d: repository %+v, want 2 entries, charts and versions", i+1, r)
		}
	}

	// The reconcile still runs: a package removed behind chartsync's back
	// is reported by a no-op cycle.
	tgz := filepath.Join(s.store, "a-1.0.0.tgz")
	data, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(tgz); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		res, sy, _ = s.run()
		if sy.work.discovered.Load() != 0 || fmt.Sprint(res.Repos[0].Missing) != "[a-1.0.0.tgz]" || int(sy.work.replayed.Load()) != i {
			t.Errorf("no-op cycle %d with a package removed: discovered %d times, replayed %d, missing %v; want 0, %d and a-1.0.0.tgz",
				i+1, sy.work.discovered.Load(), sy.work.replayed.Load(), res.Repos[0].Missing, i)
		}
	}
	if err := os.WriteFile(tgz, data, 0o644); err != nil {
		t.Fatal(err)
	}

	// A bump of one chart builds that chart only: b is known by content.
	u.chart("charts/a", "a", "1.0.1")
	u.commit("bump a")
	res, sy, _ = s.run()
	wantOutcomes(t, "bump", res, map[string]string{"charts/a": "published", "charts/b": "skipped", "charts/bad": "failed version"})
	if b := sy.work.built.Load(); b != 1 {
		t.Errorf("a commit bumping one chart built %d charts, want 1", b)
	}

	// What b's symlink points to is part of b's content.
	u.write("shared/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-extra2\n")
	u.commit("edit what b links to")
	res, sy, _ = s.run()
	differs := map[string]string{"charts/a": "skipped", "charts/b": "failed content_differs", "charts/bad": "failed version"}
	wantOutcomes(t, "edit behind a symlink", res, differs)
	if b := sy.work.built.Load(); b != 1 {
		t.Errorf("a commit changing what one chart links to built %d charts, want 1", b)
	}
	for i := range 2 {
		res, sy, _ = s.run()
		wantOutcomes(t, fmt.Sprintf("no-op cycle %d after the edit", i+1), res, differs)
		if int(sy.work.replayed.Load()) != i || len(res.Repos[0].Drifted) != 1 {
			t.Errorf("no-op cycle %d after the edit: replayed %d, drifted %v; want %d and charts/b", i+1, sy.work.replayed.Load(), res.Repos[0].Drifted, i)
		}
	}
	u.write("shared/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-extra\n")
	u.commit("undo")
	s.run()

	// Someone else writes the index: a full cycle, then no-op again.
	idx := filepath.Join(s.store, "index.yaml")
	later := time.Now().Add(time.Second)
	if err := os.Chtimes(idx, later, later); err != nil {
		t.Fatal(err)
	}
	_, sy, _ = s.run()
	if d := sy.work.discovered.Load(); d != 1 {
		t.Errorf("cycle after the index changed discovered %d times, want 1", d)
	}
	_, sy, _ = s.run()
	if d := sy.work.discovered.Load(); d != 0 {
		t.Errorf("cycle after that discovered %d times, want 0", d)
	}

	// Other settings (a reload): a full cycle.
	s.cfg.Repositories[0].Lint = "warn"
	_, sy, _ = s.run()
	if d := sy.work.discovered.Load(); d != 1 {
		t.Errorf("cycle with other settings discovered %d times, want 1", d)
	}
}

// output runs git in the repository and returns its output.
func (u *upstream) output(stdin string, args ...string) string {
	u.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Stdin = u.dir, strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.Output()
	if err != nil {
		u.t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// The tree's problems (which cost a read of every tree object) are logged
// by the first cycle at a commit, not by the cycles after it, even in a new
// process, and again at the next commit that has them.
func TestTreeProblemsOncePerCommit(t *testing.T) {
	u := newUpstream(t)
	u.chart("charts/a", "a", "1.0.0")
	u.commit("one")
	blob := u.output("x\n", "hash-object", "-w", "--stdin")
	crafted := func() {
		var entries []string
		for _, e := range strings.Split(u.output("", "ls-tree", "HEAD"), "\n") {
			if !strings.HasSuffix(e, "\tGIT~1") {
				entries = append(entries, e)
			}
		}
		tree := u.output(strings.Join(entries, "\n")+"\n100644 blob "+blob+"\tGIT~1\n", "mktree")
		commit := u.output("", "commit-tree", tree, "-p", "HEAD", "-m", "crafted")
		u.git("update-ref", "refs/heads/main", commit)
	}
	crafted()
	s := newSite(t, u)
	logged := func() int {
		var buf strings.Builder
		sy, err := New(context.Background(), s.cfg, slog.New(slog.NewTextHandler(&buf, nil)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if res := sy.Run(context.Background()); res.CycleErr() != nil {
			t.Fatal(res.CycleErr())
		}
		return strings.Count(buf.String(), "git tree entry left out")
	}
	for i, want := range []int{1, 0, 0} {
		if got := logged(); got != want {
			t.Errorf("cycle %d at the crafted commit logged %d tree problems, want %d", i+1, got, want)
		}
	}
	crafted() // a new commit with the same entry
	if got := logged(); got != 1 {
		t.Errorf("cycle at the next commit logged %d tree problems, want 1", got)
	}
}
