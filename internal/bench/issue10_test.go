package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chartsync/chartsync/internal/daemon"
	"github.com/chartsync/chartsync/internal/gitsrc"
	"github.com/chartsync/chartsync/internal/metrics"
	"github.com/chartsync/chartsync/internal/packager"
	"github.com/chartsync/chartsync/internal/packager/lintworker"
	"github.com/chartsync/chartsync/internal/syncer"
	"github.com/chartsync/chartsync/internal/testenv"
)

// The benchmarks of issue 10 (read charts from git objects), side by side
// with the git and helm CLIs doing the equivalent work. Servers (versitygw,
// Swift) are started by testenv on 127.0.0.1.
// TestMain makes the test binary its own lint helper, for the syncers and
// Linters the benchmarks run in this process.
func TestMain(m *testing.M) {
	lintworker.ServeSelf()
	testenv.Main(m)
}

// secretFile writes a secret to a file of its own, as the config wants it.
func secretFile(tb testing.TB, secret string) string {
	tb.Helper()
	f := filepath.Join(tb.TempDir(), "secret")
	if err := os.WriteFile(f, []byte(secret), 0o600); err != nil {
		tb.Fatal(err)
	}
	return f
}

// newStoreSite returns a site publishing u's charts to a new bucket of the
// shared versitygw ("s3") or a new container of the shared Swift ("swift").
func newStoreSite(tb testing.TB, u *upstream, backend string) *site {
	tb.Helper()
	var storeTOML string
	switch backend {
	case "s3":
		srv := testenv.S3(tb)
		storeTOML = fmt.Sprintf("[store.main]\ntype = \"s3\"\nbucket = %q\nregion = %q\nendpoint = %q\npath_style = true\naccess_key_id_file = %q\nsecret_access_key_file = %q\n",
			srv.NewBucket(tb), srv.Region, srv.Endpoint, secretFile(tb, srv.AccessKey), secretFile(tb, srv.SecretKey))
	case "swift":
		srv := testenv.Swift(tb)
		storeTOML = fmt.Sprintf("[store.main]\ntype = \"swift\"\nauth_url = %q\nauth_version = 1\ncontainer = %q\nuser = %q\nkey_file = %q\n",
			srv.AuthURL, srv.NewContainer(tb), srv.User, secretFile(tb, srv.Key))
	default:
		tb.Fatalf("unknown backend %s", backend)
	}
	return (&site{}).configure(tb, u, "", storeTOML)
}

// BenchmarkNoopCycleStores is BenchmarkNoopCycle on S3 (versitygw) and
// Swift: the no-op cycle's cost is mostly its store round trips.
func BenchmarkNoopCycleStores(b *testing.B) {
	u := newUpstream(b)
	for _, backend := range []string{"s3", "swift"} {
		b.Run(backend, func(b *testing.B) {
			s := newStoreSite(b, u, backend)
			s.run(b, numCharts)
			requests, n := 0, 0
			for b.Loop() {
				requests += s.run(b, 0)
				n++
			}
			b.ReportMetric(float64(requests)/float64(n), "store-requests/op")
		})
	}
}

// BenchmarkGitCLINoop is the git CLI's share of a no-op cycle: `git fetch`
// of the branch into a bare clone with nothing new, then `git rev-parse`.
// Compare BenchmarkNoopCycle, which also reads the index and lists the
// store.
func BenchmarkGitCLINoop(b *testing.B) {
	u := newUpstream(b)
	bare := filepath.Join(b.TempDir(), "bare.git")
	u.git(b, "clone", "-q", "--bare", "--single-branch", "--branch", "main", u.dir, bare)
	run := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = bare
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for b.Loop() {
		run("fetch", "-q", "origin", "+refs/heads/main:refs/heads/main")
		run("rev-parse", "main")
	}
}

