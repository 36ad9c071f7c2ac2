package bench

import (
	"context"
	"fmt"
	"io"
	"io/fs"
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
	"github.com/chartsync/chartsync/internal/syncer"
	"github.com/chartsync/chartsync/internal/testenv"
)

// site is one chartsync installation: a state dir and a store (local
// unless newStoreSite made it).
type site struct {
	cfg     *config.Config
	toml    string // the configuration file's text
	state   string
	store   string // the local store's directory
	backend string // the store's type: "local", "s3" or "swift"
}

// newSite returns a configuration publishing u's charts/* to a new local
// store in a temp dir, with state in state, or in a new temp dir if state
// is "".
func newSite(tb testing.TB, u *upstream, state string) *site {
	tb.Helper()
	dir := tb.TempDir()
	s := &site{store: filepath.Join(dir, "store")}
	return s.configure(tb, u, state, fmt.Sprintf("[store.main]\ntype = \"local\"\npath = %q\n", s.store))
}

// configure sets s's configuration: u's charts/* published to the store
// the [store.main] table storeTOML describes, state in state (a new temp
// dir if "").
func (s *site) configure(tb testing.TB, u *upstream, state, storeTOML string) *site {
	tb.Helper()
	if state == "" {
		state = filepath.Join(tb.TempDir(), "state")
	}
	s.state = state
	s.toml = fmt.Sprintf(`state_dir = %q
[git]
url = %q
branch = "main"
[[repository]]
name = "bench"
charts = ["charts/*"]
store = "main"
%s`, s.state, u.dir, storeTOML)
	cfg, err := config.Parse([]byte(s.toml))
	if err != nil {
		tb.Fatal(err)
	}
	s.cfg = cfg
	s.backend = cfg.Stores["main"].Type
	return s
}

// run runs one cycle as `chartsync run --once` does (less the process
// start and the state dir lock): a new Syncer, then Run. It fails tb
// unless the cycle succeeded with published charts Published and the rest
// of the numCharts Skipped, and returns the number of store requests the
// cycle made.
func (s *site) run(tb testing.TB, published int) int {
	tb.Helper()
	ctx := context.Background()
	m := metrics.New(prometheus.NewRegistry(), "bench", "bench")
	sy, err := syncer.New(ctx, s.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), m)
	if err != nil {
		tb.Fatal(err)
	}
	res := sy.Run(ctx)
	if !res.OK() {
		tb.Fatalf("cycle failed: %v %v", res.Err, res.Failures())
	}
	count := map[syncer.Outcome]int{}
	for _, c := range res.Charts {
		count[c.Outcome]++
	}
	if count[syncer.Published] != published || count[syncer.Skipped] != numCharts-published {
		tb.Fatalf("cycle outcomes %v, want %d published and %d skipped", count, published, numCharts-published)
	}
	return storeRequests(m, s.backend)
}

// storeRequests sums the store operations m counted for backend.
func storeRequests(m *metrics.Metrics, backend string) int {
	n := 0
	for _, op := range []string{metrics.OpGet, metrics.OpOpen, metrics.OpCreate, metrics.OpReplace, metrics.OpList} {
		n += int(testutil.ToFloat64(m.StoreOperations.WithLabelValues(backend, op)))
	}
	return n
}

