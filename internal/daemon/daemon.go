// Package daemon runs chartsync's sync cycle on a cron schedule and serves
// its HTTP endpoints (/metrics, /healthz, /readyz, POST /sync). It knows
// nothing of git, Helm or storage: a cycle is a function it calls. It
// guarantees that cycles never overlap and that a shutdown lets the running
// cycle finish, within a grace period, before its context is cancelled.
package daemon

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/chartsync/chartsync/internal/httpserver"
	"github.com/chartsync/chartsync/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"
)

// Cycle is one sync cycle. It returns nil when the cycle did its job, which
// makes the daemon ready (see Config.ReadyMaxAge), or an error, which the
// daemon logs once at level error; the cycle records its own metrics.
// ctx is cancelled only when a shutdown's grace period runs out: the cycle
// must then stop soon and leave the store consistent. A panic in a cycle is
// recovered, logged with its stack and treated as a failed cycle.
type Cycle func(ctx context.Context) error

// Config is the daemon's part of chartsync's configuration.
type Config struct {
	// Schedule is a cron spec for github.com/robfig/cron/v3's standard parser:
	// five fields ("*/2 * * * *"), a descriptor ("@hourly", "@every 2m"),
	// optionally prefixed with "CRON_TZ=Zone ". @every rounds to whole
	// seconds, with a minimum of one second.
	Schedule string
	// Splay is the upper bound of a random delay, in [0, Splay), added to
	// each scheduled cycle so that several nodes do not start at once. The
	// start-up cycle and triggered cycles are not delayed.
	Splay time.Duration
	// Listen is the HTTP server's address ("127.0.0.1:9786"); "" serves no HTTP.
	Listen string
	// SyncToken, if not "", must be sent as "Authorization: Bearer <token>"
	// to POST /sync. The caller reads it from wherever it is kept.
	SyncToken string
	// ReadyMaxAge: /readyz answers 200 only if the last successful cycle
	// ended at most this long ago. Must be positive.
	ReadyMaxAge time.Duration
	// ShutdownGrace is how long a running cycle may go on after Run's ctx is
	// done before the cycle's own context is cancelled. 0 cancels at once.
	ShutdownGrace time.Duration
	// CycleTimeout bounds each cycle: when it runs out, the cycle's context
	// is cancelled with a cause wrapping context.DeadlineExceeded and
	// ErrCycleTimeout, and the cycle must return soon. 0 means no bound.
	CycleTimeout time.Duration
	// HTTP bounds the listener; the zero value means httpserver.DaemonLimits.
	HTTP httpserver.Limits
}

// ErrCycleTimeout is the cause of a cycle context cancelled because the
// cycle ran longer than Config.CycleTimeout.
var ErrCycleTimeout = errors.New("cycle timed out")

// ErrInvalidConfig is wrapped by the errors of Config.Validate, New and
// Reconfigure for a configuration that cannot be used.
var ErrInvalidConfig = errors.New("invalid daemon configuration")

// Validate checks c and returns an error wrapping ErrInvalidConfig that
// names the first bad field.
func (c Config) Validate() error {
	_, err := c.parse()
	return err
}

func (c Config) parse() (cron.Schedule, error) {
	sched, err := parseSchedule(c.Schedule)
	if err != nil {
		return nil, fmt.Errorf("%w: schedule %q: %w", ErrInvalidConfig, c.Schedule, err)
	}
	switch {
	case c.Splay < 0:
		return nil, fmt.Errorf("%w: splay %s is negative", ErrInvalidConfig, c.Splay)
	case c.ReadyMaxAge <= 0:
		return nil, fmt.Errorf("%w: ready max age %s is not positive", ErrInvalidConfig, c.ReadyMaxAge)
	case c.ShutdownGrace < 0:
		return nil, fmt.Errorf("%w: shutdown grace %s is negative", ErrInvalidConfig, c.ShutdownGrace)
	case c.CycleTimeout < 0:
		return nil, fmt.Errorf("%w: cycle timeout %s is negative", ErrInvalidConfig, c.CycleTimeout)
	}
	return sched, nil
}

// parseSchedule parses spec with cron's standard parser, turning its panic on
// some malformed time zone prefixes into an error, and rejects schedules
// that never fire (such as "0 0 30 2 *").
func parseSchedule(spec string) (sched cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("malformed spec")
		}
	}()
	sched, err = cron.ParseStandard(spec)
	if err != nil {
		return nil, err
	}
	if sched.Next(time.Now()).IsZero() {
		return nil, errors.New("never fires")
	}
	return sched, nil
}

