package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/publisher/store"
	"github.com/chartsync/chartsync/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func newTest(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	return New(reg, "1.2.3", "abc123"), reg
}

func TestNewInitialExposition(t *testing.T) {
	m, reg := newTest(t)
	_ = m
	want := fmt.Sprintf(`
# HELP chartsync_build_info A metric with a constant '1' value labelled by version, revision and goversion from which chartsync was built.
# TYPE chartsync_build_info gauge
chartsync_build_info{goversion=%q,revision="abc123",version="1.2.3"} 1
# HELP chartsync_cycles_total Sync cycles run, by result: success, chart_failures (some charts failed alone), error (the cycle failed) or timeout (the cycle, a git operation or a store request ran out of time).
# TYPE chartsync_cycles_total counter
chartsync_cycles_total{result="chart_failures"} 0
chartsync_cycles_total{result="error"} 0
chartsync_cycles_total{result="success"} 0
chartsync_cycles_total{result="timeout"} 0
# HELP chartsync_config_reloads_total Configuration reloads, by result: success or failure.
# TYPE chartsync_config_reloads_total counter
chartsync_config_reloads_total{result="failure"} 0
chartsync_config_reloads_total{result="success"} 0
# HELP chartsync_config_last_reload_successful 1 if the last configuration reload succeeded or none was tried, 0 if it failed.
# TYPE chartsync_config_last_reload_successful gauge
chartsync_config_last_reload_successful 1
# HELP chartsync_last_success_timestamp_seconds Unix time the last sync cycle that ran to completion (result success or chart_failures) ended.
# TYPE chartsync_last_success_timestamp_seconds gauge
chartsync_last_success_timestamp_seconds 0
# HELP chartsync_cycles_skipped_total Scheduled or triggered sync cycles skipped because a cycle was still running.
# TYPE chartsync_cycles_skipped_total counter
chartsync_cycles_skipped_total 0
`, runtime.Version())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"chartsync_build_info", "chartsync_cycles_total", "chartsync_config_reloads_total",
		"chartsync_config_last_reload_successful", "chartsync_last_success_timestamp_seconds",
		"chartsync_cycles_skipped_total",
	); err != nil {
		t.Fatal(err)
	}
	// Vectors whose label values are only known later have no series yet.
	for _, name := range []string{"chartsync_charts_published_total", "chartsync_git_commit_info", "chartsync_store_operations_total"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 0 {
			t.Errorf("%s: %d series (err %v), want 0", name, n, err)
		}
	}
}