// BenchmarkBumpPublishDaemon: a running daemon (in-process, as `chartsync
// run` wires it) has published every chart; one operation is a commit
// bumping one chart's version (made before the timer starts: the push),
// then POST /sync, until index.yaml lists the new version.
func BenchmarkBumpPublishDaemon(b *testing.B) {
	u := newUpstream(b)
	s := newSite(b, u, "")
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "bench", "bench")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sy, err := syncer.New(context.Background(), s.cfg, log, m)
	if err != nil {
		b.Fatal(err)
	}
	cycle := func(ctx context.Context) error {
		res := sy.Run(ctx)
		if !res.OK() {
			return errors.Join(res.CycleErr(), fmt.Errorf("failures: %v", res.Failures()))
		}
		return nil
	}
	d, err := daemon.New(daemon.Config{Schedule: "@every 24h", Listen: "127.0.0.1:0", ReadyMaxAge: time.Hour}, cycle, m, reg, log)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })

	index := filepath.Join(s.store, "index.yaml")
	waitFor := func(line string) {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if data, err := os.ReadFile(index); err == nil && strings.Contains(string(data), line+"\n") {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("index.yaml has no line %q after 2 minutes", line)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	waitFor("name: svc-099") // the start-up cycle published everything
	for d.Addr() == "" {
		time.Sleep(time.Millisecond)
	}
	url := "http://" + d.Addr() + "/sync"
	// Wait until the start-up cycle has ended: POST /sync answers 409
	// while one runs.
	post := func() int {
		resp, err := http.Post(url, "", nil)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for post() != http.StatusAccepted {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let that cycle end

	n := 0
	for b.Loop() {
		b.StopTimer()
		n++
		version := fmt.Sprintf("2.0.%d", n)
		chartYAML := filepath.Join(u.dir, "charts", "svc-007", "Chart.yaml")
		y := readFile(b, chartYAML)
		i := strings.Index(y, "\nversion: ")
		j := strings.Index(y[i+1:], "\n")
		writeFile(b, chartYAML, y[:i]+"\nversion: "+version+y[i+1+j:])
		u.git(b, "commit", "-q", "-am", "bump svc-007 to "+version)
		b.StartTimer()
		for {
			code := post()
			if code == http.StatusAccepted {
				break
			}
			if code != http.StatusConflict {
				b.Fatalf("POST /sync: %d", code)
			}
			time.Sleep(time.Millisecond)
		}
		waitFor("version: " + version)
	}
}

// BenchmarkFirstCycleBinary runs the built binary's first cycle, `chartsync
// run --once` with a new state dir and an empty local store: clone,
// package, lint and publish every chart. peak-RSS-MB is the chartsync
// process's peak resident memory (wait4's ru_maxrss; the lint workers are
// child processes, each bounded on its own); pack-MB is the size of the
// upstream's pack files.
func BenchmarkFirstCycleBinary(b *testing.B) {
	u := newUpstream(b)
	bin := chartsyncBinary(b)
	var peak int64
	for b.Loop() {
		b.StopTimer()
		s := newSite(b, u, "")
		cfg := filepath.Join(b.TempDir(), "chartsync.toml")
		writeFile(b, cfg, s.toml)
		cmd := exec.Command(bin, "--config", cfg, "run", "--once")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		b.StartTimer()
		err := cmd.Run()
		b.StopTimer()
		if err != nil {
			b.Fatalf("chartsync run --once: %v\n%s", err, out.String())
		}
		if got := len(snapshot(b, s.store)); got < numCharts+1 {
			b.Fatalf("store holds %d files, want %d packages and index.yaml", got, numCharts)
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			peak = max(peak, ru.Maxrss) // KiB on Linux
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MB")
	b.ReportMetric(float64(packSize(b, u.dir))/(1<<20), "pack-MB")
}

// packSize sums the sizes of the pack files of the repository in dir.
func packSize(tb testing.TB, dir string) int64 {
	tb.Helper()
	packs, err := filepath.Glob(filepath.Join(dir, ".git", "objects", "pack", "*.pack"))
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	for _, p := range packs {
		fi, err := os.Stat(p)
		if err != nil {
			tb.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// BenchmarkPackageChart packages one chart (svc-000, with a vendored
// subchart and a symlink) read from git objects, as a cycle does:
// "lint-child" with a new lint verdict cache each time (a chart never
// linted: the linter runs in a child process), "lint-cached" with the
// verdict cached (a chart built before: what a content-unchanged chart
// would cost if it were not skipped). Compare BenchmarkHelmCLIPackageChart.
func BenchmarkPackageChart(b *testing.B) {
	u := newUpstream(b)
	tree, err := gitsrc.Sync(context.Background(), gitsrc.Options{URL: u.dir, Branch: "main", Dir: filepath.Join(b.TempDir(), "git")})
	if err != nil {
		b.Fatal(err)
	}
	charts, errs := packager.Discover(context.Background(), tree.FS, []string{"charts/svc-000"})
	if len(errs) > 0 || len(charts) != 1 {
		b.Fatalf("discover: %v %v", charts, errs)
	}
	build := func(l *packager.Linter) {
		if _, err := packager.Build(context.Background(), tree.FS, charts[0], packager.Options{Lint: packager.LintStrict, Linter: l}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("lint-child", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			l, err := packager.NewLinter(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			build(l)
		}
	})
	b.Run("lint-cached", func(b *testing.B) {
		l, err := packager.NewLinter(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		build(l)
		for b.Loop() {
			build(l)
		}
	})
}

// BenchmarkHelmCLIPackageChart is `helm package` of the same chart from the
// working tree (no lint, not reproducible).
func BenchmarkHelmCLIPackageChart(b *testing.B) {
	u := newUpstream(b)
	h := newHelm(b)
	out := b.TempDir()
	for b.Loop() {
		h.run(b, u.dir, "package", "charts/svc-000", "--destination", out)
	}
}

// legacyEntries is the number of index entries BenchmarkNoopCycleLargeIndex
// adds: the model user's index lists about 3,300 chart versions.
const legacyEntries = 3300

// BenchmarkNoopCycleLargeIndex is BenchmarkNoopCycle on an index that also
// lists legacyEntries versions of an archived chart, published elsewhere
// (absolute urls: not this store's packages, so the reconcile leaves them
// alone). With nothing to discover or package, reading and parsing the
// index is the no-op cycle's main cost; index-KB is its size.
func BenchmarkNoopCycleLargeIndex(b *testing.B) {
	u := newUpstream(b)
	s := newSite(b, u, "")
	s.run(b, numCharts)
	index := filepath.Join(s.store, "index.yaml")
	data := readFile(b, index)
	var legacy strings.Builder
	legacy.WriteString("entries:\n  legacy:\n")
	for i := range legacyEntries {
		fmt.Fprintf(&legacy, "  - apiVersion: v2\n    name: legacy\n    version: 0.%d.%d\n    description: an archived chart\n"+
			"    created: \"2020-01-01T00:00:00Z\"\n    digest: %064x\n    urls:\n    - https://archive.example.org/legacy-0.%d.%d.tgz\n",
			i/100, i%100, i, i/100, i%100)
	}
	if !strings.Contains(data, "\nentries:\n") {
		b.Fatalf("index.yaml has no entries line:\n%.300s", data)
	}
	writeFile(b, index, strings.Replace(data, "\nentries:\n", "\n"+legacy.String(), 1))
	s.run(b, 0) // a full cycle: the index changed
	requests, n := 0, 0
	for b.Loop() {
		requests += s.run(b, 0)
		n++
	}
	b.ReportMetric(float64(requests)/float64(n), "store-requests/op")
	fi, err := os.Stat(index)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size())/1024, "index-KB")
}