// Daemon runs a Cycle on a schedule. Create it with New; its methods are
// safe for concurrent use.
type Daemon struct {
	cycle   Cycle
	m       *metrics.Metrics
	handler http.Handler
	log     *slog.Logger
	reconf  chan struct{} // a new schedule: recompute the next fire time

	mu          sync.Mutex
	cfg         Config
	sched       cron.Schedule
	base        context.Context // parent of cycle contexts; nil until Run
	stopping    bool
	running     bool
	done        chan struct{} // closed when the running cycle returns
	lastSuccess time.Time     // end of the last cycle that returned nil
	addr        string
}

// New validates cfg and returns a Daemon that will call cycle. m receives
// chartsync_cycles_skipped_total; g is served on /metrics. m, g, cycle and
// log must not be nil.
func New(cfg Config, cycle Cycle, m *metrics.Metrics, g prometheus.Gatherer, log *slog.Logger) (*Daemon, error) {
	if cycle == nil || m == nil || g == nil || log == nil {
		return nil, errors.New("new daemon: cycle, metrics, gatherer and logger are required")
	}
	sched, err := cfg.parse()
	if err != nil {
		return nil, fmt.Errorf("new daemon: %w", err)
	}
	d := &Daemon{
		cycle:  cycle,
		m:      m,
		log:    log,
		reconf: make(chan struct{}, 1),
		cfg:    cfg,
		sched:  sched,
	}
	mux := http.NewServeMux()
	// The method patterns make the mux answer 405 (with Allow) to other methods.
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError),
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", d.serveReady)
	mux.HandleFunc("POST /sync", d.serveSync)
	d.handler = mux
	return d, nil
}

// Handler returns the daemon's HTTP handler, the one Run serves on
// Config.Listen. POST /sync through it starts cycles only while Run runs.
func (d *Daemon) Handler() http.Handler { return d.handler }

// Addr returns the address the HTTP server listens on (useful with port 0),
// or "" before Run has bound it or when Config.Listen is "".
func (d *Daemon) Addr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addr
}

// Reconfigure validates cfg and applies its Schedule, Splay, SyncToken,
// ReadyMaxAge and ShutdownGrace; the next scheduled cycle is computed from
// the new schedule at once. A changed Listen cannot be applied while Run
// runs: it is logged and the old address kept. On a validation error
// nothing changes and the error wraps ErrInvalidConfig.
func (d *Daemon) Reconfigure(cfg Config) error {
	sched, err := cfg.parse()
	if err != nil {
		return fmt.Errorf("reconfigure daemon: %w", err)
	}
	d.mu.Lock()
	if d.base != nil && cfg.Listen != d.cfg.Listen {
		d.log.Warn("listen address change needs a restart; keeping the old one",
			"listen", d.cfg.Listen, "new_listen", cfg.Listen)
		cfg.Listen = d.cfg.Listen
	}
	d.cfg, d.sched = cfg, sched
	d.mu.Unlock()
	select {
	case d.reconf <- struct{}{}:
	default: // a recompute is pending already
	}
	return nil
}

// Run binds Config.Listen (if set) and serves HTTP, runs one cycle at once,
// then one per scheduled time (plus splay) until ctx is done. A cycle due,
// by schedule or POST /sync, while another runs is skipped and counted in
// chartsync_cycles_skipped_total. Missed times (a cycle longer than the
// interval, a suspended machine) are not caught up.
//
// When ctx is done Run stops scheduling, lets a running cycle go on for up to
// ShutdownGrace, then cancels that cycle's context and waits for it to
// return, and finally shuts the HTTP server down. Cycle contexts are not
// derived from ctx, so ctx's cancellation alone never reaches a cycle.
//
// Run returns nil after a clean shutdown, or an error if the listener cannot
// be bound (then no cycle runs) or the server fails (then after the same
// shutdown). Run may be called only once.
func (d *Daemon) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.base != nil {
		d.mu.Unlock()
		return errors.New("run daemon: already run")
	}
	base, cancelCycles := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelCycles()
	d.base = base
	listen := d.cfg.Listen
	d.mu.Unlock()

	var srv *httpserver.Server
	srvErr := make(chan error, 1)
	if listen != "" {
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			d.mu.Lock()
			d.stopping = true
			d.mu.Unlock()
			return fmt.Errorf("run daemon: listen on %s: %w", listen, err)
		}
		d.mu.Lock()
		d.addr = ln.Addr().String()
		d.mu.Unlock()
		limits := d.cfg.HTTP
		if limits == (httpserver.Limits{}) {
			limits = httpserver.DaemonLimits
		}
		srv = httpserver.New(d.handler, limits, d.log)
		go func() { srvErr <- srv.Serve(ln) }()
		d.log.Info("serving http", "listen", d.addr, "max_connections", srv.MaxConns())
	}

	d.start("startup")
	runErr := d.schedule(ctx, srvErr)

	d.mu.Lock()
	d.stopping = true
	running, done, grace := d.running, d.done, d.cfg.ShutdownGrace
	d.mu.Unlock()
	if running {
		d.log.Info("waiting for the running cycle to finish", "grace", grace)
		t := time.NewTimer(grace)
		select {
		case <-done:
			t.Stop()
		case <-t.C:
			d.log.Warn("shutdown grace period over; cancelling the running cycle", "grace", grace)
			cancelCycles()
			<-done
		}
	}
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	}
	return runErr
}