// snapshot maps every file below dir to its size and modification time.
func snapshot(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fmt.Sprintf("%d %d", fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// changed counts the files of after that are new or differ from before.
func changed(before, after map[string]string) int {
	n := 0
	for p, v := range after {
		if before[p] != v {
			n++
		}
	}
	return n
}

// BenchmarkColdPublish: one cycle on an empty store with a fresh state dir
// publishes all numCharts charts: git clone, discover, package and lint in
// parallel, store every .tgz and write the index.
func BenchmarkColdPublish(b *testing.B) {
	u := newUpstream(b)
	n := 0
	for b.Loop() {
		b.StopTimer()
		s := newSite(b, u, "")
		b.StartTimer()
		s.run(b, numCharts)
		b.StopTimer()
		if got := len(snapshot(b, s.store)); got < numCharts+1 {
			b.Fatalf("store holds %d files, want the %d packages and index.yaml", got, numCharts)
		}
		b.StartTimer()
		n++
	}
	b.ReportMetric(float64(n*numCharts)/b.Elapsed().Seconds(), "charts/s")
}

// BenchmarkColdPublishExistingClone is BenchmarkColdPublish without the
// clone: the state dir already holds the checkout (as it does after the
// first cycle), the store is empty. This is the work the helm CLI
// benchmarks do, which start from a working tree.
func BenchmarkColdPublishExistingClone(b *testing.B) {
	u := newUpstream(b)
	first := newSite(b, u, "")
	first.run(b, numCharts)
	n := 0
	for b.Loop() {
		b.StopTimer()
		s := newSite(b, u, first.state)
		// The digest cache describes first's store, and the lint verdicts
		// would spare the lint; a new install has neither.
		for _, dir := range []string{"digests", "lint"} {
			if err := os.RemoveAll(filepath.Join(s.state, dir)); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		s.run(b, numCharts)
		n++
	}
	b.ReportMetric(float64(n*numCharts)/b.Elapsed().Seconds(), "charts/s")
}

// BenchmarkNoopCycle: one cycle with nothing new upstream on a store that
// already holds every chart: git fetch, read the index and the store's
// listing, replay the last cycle's decisions, and write nothing.
// store-requests/op counts the store requests.
func BenchmarkNoopCycle(b *testing.B) {
	u := newUpstream(b)
	s := newSite(b, u, "")
	s.run(b, numCharts)
	index := filepath.Join(s.store, "index.yaml")
	before := snapshot(b, s.store)
	if _, ok := before[index]; !ok {
		b.Fatalf("no %s after the first cycle", index)
	}
	written, n, requests := 0, 0, 0
	for b.Loop() {
		b.StopTimer()
		time.Sleep(10 * time.Millisecond) // so a rewrite would show in the mtime
		b.StartTimer()
		requests += s.run(b, 0)
		b.StopTimer()
		after := snapshot(b, s.store)
		if after[index] != before[index] || len(after) != len(before) {
			b.Fatalf("a no-op cycle wrote to the store: index.yaml %q -> %q, %d -> %d files",
				before[index], after[index], len(before), len(after))
		}
		written += changed(before, after)
		b.StartTimer()
		n++
	}
	if written > 0 {
		b.Fatalf("a no-op cycle changed %d files in the store", written)
	}
	b.ReportMetric(float64(written)/float64(n), "files-written/op")
	b.ReportMetric(float64(requests)/float64(n), "store-requests/op")
}

// BenchmarkNoopCycleUndecided is BenchmarkNoopCycle without the last
// cycle's decisions (state_dir/decisions.json removed before each cycle):
// what a cycle with nothing new costs when it discovers every chart and
// checks every published version against the index (from the build cache:
// nothing is packaged), and reads every tree object for Problems.
func BenchmarkNoopCycleUndecided(b *testing.B) {
	u := newUpstream(b)
	s := newSite(b, u, "")
	s.run(b, numCharts)
	requests, n := 0, 0
	for b.Loop() {
		b.StopTimer()
		if err := os.Remove(filepath.Join(s.state, "decisions.json")); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		requests += s.run(b, 0)
		n++
	}
	b.ReportMetric(float64(requests)/float64(n), "store-requests/op")
}

// helmCLI runs the helm binary with its homes in a temp dir, so the
// benchmark neither reads nor writes the user's helm configuration.
type helmCLI struct {
	bin string
	env []string
}

func newHelm(tb testing.TB) *helmCLI {
	tb.Helper()
	home := tb.TempDir()
	return &helmCLI{bin: testenv.Helm(tb), env: append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))}
}

func (h *helmCLI) run(tb testing.TB, dir string, args ...string) {
	tb.Helper()
	cmd := exec.Command(h.bin, args...)
	cmd.Dir, cmd.Env = dir, h.env
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// publish does what a shell cron job does: `helm package` each chart in
// turn into out, then `helm repo index out` (with --merge of the existing
// index when merge is set).
func (h *helmCLI) publish(tb testing.TB, u *upstream, out string, merge bool) {
	tb.Helper()
	for _, c := range u.charts {
		h.run(tb, u.dir, "package", c, "--destination", out)
	}
	args := []string{"repo", "index", out}
	if merge {
		args = append(args, "--merge", filepath.Join(out, "index.yaml"))
	}
	h.run(tb, u.dir, args...)
}

// BenchmarkHelmCLIColdPublish is BenchmarkColdPublish's work done with the
// helm CLI on the working tree: `helm package` of every chart, one after
// another, then `helm repo index`. It neither fetches git nor lints.
func BenchmarkHelmCLIColdPublish(b *testing.B) {
	u := newUpstream(b)
	h := newHelm(b)
	n := 0
	for b.Loop() {
		b.StopTimer()
		out := filepath.Join(b.TempDir(), "repo")
		b.StartTimer()
		h.publish(b, u, out, false)
		b.StopTimer()
		if got := len(snapshot(b, out)); got != numCharts+1 {
			b.Fatalf("helm wrote %d files, want %d packages and index.yaml", got, numCharts)
		}
		b.StartTimer()
		n++
	}
	b.ReportMetric(float64(n*numCharts)/b.Elapsed().Seconds(), "charts/s")
}

// BenchmarkHelmCLINoop is the helm CLI's cycle with nothing new. The CLI
// cannot tell what is already published, so the cron job packages every
// chart again over the published files and re-indexes with --merge,
// rewriting every package and the index (files-written/op says how many).
func BenchmarkHelmCLINoop(b *testing.B) {
	u := newUpstream(b)
	h := newHelm(b)
	out := filepath.Join(b.TempDir(), "repo")
	h.publish(b, u, out, false)
	written, n := 0, 0
	for b.Loop() {
		b.StopTimer()
		before := snapshot(b, out)
		time.Sleep(10 * time.Millisecond) // so a rewrite shows in the mtime
		b.StartTimer()
		h.publish(b, u, out, true)
		b.StopTimer()
		written += changed(before, snapshot(b, out))
		b.StartTimer()
		n++
	}
	b.ReportMetric(float64(written)/float64(n), "files-written/op")
}