func TestCycleEnded(t *testing.T) {
	start := time.Unix(1700000000, 0)
	end := start.Add(1500 * time.Millisecond)
	tests := []struct {
		name        string
		result      string
		wantSuccess float64
	}{
		{name: "success sets last success", result: ResultSuccess, wantSuccess: 1700000001.5},
		{name: "chart failures set last success", result: ResultChartFailures, wantSuccess: 1700000001.5},
		{name: "error leaves last success", result: ResultError, wantSuccess: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reg := newTest(t)
			m.CycleStarted(start)
			m.CycleEnded(start, end, tt.result)
			if got := testutil.ToFloat64(m.LastCycleStart); got != 1700000000 {
				t.Errorf("last cycle start = %v, want 1700000000", got)
			}
			if got := testutil.ToFloat64(m.LastSuccess); got != tt.wantSuccess {
				t.Errorf("last success = %v, want %v", got, tt.wantSuccess)
			}
			for _, r := range []string{ResultSuccess, ResultChartFailures, ResultError} {
				want := 0.0
				if r == tt.result {
					want = 1
				}
				if got := testutil.ToFloat64(m.CyclesTotal.WithLabelValues(r)); got != want {
					t.Errorf("cycles_total{result=%q} = %v, want %v", r, got, want)
				}
			}
			want := `
# HELP chartsync_cycle_duration_seconds Duration of sync cycles, whatever their result.
# TYPE chartsync_cycle_duration_seconds histogram
chartsync_cycle_duration_seconds_bucket{le="0.1"} 0
chartsync_cycle_duration_seconds_bucket{le="0.25"} 0
chartsync_cycle_duration_seconds_bucket{le="0.5"} 0
chartsync_cycle_duration_seconds_bucket{le="1"} 0
chartsync_cycle_duration_seconds_bucket{le="2.5"} 1
chartsync_cycle_duration_seconds_bucket{le="5"} 1
chartsync_cycle_duration_seconds_bucket{le="10"} 1
chartsync_cycle_duration_seconds_bucket{le="30"} 1
chartsync_cycle_duration_seconds_bucket{le="60"} 1
chartsync_cycle_duration_seconds_bucket{le="120"} 1
chartsync_cycle_duration_seconds_bucket{le="300"} 1
chartsync_cycle_duration_seconds_bucket{le="600"} 1
chartsync_cycle_duration_seconds_bucket{le="+Inf"} 1
chartsync_cycle_duration_seconds_sum 1.5
chartsync_cycle_duration_seconds_count 1
`
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "chartsync_cycle_duration_seconds"); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestSetCommitKeepsOneSeries(t *testing.T) {
	m, reg := newTest(t)
	m.SetCommit("1111111111111111111111111111111111111111", time.Unix(1600000000, 0))
	m.SetCommit("2222222222222222222222222222222222222222", time.Unix(1600000100, 0))
	want := `
# HELP chartsync_git_commit_info Constant 1, labelled with the id of the git head the last cycle worked on. Exactly one series.
# TYPE chartsync_git_commit_info gauge
chartsync_git_commit_info{commit="2222222222222222222222222222222222222222"} 1
# HELP chartsync_git_commit_timestamp_seconds Commit time (Unix time) of the git head the last cycle worked on.
# TYPE chartsync_git_commit_timestamp_seconds gauge
chartsync_git_commit_timestamp_seconds 1.6000001e+09
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"chartsync_git_commit_info", "chartsync_git_commit_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
}

func TestInitRepository(t *testing.T) {
	m, reg := newTest(t)
	m.InitRepository("stable")
	m.InitRepository("charts")
	tests := []struct {
		name string
		want int
	}{
		{"chartsync_charts_published_total", 2},
		{"chartsync_charts_skipped_total", 2},
		{"chartsync_index_repairs_total", 2},
		{"chartsync_charts_failed_total", 2 * len(Reasons)},
		{"chartsync_chart_conflicts", 2},
		{"chartsync_index_entries", 2},
		{"chartsync_git_charts", 2},
		{"chartsync_git_chart_versions", 2},
		{"chartsync_index_missing_packages", 2},
		{"chartsync_store_modified_packages", 2},
	}
	for _, tt := range tests {
		n, err := testutil.GatherAndCount(reg, tt.name)
		if err != nil || n != tt.want {
			t.Errorf("%s: %d series (err %v), want %d", tt.name, n, err, tt.want)
		}
	}
	m.ChartsFailed.WithLabelValues("stable", ReasonLint).Inc()
	m.IndexEntries.WithLabelValues("stable").Set(3300)
	if got := testutil.ToFloat64(m.ChartsFailed.WithLabelValues("stable", ReasonLint)); got != 1 {
		t.Errorf("charts_failed_total{stable,lint} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.IndexEntries.WithLabelValues("stable")); got != 3300 {
		t.Errorf("index_entries{stable} = %v, want 3300", got)
	}
}

func TestRecordConfigReload(t *testing.T) {
	m, reg := newTest(t)
	m.RecordConfigReload(errors.New("bad config"))
	if got := testutil.ToFloat64(m.ConfigLastReloadSuccessful); got != 0 {
		t.Errorf("last reload successful after failure = %v, want 0", got)
	}
	m.RecordConfigReload(nil)
	m.RecordConfigReload(nil)
	want := `
# HELP chartsync_config_reloads_total Configuration reloads, by result: success or failure.
# TYPE chartsync_config_reloads_total counter
chartsync_config_reloads_total{result="failure"} 1
chartsync_config_reloads_total{result="success"} 2
# HELP chartsync_config_last_reload_successful 1 if the last configuration reload succeeded or none was tried, 0 if it failed.
# TYPE chartsync_config_last_reload_successful gauge
chartsync_config_last_reload_successful 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"chartsync_config_reloads_total", "chartsync_config_last_reload_successful"); err != nil {
		t.Fatal(err)
	}
}

// memStore is the smallest store.Store that keeps the contract's answers; it
// exists to drive the instrumenting wrapper, not to stand in for a backend.
type memStore struct {
	mu      sync.Mutex
	objs    map[string][]byte
	vers    map[string]int
	listErr error
}

func newMemStore() *memStore {
	return &memStore{objs: map[string][]byte{}, vers: map[string]int{}}
}

func (s *memStore) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.objs[key]
	if !ok {
		return nil, "", store.ErrNotExist
	}
	return d, fmt.Sprint(s.vers[key]), nil
}

