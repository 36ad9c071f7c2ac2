package httpserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

func startServer(t *testing.T, l Limits) (*Server, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(mux, l, slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// healthz does one GET /healthz on a fresh connection, within timeout.
func healthz(addr string, timeout time.Duration) error {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// closedByPeer reports whether the server closed c before deadline: a read
// returns EOF or a reset, not a timeout.
func closedByPeer(c net.Conn, deadline time.Time) bool {
	c.SetReadDeadline(deadline)
	_, err := io.Copy(io.Discard, c) // nil on EOF
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// Issue 9 case 10: 2,000 idle connections neither stop /healthz from
// answering nor stay open past the timeouts, and the server never holds
// more than its connection cap.
func TestIdleConnectionsAreBoundedAndClosed(t *testing.T) {
	l := Limits{ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		IdleTimeout: time.Second, MaxConns: 100}
	s, addr := startServer(t, l)

	const n = 2000
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	s.conn.mu.Lock()
	open := s.conn.open
	s.conn.mu.Unlock()
	if open > s.MaxConns() {
		t.Errorf("server holds %d connections, cap %d", open, s.MaxConns())
	}
	for i := range 5 {
		if err := healthz(addr, 5*time.Second); err != nil {
			t.Fatalf("/healthz %d with %d idle connections open: %v", i, n, err)
		}
	}

	// A keep-alive connection idle after one request.
	kc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	fmt.Fprintf(kc, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(kc), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	idleStart := time.Now()
	if !closedByPeer(kc, time.Now().Add(10*time.Second)) {
		t.Fatal("keep-alive connection still open 10s after its request (idle timeout 1s)")
	}
	if d := time.Since(idleStart); d < l.IdleTimeout/2 {
		t.Errorf("keep-alive connection closed after %s, before the idle timeout %s", d, l.IdleTimeout)
	}

	// Every one of the idle connections is closed by now or soon: evicted
	// for a newer one, or timed out waiting for its first request.
	deadline := time.Now().Add(l.ReadHeaderTimeout + 10*time.Second)
	for i, c := range conns {
		if !closedByPeer(c, deadline) {
			t.Fatalf("idle connection %d still open %s after the header timeout", i, 10*time.Second)
		}
	}
}

// When every connection is busy the newest is refused, not queued behind
// them; once they finish, the server answers again.
func TestConnectionCapRefusesWhenAllAreBusy(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, _ *http.Request) { <-release })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(mux, Limits{ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Second, MaxConns: 4},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	go s.Serve(ln)
	defer s.Close()
	addr := ln.Addr().String()
	busy := make(chan error, 4)
	for range 4 {
		go func() {
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := c.Get("http://" + addr + "/slow")
			if err == nil {
				resp.Body.Close()
			}
			busy <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.conn.mu.Lock()
		active := s.conn.open - s.conn.waiting.Len()
		s.conn.mu.Unlock()
		if active == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d active connections, want 4", active)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := healthz(addr, 5*time.Second); err == nil {
		t.Fatal("a fifth connection was served while the cap of 4 was busy")
	}
	close(release)
	for range 4 {
		if err := <-busy; err != nil {
			t.Fatal(err)
		}
	}
	if err := healthz(addr, 5*time.Second); err != nil {
		t.Fatalf("after the busy ones ended: %v", err)
	}
}

func TestMaxConnsFollowsTheFileLimit(t *testing.T) {
	for _, tt := range []struct {
		limit  int
		nofile uint64
		want   int
	}{
		{256, 1024, 256}, {256, 400, 100}, {256, 0, 256}, {256, 2, 1},
	} {
		if got := MaxConnsFor(tt.limit, tt.nofile); got != tt.want {
			t.Errorf("MaxConnsFor(%d, %d) = %d, want %d", tt.limit, tt.nofile, got, tt.want)
		}
	}
	if n := fileLimit(); n == 0 {
		t.Skipf("RLIMIT_NOFILE unknown on %s", os.Getenv("GOOS"))
	}
}
