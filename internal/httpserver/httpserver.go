// Package httpserver runs chartsync's HTTP listeners (the daemon's
// /metrics and health endpoints, and `chartsync serve`) with bounds that
// keep a crowd of clients from taking the process down: read, header,
// write and idle timeouts, and a cap on open connections that stays well
// below the file descriptor limit, so that sync cycles always have
// descriptors for git, the stores and the state directory.
package httpserver

import (
	"container/list"
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Limits bounds one HTTP server.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers, including the
	// wait for the first byte of a new connection's first request.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response (from the end of the headers).
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that has no next request
	// for this long.
	IdleTimeout time.Duration
	// MaxConns caps the connections open at once; it is further capped at
	// a quarter of the process's file descriptor limit (see MaxConnsFor).
	// When a new connection would exceed it, the connection that has been
	// idle (or waiting for its first request) the longest is closed to make
	// room; if none is idle, the new connection is closed at once.
	MaxConns int
}

// DaemonLimits are the limits of the daemon's listener: small requests and
// small answers (/metrics, /healthz, /readyz, POST /sync).
var DaemonLimits = Limits{
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       10 * time.Second,
	WriteTimeout:      time.Minute,
	IdleTimeout:       time.Minute,
	MaxConns:          256,
}

// ServeLimits are the limits of `chartsync serve`: packages and indexes
// may be large, so writing may take long, but never forever.
var ServeLimits = Limits{
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       10 * time.Second,
	WriteTimeout:      10 * time.Minute,
	IdleTimeout:       time.Minute,
	MaxConns:          512,
}

// MaxConnsFor returns limit capped at a quarter of nofile (the soft
// RLIMIT_NOFILE; 0 if unknown means no cap), and at least 1. Each
// connection costs one descriptor; the other three quarters stay for the
// sync cycle and the runtime.
func MaxConnsFor(limit int, nofile uint64) int {
	if nofile > 0 && uint64(limit) > nofile/4 {
		limit = int(nofile / 4)
	}
	return max(limit, 1)
}

// Server is an http.Server with Limits applied.
type Server struct {
	srv  *http.Server
	conn *connLimiter
}

// New returns a Server that serves h within l, logging server errors
// (such as a failed TLS handshake or a refused connection) to log at warn.
func New(h http.Handler, l Limits, log *slog.Logger) *Server {
	cl := &connLimiter{max: MaxConnsFor(l.MaxConns, fileLimit()), elems: map[net.Conn]*list.Element{},
		evicted: map[net.Conn]bool{}, log: log}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		ConnState:         cl.state,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return &Server{srv: srv, conn: cl}
}

// MaxConns is the connection cap in force.
func (s *Server) MaxConns() int { return s.conn.max }

// Serve accepts connections on ln until Shutdown or Close, as
// http.Server.Serve does (it returns http.ErrServerClosed then).
func (s *Server) Serve(ln net.Listener) error {
	return s.srv.Serve(&limitListener{Listener: ln, l: s.conn})
}

// Shutdown stops accepting, closes idle connections and waits for active
// ones until ctx is done; see http.Server.Shutdown.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Close closes the listener and every connection at once.
func (s *Server) Close() error { return s.srv.Close() }

// connLimiter counts open connections and remembers, oldest first, those
// that are waiting: new (no request yet) or idle between requests.
type connLimiter struct {
	max int
	log *slog.Logger

	mu      sync.Mutex
	open    int
	waiting list.List // of net.Conn, oldest first
	elems   map[net.Conn]*list.Element
	evicted map[net.Conn]bool // closed by admit, not yet seen closed
	warned  time.Time
}

// admit is called for each accepted connection. It returns false if c must
// be closed because max connections are open and none is waiting.
func (l *connLimiter) admit(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.max {
		front := l.waiting.Front()
		if time.Since(l.warned) > time.Minute {
			l.warned = time.Now()
			l.log.Warn("http connection limit reached; closing the longest-waiting connection", "max_connections", l.max)
		}
		if front == nil {
			return false
		}
		old := front.Value.(net.Conn)
		l.waiting.Remove(front)
		delete(l.elems, old)
		old.Close()
		l.open-- // now, not when the server notices: open never exceeds max
		l.evicted[old] = true
	}
	l.open++
	return true
}

// state is the http.Server ConnState hook.
func (l *connLimiter) state(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.elems[c]; ok {
		l.waiting.Remove(e)
		delete(l.elems, c)
	}
	switch s {
	case http.StateNew, http.StateIdle:
		l.elems[c] = l.waiting.PushBack(c)
	case http.StateHijacked, http.StateClosed:
		if l.evicted[c] {
			delete(l.evicted, c)
			return
		}
		l.open--
	}
}

// limitListener closes, instead of returning, connections the limiter
// does not admit.
type limitListener struct {
	net.Listener
	l *connLimiter
}

func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if ll.l.admit(c) {
			return c, nil
		}
		c.Close()
	}
}