func (s *memStore) Create(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objs[key]; ok {
		return store.ErrExist
	}
	s.objs[key] = data
	s.vers[key]++
	return nil
}

func (s *memStore) Replace(ctx context.Context, key string, data []byte, version string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.objs[key]
	switch {
	case version == "" && ok:
		return "", store.ErrConflict
	case version != "" && !ok:
		return "", store.ErrNotExist
	case version != "" && version != fmt.Sprint(s.vers[key]):
		return "", store.ErrConflict
	}
	s.objs[key] = data
	s.vers[key]++
	return fmt.Sprint(s.vers[key]), nil
}

func (s *memStore) List(ctx context.Context, prefix string) ([]store.Object, error) {
	if s.listErr != nil {
		return nil, s.listErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Object
	for k, d := range s.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, store.Object{Key: k, Size: int64(len(d)), Version: fmt.Sprint(s.vers[k])})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *memStore) Open(ctx context.Context, key string) (io.ReadCloser, store.Object, error) {
	d, v, err := s.Get(ctx, key)
	if err != nil {
		return nil, store.Object{}, err
	}
	return io.NopCloser(bytes.NewReader(d)), store.Object{Key: key, Size: int64(len(d)), Version: v}, nil
}

func (s *memStore) Atomic() bool   { return true }
func (s *memStore) String() string { return "mem://test" }

