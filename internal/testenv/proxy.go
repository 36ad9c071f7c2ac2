package testenv

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

// Fault is what a Proxy does with one request.
type Fault int

const (
	// Pass forwards the request and returns the answer.
	Pass Fault = iota
	// CutBefore closes the client's connection without forwarding: the
	// server never sees the request.
	CutBefore
	// CutAfter forwards the request, waits for the server's answer, then
	// closes the client's connection without answering: the request took
	// effect, the client cannot know.
	CutAfter
	// Unavailable answers 503 (with an S3 SlowDown body) without forwarding.
	Unavailable
	// ErrorAfter forwards the request, then answers 500 instead of the
	// server's answer.
	ErrorAfter
)

// Proxy is an HTTP proxy on 127.0.0.1 in front of one server, which injects
// faults into chosen requests. It keeps the client's Host header, so S3
// signatures stay valid and Swift's tempauth hands out storage URLs that
// point at the proxy.
type Proxy struct {
	URL string // base URL of the proxy, to use in place of the server's

	target *url.URL
	fault  func(r *http.Request) Fault

	mu     sync.Mutex
	counts map[string]int
}

// NewProxy starts a proxy to target (a base URL such as S3Server.Endpoint)
// that asks fault what to do with each request (fault may be nil: pass
// everything). It is closed at t's cleanup. fault is called from the
// proxy's goroutines, one request at a time.
func NewProxy(t testing.TB, target string, fault func(r *http.Request) Fault) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("testenv: proxy target %q: %v", target, err)
	}
	p := &Proxy{target: u, fault: fault, counts: map[string]int{}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Count returns how many requests with method the proxy has received.
func (p *Proxy) Count(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[method]
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.counts[r.Method]++
	f := Pass
	if p.fault != nil {
		f = p.fault(r)
	}
	p.mu.Unlock()

	switch f {
	case CutBefore:
		hangUp(w)
		return
	case Unavailable:
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected by testenv.Proxy</Message></Error>`)
		return
	}
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	out.RequestURI = ""
	out.Host = r.Host
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		hangUp(w)
		return
	}
	switch f {
	case CutAfter:
		hangUp(w)
		return
	case ErrorAfter:
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected by testenv.Proxy</Message></Error>`)
		return
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

// hangUp closes the client's connection without an answer.
func hangUp(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
	}
}

// PutFaults returns a fault function for NewProxy that applies fault to the
// PUT requests for which pick (given the PUT's number, from 1) is true.
// NewProxy calls it under its lock, one request at a time.
func PutFaults(fault Fault, pick func(n int) bool) func(r *http.Request) Fault {
	puts := 0
	return func(r *http.Request) Fault {
		if r.Method != http.MethodPut {
			return Pass
		}
		puts++
		if pick(puts) {
			return fault
		}
		return Pass
	}
}
