package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// syncBuffer collects log output; it is printed when a test fails.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", buf)
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// running is a Daemon started by start, with its metrics.
type running struct {
	d    *Daemon
	m    *metrics.Metrics
	url  string // "http://addr" when cfg.Listen was set
	stop func() error
}

// start creates a Daemon for cfg and cycle, runs it, waits for its HTTP
// listener when cfg.Listen is set, and stops it when the test ends.
func start(t *testing.T, cfg Config, cycle Cycle) *running {
	t.Helper()
	if cfg.ReadyMaxAge == 0 {
		cfg.ReadyMaxAge = time.Minute
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "test", "test")
	d, err := New(cfg, cycle, m, reg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	var once sync.Once
	var runErr error
	r := &running{d: d, m: m}
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(10 * time.Second):
				runErr = errors.New("Run did not return within 10s of cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	if cfg.Listen != "" {
		waitFor(t, 5*time.Second, "the http listener", func() bool { return d.Addr() != "" })
		r.url = "http://" + d.Addr()
	}
	return r
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *running) idle() bool {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	return !r.d.running
}

// do sends method path with the optional Authorization header and returns
// the status code and body.
func (r *running) do(t *testing.T, method, path, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, r.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// gated is a cycle that waits for a value on release (or its ctx) before
// returning; it counts calls and returns, and the most that ran at once.
type gated struct {
	release  chan error
	calls    atomic.Int32
	returned atomic.Int32
	active   atomic.Int32
	maxSeen  atomic.Int32
}

func newGated() *gated { return &gated{release: make(chan error)} }

func (g *gated) cycle(ctx context.Context) error {
	g.calls.Add(1)
	n := g.active.Add(1)
	for {
		m := g.maxSeen.Load()
		if n <= m || g.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	defer g.returned.Add(1)
	defer g.active.Add(-1)
	select {
	case err := <-g.release:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func quickCycle(n *atomic.Int32) Cycle {
	return func(context.Context) error {
		n.Add(1)
		return nil
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Schedule: "@every 2m", ReadyMaxAge: time.Minute}
	with := func(f func(*Config)) Config {
		c := ok
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"every", ok, false},
		{"five fields", with(func(c *Config) { c.Schedule = "*/2 * * * *" }), false},
		{"descriptor", with(func(c *Config) { c.Schedule = "@hourly" }), false},
		{"time zone", with(func(c *Config) { c.Schedule = "CRON_TZ=UTC 0 3 * * *" }), false},
		{"splay and grace", with(func(c *Config) { c.Splay = time.Minute; c.ShutdownGrace = time.Minute }), false},
		{"empty schedule", with(func(c *Config) { c.Schedule = "" }), true},
		{"bad schedule", with(func(c *Config) { c.Schedule = "every 2m" }), true},
		{"six fields", with(func(c *Config) { c.Schedule = "0 */2 * * * *" }), true},
		{"zone without spec", with(func(c *Config) { c.Schedule = "TZ=UTC" }), true},
		{"never fires", with(func(c *Config) { c.Schedule = "0 0 30 2 *" }), true},
		{"negative splay", with(func(c *Config) { c.Splay = -time.Second }), true},
		{"zero ready age", with(func(c *Config) { c.ReadyMaxAge = 0 }), true},
		{"negative grace", with(func(c *Config) { c.ShutdownGrace = -time.Second }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			_, err = New(tt.cfg, quickCycle(new(atomic.Int32)), metrics.New(prometheus.NewRegistry(), "", ""), prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
			if (err != nil) != tt.wantErr {
				t.Fatalf("New() = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestNewRequiresItsParts(t *testing.T) {
	cfg := Config{Schedule: "@every 1m", ReadyMaxAge: time.Minute}
	m := metrics.New(prometheus.NewRegistry(), "", "")
	if _, err := New(cfg, nil, m, prometheus.NewRegistry(), slog.New(slog.DiscardHandler)); err == nil {
		t.Error("New with a nil cycle: no error")
	}
	if _, err := New(cfg, quickCycle(new(atomic.Int32)), nil, prometheus.NewRegistry(), slog.New(slog.DiscardHandler)); err == nil {
		t.Error("New with nil metrics: no error")
	}
}

func TestNextFire(t *testing.T) {
	sched, err := parseSchedule("@every 1m")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	maxRnd := func(d time.Duration) time.Duration {
		if d == 0 {
			return 0
		}
		return d - 1
	}
	tests := []struct {
		name           string
		prev, now      time.Time
		splay          time.Duration
		wantTick, want time.Time
	}{
		{"next after prev", t0, t0.Add(time.Second), 0, t0.Add(time.Minute), t0.Add(time.Minute)},
		{"splay added", t0, t0.Add(time.Second), 30 * time.Second, t0.Add(time.Minute), t0.Add(90*time.Second - 1)},
		{"no drift after a splayed fire", t0.Add(time.Minute), t0.Add(89 * time.Second), 30 * time.Second, t0.Add(2 * time.Minute), t0.Add(150*time.Second - 1)},
		{"missed ticks not caught up", t0, t0.Add(10 * time.Minute), 0, t0.Add(11 * time.Minute), t0.Add(11 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tick, fire := nextFire(sched, tt.prev, tt.now, tt.splay, maxRnd)
			if !tick.Equal(tt.wantTick) || !fire.Equal(tt.want) {
				t.Errorf("nextFire = %s, %s; want %s, %s", tick, fire, tt.wantTick, tt.want)
			}
		})
	}
	if got := randDuration(0); got != 0 {
		t.Errorf("randDuration(0) = %s", got)
	}
	for range 1000 {
		if got := randDuration(time.Second); got < 0 || got >= time.Second {
			t.Fatalf("randDuration(1s) = %s, outside [0, 1s)", got)
		}
	}
}

func TestStartupAndScheduledCycles(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	r := start(t, Config{Schedule: "@every 1s"}, quickCycle(&n))
	waitFor(t, 5*time.Second, "the start-up cycle", func() bool { return n.Load() >= 1 })
	began := time.Now()
	waitFor(t, 5*time.Second, "two scheduled cycles", func() bool { return n.Load() >= 3 })
	if e := time.Since(began); e < 900*time.Millisecond {
		t.Errorf("two scheduled cycles after %s, faster than an @every 1s schedule", e)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	after := n.Load()
	time.Sleep(1200 * time.Millisecond)
	if n.Load() != after {
		t.Errorf("a cycle ran after Run returned")
	}
}

func TestScheduledCycleDueWhileRunningIsSkipped(t *testing.T) {
	t.Parallel()
	g := newGated()
	r := start(t, Config{Schedule: "@every 1s"}, g.cycle)
	waitFor(t, 5*time.Second, "a scheduled cycle to be skipped", func() bool {
		return testutil.ToFloat64(r.m.CyclesSkipped) >= 1
	})
	if got := g.calls.Load(); got != 1 {
		t.Errorf("%d cycles started while the first ran, want 1", got)
	}
	g.release <- nil
	g.release <- nil // the next scheduled cycle runs once the first is done
	if got := g.maxSeen.Load(); got != 1 {
		t.Errorf("%d cycles ran at once, want 1", got)
	}
}

func TestSyncEndpoint(t *testing.T) {
	t.Parallel()
	g := newGated()
	r := start(t, Config{Schedule: "@every 1h", Listen: "127.0.0.1:0"}, g.cycle)
	waitFor(t, 5*time.Second, "the start-up cycle", func() bool { return g.calls.Load() == 1 })

	if code, body := r.do(t, http.MethodPost, "/sync", ""); code != http.StatusConflict {
		t.Errorf("POST /sync while a cycle runs = %d %q, want 409", code, body)
	}
	if got := testutil.ToFloat64(r.m.CyclesSkipped); got != 1 {
		t.Errorf("cycles skipped = %v, want 1", got)
	}
	for _, method := range []string{http.MethodGet, http.MethodPut} {
		if code, _ := r.do(t, method, "/sync", ""); code != http.StatusMethodNotAllowed {
			t.Errorf("%s /sync = %d, want 405", method, code)
		}
	}
	if code, _ := r.do(t, http.MethodPost, "/metrics", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics = %d, want 405", code)
	}

	g.release <- nil
	waitFor(t, 5*time.Second, "the start-up cycle to end", r.idle)
	if code, body := r.do(t, http.MethodPost, "/sync", ""); code != http.StatusAccepted {
		t.Fatalf("POST /sync when idle = %d %q, want 202", code, body)
	}
	waitFor(t, 5*time.Second, "the triggered cycle", func() bool { return g.calls.Load() == 2 })
	g.release <- nil
	waitFor(t, 5*time.Second, "the triggered cycle to end", r.idle)
	if got := g.maxSeen.Load(); got != 1 {
		t.Errorf("%d cycles ran at once, want 1", got)
	}
}

func TestSyncToken(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	r := start(t, Config{Schedule: "@every 1h", Listen: "127.0.0.1:0", SyncToken: "s3cret"}, quickCycle(&n))
	tests := []struct {
		name string
		auth string
		want int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer s3cre", http.StatusUnauthorized},
		{"longer token", "Bearer s3cret2", http.StatusUnauthorized},
		{"other scheme", "Basic s3cret", http.StatusUnauthorized},
		{"no scheme", "s3cret", http.StatusUnauthorized},
		{"right token", "Bearer s3cret", http.StatusAccepted},
		{"scheme in any case", "bearer s3cret", http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			waitFor(t, 5*time.Second, "no cycle running", func() bool { return n.Load() >= 1 && r.idle() })
			before := n.Load()
			code, body := r.do(t, http.MethodPost, "/sync", tt.auth)
			if code != tt.want {
				t.Fatalf("POST /sync with %q = %d %q, want %d", tt.auth, code, body, tt.want)
			}
			if code == http.StatusAccepted {
				waitFor(t, 5*time.Second, "the triggered cycle", func() bool { return n.Load() == before+1 })
				return
			}
			time.Sleep(20 * time.Millisecond)
			if n.Load() != before {
				t.Errorf("an unauthorized request started a cycle")
			}
		})
	}
}

func TestHealthReadyAndMetrics(t *testing.T) {
	t.Parallel()
	var fail atomic.Bool
	fail.Store(true)
	var n atomic.Int32
	cycle := func(context.Context) error {
		n.Add(1)
		if fail.Load() {
			return errors.New("git fetch failed")
		}
		return nil
	}
	r := start(t, Config{Schedule: "@every 1h", Listen: "127.0.0.1:0", ReadyMaxAge: 400 * time.Millisecond}, cycle)
	waitFor(t, 5*time.Second, "the failing start-up cycle", func() bool { return n.Load() == 1 && r.idle() })

	if code, body := r.do(t, http.MethodGet, "/healthz", ""); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
	if code, body := r.do(t, http.MethodGet, "/readyz", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "no successful cycle yet") {
		t.Errorf("/readyz after a failed cycle = %d %q, want 503 no successful cycle yet", code, body)
	}

	fail.Store(false)
	if code, _ := r.do(t, http.MethodPost, "/sync", ""); code != http.StatusAccepted {
		t.Fatalf("POST /sync = %d, want 202", code)
	}
	waitFor(t, 5*time.Second, "the successful cycle", func() bool { return n.Load() == 2 && r.idle() })
	if code, body := r.do(t, http.MethodGet, "/readyz", ""); code != http.StatusOK {
		t.Errorf("/readyz after a successful cycle = %d %q, want 200", code, body)
	}

	fail.Store(true)
	if code, _ := r.do(t, http.MethodPost, "/sync", ""); code != http.StatusAccepted {
		t.Fatalf("POST /sync = %d, want 202", code)
	}
	waitFor(t, 5*time.Second, "the failed cycle", func() bool { return n.Load() == 3 && r.idle() })
	if code, body := r.do(t, http.MethodGet, "/readyz", ""); code != http.StatusOK {
		t.Errorf("/readyz right after a failure that followed a success = %d %q, want 200 (within max age)", code, body)
	}
	time.Sleep(500 * time.Millisecond)
	if code, body := r.do(t, http.MethodGet, "/readyz", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "more than 400ms") {
		t.Errorf("/readyz after max age = %d %q, want 503 with the age", code, body)
	}

	if code, body := r.do(t, http.MethodGet, "/metrics", ""); code != http.StatusOK || !strings.Contains(body, "chartsync_cycles_skipped_total 0") {
		t.Errorf("/metrics = %d, body without chartsync_cycles_skipped_total:\n%s", code, body)
	}
}

func TestMetricsEndpointServesGatherer(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "9.9.9", "deadbeef")
	d, err := New(Config{Schedule: "@every 1h", ReadyMaxAge: time.Minute}, quickCycle(new(atomic.Int32)), m, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d.Handler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`chartsync_build_info{goversion=`, `version="9.9.9"`, `chartsync_cycles_skipped_total 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Without Run, POST /sync starts nothing.
	resp2, err := http.Post("http://"+ln.Addr().String()+"/sync", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("POST /sync before Run = %d, want 503", resp2.StatusCode)
	}
}

func TestCyclePanicIsAFailedCycle(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	cycle := func(context.Context) error {
		if n.Add(1) == 1 {
			panic("boom")
		}
		return nil
	}
	r := start(t, Config{Schedule: "@every 1h", Listen: "127.0.0.1:0"}, cycle)
	waitFor(t, 5*time.Second, "the panicking start-up cycle", func() bool { return n.Load() == 1 && r.idle() })
	if code, _ := r.do(t, http.MethodGet, "/readyz", ""); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz after a panic = %d, want 503", code)
	}
	if code, _ := r.do(t, http.MethodPost, "/sync", ""); code != http.StatusAccepted {
		t.Fatalf("POST /sync after a panic = %d, want 202", code)
	}
	waitFor(t, 5*time.Second, "the next cycle", func() bool { return n.Load() == 2 && r.idle() })
	if code, _ := r.do(t, http.MethodGet, "/readyz", ""); code != http.StatusOK {
		t.Errorf("/readyz after recovery = %d, want 200", code)
	}
}

func TestShutdownWaitsForRunningCycle(t *testing.T) {
	t.Parallel()
	var cancelled atomic.Bool
	var finished atomic.Bool
	began := make(chan struct{})
	cycle := func(ctx context.Context) error {
		close(began)
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			cancelled.Store(true)
		}
		finished.Store(true)
		return nil
	}
	r := start(t, Config{Schedule: "@every 1h", Listen: "127.0.0.1:0", ShutdownGrace: 10 * time.Second}, cycle)
	<-began
	stopped := make(chan error, 1)
	go func() { stopped <- r.stop() }()

	// While it waits, the server still answers: not ready, and no new cycles.
	waitFor(t, 900*time.Millisecond, "/readyz to say shutting down", func() bool {
		_, body := r.do(t, http.MethodGet, "/readyz", "")
		return strings.Contains(body, "shutting down")
	})
	if code, _ := r.do(t, http.MethodPost, "/sync", ""); code != http.StatusServiceUnavailable {
		t.Errorf("POST /sync during shutdown = %d, want 503", code)
	}
	if finished.Load() {
		t.Fatal("the cycle finished before the checks during shutdown: test too slow to be meaningful")
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if !finished.Load() {
		t.Error("Run returned before the running cycle finished")
	}
	if cancelled.Load() {
		t.Error("the cycle's context was cancelled although it finished within the grace period")
	}
	if _, err := http.Get(r.url + "/healthz"); err == nil {
		t.Error("the http server still answers after Run returned")
	}
}

func TestShutdownCancelsCycleAfterGrace(t *testing.T) {
	t.Parallel()
	const grace = 300 * time.Millisecond
	began := make(chan struct{})
	var cycleErr atomic.Value
	var returned atomic.Bool
	cycle := func(ctx context.Context) error {
		close(began)
		<-ctx.Done()
		cycleErr.Store(ctx.Err())
		time.Sleep(50 * time.Millisecond) // cleaning up after cancel
		returned.Store(true)
		return ctx.Err()
	}
	r := start(t, Config{Schedule: "@every 1h", ShutdownGrace: grace}, cycle)
	<-began
	t0 := time.Now()
	if err := r.stop(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	elapsed := time.Since(t0)
	if elapsed < grace {
		t.Errorf("Run returned after %s, before the %s grace", elapsed, grace)
	}
	if elapsed > grace+3*time.Second {
		t.Errorf("Run returned after %s, long after the %s grace", elapsed, grace)
	}
	if err, _ := cycleErr.Load().(error); !errors.Is(err, context.Canceled) {
		t.Errorf("cycle ctx error = %v, want context.Canceled", err)
	}
	if !returned.Load() {
		t.Error("Run returned before the cancelled cycle returned")
	}
}

func TestReconfigure(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	r := start(t, Config{Schedule: "@every 1h", Listen: "127.0.0.1:0", SyncToken: "old"}, quickCycle(&n))
	waitFor(t, 5*time.Second, "the start-up cycle", func() bool { return n.Load() == 1 && r.idle() })

	bad := Config{Schedule: "every second", ReadyMaxAge: time.Minute, Listen: "127.0.0.1:0"}
	if err := r.d.Reconfigure(bad); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Reconfigure(bad schedule) = %v, want ErrInvalidConfig", err)
	}
	if code, _ := r.do(t, http.MethodPost, "/sync", ""); code != http.StatusUnauthorized {
		t.Errorf("after a rejected Reconfigure, POST /sync without token = %d, want 401 (old token kept)", code)
	}
	time.Sleep(1500 * time.Millisecond)
	if got := n.Load(); got != 1 {
		t.Errorf("%d cycles after a rejected Reconfigure, want 1 (old hourly schedule kept)", got)
	}

	good := Config{Schedule: "@every 1s", ReadyMaxAge: time.Minute, Listen: "127.0.0.1:1"}
	if err := r.d.Reconfigure(good); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "cycles on the new schedule", func() bool { return n.Load() >= 3 })
	if code, _ := r.do(t, http.MethodPost, "/sync", ""); code == http.StatusUnauthorized {
		t.Errorf("POST /sync without token after the token was removed = 401")
	}
	if got := r.d.Addr(); "http://"+got != r.url {
		t.Errorf("listen address changed to %s by Reconfigure", got)
	}
}

func TestListenFailure(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var n atomic.Int32
	d, err := New(Config{Schedule: "@every 1s", Listen: ln.Addr().String(), ReadyMaxAge: time.Minute},
		quickCycle(&n), metrics.New(prometheus.NewRegistry(), "", ""), prometheus.NewRegistry(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("Run on a taken port = %v, want a listen error", err)
	}
	if n.Load() != 0 {
		t.Error("a cycle ran although the listener failed")
	}
	if err := d.Run(context.Background()); err == nil {
		t.Error("second Run: no error")
	}
}

func TestReloadOnSignal(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "", "")
	var calls atomic.Int32
	reload := func(context.Context) error {
		if calls.Add(1) == 1 {
			return errors.New("unknown key")
		}
		return nil
	}
	stop := ReloadOnSignal(context.Background(), reload, m, testLogger(t), syscall.SIGHUP)
	defer stop()

	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the failed reload", func() bool {
		return testutil.ToFloat64(m.ConfigReloads.WithLabelValues(metrics.ReloadFailure)) == 1
	})
	if got := testutil.ToFloat64(m.ConfigLastReloadSuccessful); got != 0 {
		t.Errorf("last reload successful = %v after a failure, want 0", got)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the successful reload", func() bool {
		return testutil.ToFloat64(m.ConfigReloads.WithLabelValues(metrics.ReloadSuccess)) == 1
	})
	if got := testutil.ToFloat64(m.ConfigLastReloadSuccessful); got != 1 {
		t.Errorf("last reload successful = %v after a success, want 1", got)
	}
}

// Issue 13 point 1: a cycle that never returns by itself is cancelled at
// CycleTimeout with a cause saying so, and the next scheduled cycle starts
// on time instead of being skipped.
func TestCycleTimeoutCancelsAHungCycle(t *testing.T) {
	var calls atomic.Int32
	causes := make(chan error, 10)
	cycle := func(ctx context.Context) error {
		calls.Add(1)
		<-ctx.Done() // hangs until its deadline, like a git server that never answers
		causes <- context.Cause(ctx)
		return context.Cause(ctx)
	}
	began := time.Now()
	r := start(t, Config{Schedule: "@every 2s", CycleTimeout: 500 * time.Millisecond}, cycle)
	cause := <-causes
	if !errors.Is(cause, ErrCycleTimeout) || !errors.Is(cause, context.DeadlineExceeded) {
		t.Fatalf("cause %v: want ErrCycleTimeout and context.DeadlineExceeded", cause)
	}
	if d := time.Since(began); d > 1500*time.Millisecond {
		t.Errorf("hung cycle cancelled after %s, timeout 500ms", d)
	}
	// The scheduled cycle 2s after start runs (and times out in turn).
	waitFor(t, 10*time.Second, "the scheduled cycle", func() bool { return calls.Load() >= 2 })
	if n := testutil.ToFloat64(r.m.CyclesSkipped); n != 0 {
		t.Errorf("%v cycles skipped, want 0", n)
	}
}