func TestInstrumentStore(t *testing.T) {
	m, reg := newTest(t)
	mem := newMemStore()
	s := m.InstrumentStore("mem", mem)
	ctx := context.Background()

	if s.String() != "mem://test" || !s.Atomic() {
		t.Errorf("String/Atomic not passed through: %q %v", s.String(), s.Atomic())
	}
	// Normal answers: not errors.
	if _, _, err := s.Get(ctx, "charts/a-1.0.0.tgz"); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("get missing: %v, want ErrNotExist", err)
	}
	if err := s.Create(ctx, "charts/a-1.0.0.tgz", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "charts/a-1.0.0.tgz", []byte("b")); !errors.Is(err, store.ErrExist) {
		t.Fatalf("create twice: %v, want ErrExist", err)
	}
	if d, _, err := s.Get(ctx, "charts/a-1.0.0.tgz"); err != nil || string(d) != "a" {
		t.Fatalf("get = %q, %v; want the first bytes", d, err)
	}
	v, err := s.Replace(ctx, "index.yaml", []byte("i1"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Replace(ctx, "index.yaml", []byte("i2"), "stale"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale replace: %v, want ErrConflict", err)
	}
	if _, err := s.Replace(ctx, "index.yaml", []byte("i2"), v); err != nil {
		t.Fatal(err)
	}
	if objs, err := s.List(ctx, "charts/"); err != nil || len(objs) != 1 {
		t.Fatalf("list = %v, %v; want one object", objs, err)
	}
	// Real errors: a vanished index on replace, a failing listing.
	if _, err := s.Replace(ctx, "gone.yaml", []byte("x"), "1"); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("replace vanished: %v, want ErrNotExist", err)
	}
	mem.listErr = errors.New("connection refused")
	if _, err := s.List(ctx, ""); err == nil {
		t.Fatal("list with failing backend: no error")
	}
	// A cancelled caller is not a store fault.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.Get(cctx, "index.yaml"); !errors.Is(err, context.Canceled) {
		t.Fatalf("get with cancelled ctx: %v", err)
	}
	// A deadline that expired is: the store was too slow.
	dctx, cancel2 := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel2()
	if err := s.Create(dctx, "charts/b-1.0.0.tgz", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("create past deadline: %v", err)
	}

	want := `
# HELP chartsync_store_operations_total Store operations attempted, by backend and operation.
# TYPE chartsync_store_operations_total counter
chartsync_store_operations_total{backend="mem",operation="create"} 3
chartsync_store_operations_total{backend="mem",operation="get"} 3
chartsync_store_operations_total{backend="mem",operation="list"} 2
chartsync_store_operations_total{backend="mem",operation="open"} 0
chartsync_store_operations_total{backend="mem",operation="replace"} 4
# HELP chartsync_store_errors_total Store operations that failed, by backend and operation. Not-found on get, exists on create and a lost guarded replace are answers, not errors.
# TYPE chartsync_store_errors_total counter
chartsync_store_errors_total{backend="mem",operation="create"} 1
chartsync_store_errors_total{backend="mem",operation="get"} 0
chartsync_store_errors_total{backend="mem",operation="list"} 1
chartsync_store_errors_total{backend="mem",operation="open"} 0
chartsync_store_errors_total{backend="mem",operation="replace"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"chartsync_store_operations_total", "chartsync_store_errors_total"); err != nil {
		t.Error(err)
	}
	// Every operation was timed.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "chartsync_store_operation_duration_seconds" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == "operation" {
					counts[lp.GetValue()] = mt.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	wantCounts := map[string]uint64{"create": 3, "get": 3, "list": 2, "replace": 4}
	for op, n := range wantCounts {
		if counts[op] != n {
			t.Errorf("duration histogram count for %s = %d, want %d", op, counts[op], n)
		}
	}
}

func TestWriteTextfile(t *testing.T) {
	m, reg := newTest(t)
	touchAll(m)
	dir := t.TempDir()
	path := filepath.Join(dir, "chartsync.prom")
	if err := os.WriteFile(path, []byte("old contents\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteTextfile(path, reg); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %v, want only chartsync.prom (no temporary file left)", entries)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("textfile does not parse: %v", err)
	}
	got := fams["chartsync_cycles_total"]
	if got == nil || len(got.GetMetric()) != 4 {
		t.Fatalf("chartsync_cycles_total in textfile = %v, want 4 series", got)
	}
	// The file holds exactly what the registry exposes.
	if err := testutil.GatherAndCompare(reg, bytes.NewReader(data)); err != nil {
		t.Errorf("textfile differs from gathered metrics: %v", err)
	}
	runPromtool(t, data, "check", "metrics")
}

func TestWriteTextfileErrors(t *testing.T) {
	_, reg := newTest(t)
	tests := []struct {
		name string
		path func(dir string) string
		g    prometheus.Gatherer
	}{
		{"missing directory", func(dir string) string { return filepath.Join(dir, "nope", "c.prom") }, reg},
		{"gather error", func(dir string) string { return filepath.Join(dir, "c.prom") },
			prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return nil, errors.New("boom") })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteTextfile(tt.path(dir), tt.g); err == nil {
				t.Fatal("WriteTextfile: no error")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("left behind %v", entries)
			}
		})
	}
}

func TestPromtoolCheckMetrics(t *testing.T) {
	m, reg := newTest(t)
	touchAll(m)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	text, err := testutil.GatherAndFormat(reg, expfmt.TypeTextPlain)
	if err != nil {
		t.Fatal(err)
	}
	runPromtool(t, text, "check", "metrics")
}

// touchAll gives every labelled vector at least one series, as a running
// daemon would after a cycle.
func touchAll(m *Metrics) {
	m.InitRepository("stable")
	m.SetCommit("0123456789abcdef0123456789abcdef01234567", time.Unix(1700000000, 0))
	m.InstrumentStore("local", newMemStore())
	start := time.Now()
	m.CycleStarted(start)
	m.GitFetchDuration.Observe(0.2)
	m.CycleEnded(start, start.Add(time.Second), ResultSuccess)
}

// runPromtool runs promtool with args, feeding stdin, and fails the test with
// promtool's output if it exits non-zero.
func runPromtool(t *testing.T, stdin []byte, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// promtool finds promtool on PATH or in the module's .tools/bin and fails the
// test if it is in neither.
func promtool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	p := filepath.Join(moduleRoot(t), ".tools", "bin", "promtool")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	testenv.Missing(t, "promtool not found on PATH or in .tools/bin (Debian package prometheus)")
	return ""
}

// moduleRoot returns the directory holding go.mod, found upward from the
// test's working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

func TestRestoreTextfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "chartsync.prom")

	// No file yet: nothing to restore, no error.
	m1, reg1 := newTest(t)
	if err := m1.RestoreTextfile(path); err != nil {
		t.Fatalf("restore from a missing file: %v", err)
	}
	// Run 1 succeeds and publishes two charts.
	m1.InitRepository("stable")
	s1 := m1.InstrumentStore("local", newMemStore())
	if err := s1.Create(context.Background(), "a", nil); err != nil {
		t.Fatal(err)
	}
	m1.ChartsPublished.WithLabelValues("stable").Add(2)
	m1.GitFetchFailures.Inc()
	start := time.Unix(1700000000, 0)
	m1.CycleEnded(start, start.Add(time.Second), ResultSuccess)
	if err := WriteTextfile(path, reg1); err != nil {
		t.Fatal(err)
	}

	// Run 2 fails as a whole: the counters go on, last success is kept.
	m2, reg2 := newTest(t)
	if err := m2.RestoreTextfile(path); err != nil {
		t.Fatal(err)
	}
	m2.InitRepository("stable")
	m2.InstrumentStore("local", newMemStore())
	m2.CycleEnded(start.Add(time.Minute), start.Add(61*time.Second), ResultError)
	if err := WriteTextfile(path, reg2); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"last success kept", m2.LastSuccess, 1700000001},
		{"success cycles", m2.CyclesTotal.WithLabelValues(ResultSuccess), 1},
		{"error cycles", m2.CyclesTotal.WithLabelValues(ResultError), 1},
		{"published", m2.ChartsPublished.WithLabelValues("stable"), 2},
		{"store creates", m2.StoreOperations.WithLabelValues("local", OpCreate), 1},
		{"git fetch failures", m2.GitFetchFailures, 1},
		{"failed lint (zero stays zero)", m2.ChartsFailed.WithLabelValues("stable", ReasonLint), 0},
	}
	for _, tt := range tests {
		if got := testutil.ToFloat64(tt.c); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, got, tt.want)
		}
	}
	// Histograms start afresh: run 2's cycle is the only observation.
	var hist dto.Metric
	if err := m2.CycleDuration.(prometheus.Metric).Write(&hist); err != nil {
		t.Fatal(err)
	}
	if n := hist.GetHistogram().GetSampleCount(); n != 1 {
		t.Errorf("cycle duration observations = %d, want 1 (run 2's)", n)
	}

	// A file that does not parse restores nothing.
	if err := os.WriteFile(path, []byte("chartsync_cycles_total{ 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m3, _ := newTest(t)
	if err := m3.RestoreTextfile(path); err == nil {
		t.Error("restore from a corrupt file: no error")
	}
	if got := testutil.ToFloat64(m3.CyclesTotal.WithLabelValues(ResultSuccess)); got != 0 {
		t.Errorf("corrupt file restored success cycles = %v", got)
	}
}
