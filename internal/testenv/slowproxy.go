package testenv

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// SlowProxy is an HTTP proxy on 127.0.0.1 in front of one server that
// delays the request bodies it is told to: a slow link for chosen uploads
// (the request's headers reach the server at once, its body later).
// Unlike Proxy it handles requests concurrently, so one slow upload does not
// hold up the others. It keeps the client's Host header (S3 signatures stay
// valid; Swift's tempauth hands out storage URLs that point at the proxy).
type SlowProxy struct {
	URL string // base URL of the proxy, to use in place of the server's

	delay atomic.Int64 // nanoseconds
	slow  atomic.Pointer[func(*http.Request) bool]
	gate  atomic.Pointer[chan struct{}]
	slowN atomic.Int64
}

// NewSlowProxy starts a proxy to target (a base URL) that passes every
// request until SetSlow is called. It is closed at t's cleanup.
func NewSlowProxy(t testing.TB, target string) *SlowProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("testenv: slow proxy target %q: %v", target, err)
	}
	p := &SlowProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host
			if pick := p.slow.Load(); pick != nil && r.In.Body != nil && (*pick)(r.In) {
				p.slowN.Add(1)
				// Send the headers at once and the body later, as a slow
				// link does: without this the transport would buffer the
				// headers until the body's first bytes, and the server would
				// see the request only when the delay is over.
				r.Out.Header.Set("Expect", "100-continue")
				r.Out.Body = &slowBody{r: r.Out.Body, delay: time.Duration(p.delay.Load()), gate: *p.gate.Load()}
			}
		},
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// SetSlow makes the proxy hold the body of every later request for which
// pick is true for delay, or until Release, before sending it on; nil pick
// slows nothing. pick is called concurrently.
func (p *SlowProxy) SetSlow(delay time.Duration, pick func(*http.Request) bool) {
	p.delay.Store(int64(delay))
	gate := make(chan struct{})
	p.gate.Store(&gate)
	if pick == nil {
		p.slow.Store(nil)
		return
	}
	p.slow.Store(&pick)
}

// Release sends on every body held since the last SetSlow at once.
func (p *SlowProxy) Release() {
	if g := p.gate.Load(); g != nil {
		select {
		case <-*g:
		default:
			close(*g)
		}
	}
}

// Slowed returns how many request bodies the proxy has delayed.
func (p *SlowProxy) Slowed() int { return int(p.slowN.Load()) }

// slowBody waits before its first byte.
type slowBody struct {
	r      io.ReadCloser
	delay  time.Duration
	gate   chan struct{}
	waited bool
}

func (b *slowBody) Read(p []byte) (int, error) {
	if !b.waited {
		b.waited = true
		t := time.NewTimer(b.delay)
		select {
		case <-t.C:
		case <-b.gate:
		}
		t.Stop()
	}
	return b.r.Read(p)
}

func (b *slowBody) Close() error { return b.r.Close() }