// schedule starts a cycle at each scheduled time until ctx is done (nil) or
// the HTTP server fails (its error).
func (d *Daemon) schedule(ctx context.Context, srvErr <-chan error) error {
	prev := time.Now()
	for {
		d.mu.Lock()
		sched, splay := d.sched, d.cfg.Splay
		d.mu.Unlock()
		tick, fire := nextFire(sched, prev, time.Now(), splay, randDuration)
		timer := time.NewTimer(time.Until(fire))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case err := <-srvErr:
			timer.Stop()
			d.log.Error("http server failed", "err", err)
			return fmt.Errorf("run daemon: serve http: %w", err)
		case <-d.reconf:
			timer.Stop()
			prev = time.Now()
		case <-timer.C:
			prev = tick
			d.start("schedule")
		}
	}
}

// nextFire returns the next scheduled time after prev (or, if that has
// passed already, after now) and the time to fire for it: tick plus a
// random delay in [0, splay) from rnd.
func nextFire(sched cron.Schedule, prev, now time.Time, splay time.Duration, rnd func(time.Duration) time.Duration) (tick, fire time.Time) {
	tick = sched.Next(prev)
	if tick.Before(now) {
		tick = sched.Next(now)
	}
	return tick, tick.Add(rnd(splay))
}

func randDuration(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max)
}

type startResult int

const (
	started startResult = iota
	busy                // a cycle is running: skipped and counted
	stopped             // not running, or shutting down
)

// start starts a cycle in the background unless one is running or the
// daemon is not running.
func (d *Daemon) start(trigger string) startResult {
	d.mu.Lock()
	if d.base == nil || d.stopping {
		d.mu.Unlock()
		return stopped
	}
	if d.running {
		d.mu.Unlock()
		d.m.CyclesSkipped.Inc()
		d.log.Warn("cycle skipped: the previous one is still running", "trigger", trigger)
		return busy
	}
	d.running = true
	done := make(chan struct{})
	d.done = done
	base, timeout := d.base, d.cfg.CycleTimeout
	d.mu.Unlock()

	go func() {
		defer close(done)
		d.log.Debug("cycle starting", "trigger", trigger)
		start := time.Now()
		ctx, cancel := base, context.CancelFunc(func() {})
		if timeout > 0 {
			ctx, cancel = context.WithTimeoutCause(base, timeout,
				fmt.Errorf("%w after %s (cycle_timeout): %w", ErrCycleTimeout, timeout, context.DeadlineExceeded))
		}
		err := d.call(ctx)
		cancel()
		end := time.Now()
		d.mu.Lock()
		d.running = false
		if err == nil {
			d.lastSuccess = end
		}
		d.mu.Unlock()
		if err != nil {
			d.log.Error("cycle failed", "trigger", trigger, "duration", end.Sub(start), "err", err)
			return
		}
		d.log.Debug("cycle done", "trigger", trigger, "duration", end.Sub(start))
	}()
	return started
}

// call runs the cycle, turning a panic into an error.
func (d *Daemon) call(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("cycle panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("cycle panicked: %v", r)
		}
	}()
	return d.cycle(ctx)
}

func (d *Daemon) serveReady(w http.ResponseWriter, _ *http.Request) {
	d.mu.Lock()
	last, maxAge, stopping := d.lastSuccess, d.cfg.ReadyMaxAge, d.stopping
	d.mu.Unlock()
	switch age := time.Since(last); {
	case stopping:
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	case last.IsZero():
		http.Error(w, "no successful cycle yet", http.StatusServiceUnavailable)
	case age > maxAge:
		http.Error(w, fmt.Sprintf("last successful cycle ended %s ago, more than %s",
			age.Round(time.Second), maxAge), http.StatusServiceUnavailable)
	default:
		fmt.Fprintln(w, "ok")
	}
}

func (d *Daemon) serveSync(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	token := d.cfg.SyncToken
	d.mu.Unlock()
	if token != "" && !validBearer(r.Header.Get("Authorization"), token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="chartsync"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	switch d.start("http") {
	case started:
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintln(w, "cycle started")
	case busy:
		http.Error(w, "a cycle is running", http.StatusConflict)
	default:
		http.Error(w, "not running", http.StatusServiceUnavailable)
	}
}

// validBearer reports whether header is "Bearer <token>" (the scheme in any
// case). The comparison takes the same time whatever the token's length or
// content: both sides are hashed before a constant-time compare.
func validBearer(header, token string) bool {
	scheme, got, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	a := sha256.Sum256([]byte(strings.TrimSpace(got)))
	b := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
