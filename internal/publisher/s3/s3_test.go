package s3

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/publisher/store"
	"github.com/chartsync/chartsync/internal/publisher/storetest"
	"github.com/chartsync/chartsync/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newStore(t *testing.T, srv *testenv.S3Server, endpoint string) *Store {
	t.Helper()
	s, err := New(t.Context(), Config{
		Bucket:          srv.NewBucket(t),
		Region:          srv.Region,
		Endpoint:        endpoint,
		PathStyle:       true,
		AccessKeyID:     srv.AccessKey,
		SecretAccessKey: srv.SecretKey,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.backoff = 10 * time.Millisecond
	return s
}

func TestConformance(t *testing.T) {
	srv := testenv.S3(t)
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, srv, srv.Endpoint) })
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no bucket", Config{Endpoint: "http://127.0.0.1:1"}, "bucket is required"},
		{"key without secret", Config{Bucket: "b", Endpoint: "http://127.0.0.1:1", AccessKeyID: "a"}, "set together"},
		{"token without keys", Config{Bucket: "b", Endpoint: "http://127.0.0.1:1", SessionToken: "t"}, "session token"},
		{"negative attempts", Config{Bucket: "b", Endpoint: "http://127.0.0.1:1", MaxAttempts: -1}, "negative"},
		{"endpoint without region", Config{Bucket: "b", Endpoint: "http://127.0.0.1:1"}, ""},
	}
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(t.Context(), tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if s.String() != "s3://b at http://127.0.0.1:1" || !s.Atomic() {
					t.Errorf("String() = %q, Atomic() = %v", s.String(), s.Atomic())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New: err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

// TestNewUsesEnvironment checks that credentials and region come from the
// AWS conventions when the config leaves them empty.
func TestNewUsesEnvironment(t *testing.T) {
	srv := testenv.S3(t)
	bucket := srv.NewBucket(t)
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_REGION", srv.Region)
	s, err := New(t.Context(), Config{Bucket: bucket, Endpoint: srv.Endpoint, PathStyle: true})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Create(t.Context(), "a", []byte("a")); err != nil {
		t.Fatalf("Create with environment credentials: %v", err)
	}

	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	s, err = New(t.Context(), Config{Bucket: bucket, Endpoint: srv.Endpoint, PathStyle: true})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, _, err := s.Get(t.Context(), "a"); err == nil || errors.Is(err, store.ErrNotExist) {
		t.Fatalf("Get with a wrong secret: err = %v, want an access error", err)
	}
}

func TestMissingBucketIsNotErrNotExist(t *testing.T) {
	srv := testenv.S3(t)
	s := newStore(t, srv, srv.Endpoint)
	s.bucket = "no-such-bucket"
	if _, _, err := s.Get(t.Context(), "index.yaml"); err == nil || errors.Is(err, store.ErrNotExist) {
		t.Errorf("Get in a missing bucket: err = %v, want an error that is not ErrNotExist", err)
	}
	if _, err := s.Replace(t.Context(), "index.yaml", []byte("x"), "0123"); err == nil || errors.Is(err, store.ErrNotExist) {
		t.Errorf("Replace in a missing bucket: err = %v, want an error that is not ErrNotExist", err)
	}
}

// faultProxy forwards requests to an S3 server and injects faults into the
// PUT requests chosen by fault (n counts PUTs from 1).
type faultProxy struct {
	target *url.URL
	fault  func(n int) fault

	mu   sync.Mutex
	puts int
}

type fault int

const (
	pass      fault = iota
	cutBefore       // close the connection without forwarding the request
	cutAfter        // forward the request, then close the connection without answering
	slowDown        // answer 503 SlowDown without forwarding
	serverErr       // forward the request, then answer 500 instead of the real answer
)

func newFaultProxy(t *testing.T, srv *testenv.S3Server, fn func(n int) fault) (*faultProxy, string) {
	t.Helper()
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{target: target, fault: fn}
	ts := httptest.NewServer(p)
	t.Cleanup(ts.Close)
	return p, ts.URL
}

func (p *faultProxy) putCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.puts
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := pass
	if r.Method == http.MethodPut {
		p.mu.Lock()
		p.puts++
		f = p.fault(p.puts)
		p.mu.Unlock()
	}
	switch f {
	case cutBefore:
		hangUp(w)
		return
	case slowDown:
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>slow down</Message></Error>`)
		return
	}
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	out.RequestURI = ""
	out.Host = r.Host // signed by the client
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	switch f {
	case cutAfter:
		hangUp(w)
		return
	case serverErr:
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>`)
		return
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// TestUnknownOutcome checks that a conditional write whose answer is lost
// (or replaced by a server error) is reported from what is really stored:
// the store reads back before it retries, so its own landed write is a
// success, not an ErrExist/ErrConflict for itself.
func TestUnknownOutcome(t *testing.T) {
	srv := testenv.S3(t)
	tests := []struct {
		name     string
		fault    fault
		wantPuts int // PUT requests seen by the proxy
	}{
		// The write landed, the answer was lost: read back, ours, done.
		{"answer lost", cutAfter, 1},
		// The write never reached the server: read back, absent, retry.
		{"request lost", cutBefore, 2},
		// Throttled before the server saw it: retried.
		{"throttled", slowDown, 2},
		// The write landed, the answer is a 500: read back, ours, done.
		{"server error after write", serverErr, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var faultOn int // the PUT number that fails
			proxy, endpoint := newFaultProxy(t, srv, func(n int) fault {
				if n == faultOn {
					return tt.fault
				}
				return pass
			})
			s := newStore(t, srv, endpoint)
			ctx := t.Context()

			faultOn = 1
			if err := s.Create(ctx, "a-1.0.0.tgz", []byte("package")); err != nil {
				t.Fatalf("Create: %v", err)
			}
			if got := proxy.putCount(); got != tt.wantPuts {
				t.Errorf("Create sent %d PUTs, want %d", got, tt.wantPuts)
			}
			if data, _, err := s.Get(ctx, "a-1.0.0.tgz"); err != nil || string(data) != "package" {
				t.Fatalf("Get after Create = %q, %v", data, err)
			}

			v1, err := s.Replace(ctx, "index.yaml", []byte("one"), "")
			if err != nil {
				t.Fatalf("Replace: %v", err)
			}
			faultOn = proxy.putCount() + 1
			v2, err := s.Replace(ctx, "index.yaml", []byte("two"), v1)
			if err != nil {
				t.Fatalf("Replace with a faulty answer: %v", err)
			}
			if data, version, err := s.Get(ctx, "index.yaml"); err != nil || string(data) != "two" || version != v2 {
				t.Errorf("Get = %q, %q, %v; want %q, %q", data, version, err, "two", v2)
			}
		})
	}
}

// TestUnknownOutcomeLostRace checks the other side: when the answer is lost
// and another writer's bytes are stored, the write is a conflict.
func TestUnknownOutcomeLostRace(t *testing.T) {
	srv := testenv.S3(t)
	var s *Store
	_, endpoint := newFaultProxy(t, srv, func(n int) fault {
		if n == 1 {
			return cutBefore
		}
		return pass
	})
	s = newStore(t, srv, endpoint)
	direct := newStore(t, srv, srv.Endpoint)
	direct.bucket = s.bucket
	// Another writer creates the object while our request is lost.
	if err := direct.Create(t.Context(), "a-1.0.0.tgz", []byte("theirs")); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(t.Context(), "a-1.0.0.tgz", []byte("ours")); !errors.Is(err, store.ErrExist) {
		t.Fatalf("Create after a lost request, object created by another: err = %v, want ErrExist", err)
	}
}

// TestPreconditionFailedIsNotRetried counts the PUTs a refused write sends.
func TestPreconditionFailedIsNotRetried(t *testing.T) {
	srv := testenv.S3(t)
	proxy, endpoint := newFaultProxy(t, srv, func(int) fault { return pass })
	s := newStore(t, srv, endpoint)
	ctx := t.Context()
	if err := s.Create(ctx, "a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "a", []byte("b")); !errors.Is(err, store.ErrExist) {
		t.Fatalf("Create: err = %v, want ErrExist", err)
	}
	if _, err := s.Replace(ctx, "a", []byte("b"), "0123456789abcdef0123456789abcdef"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Replace: err = %v, want ErrConflict", err)
	}
	if got := proxy.putCount(); got != 3 {
		t.Errorf("sent %d PUTs, want 3 (412 is never retried)", got)
	}
}

// TestRetriesAreBounded checks that a server that never answers makes the
// write fail with an "outcome unknown" error after MaxAttempts, and that
// nothing is written.
func TestRetriesAreBounded(t *testing.T) {
	srv := testenv.S3(t)
	proxy, endpoint := newFaultProxy(t, srv, func(int) fault { return slowDown })
	s := newStore(t, srv, endpoint)
	err := s.Create(t.Context(), "a", []byte("a"))
	if err == nil || !strings.Contains(err.Error(), "outcome unknown") {
		t.Fatalf("Create: err = %v, want an outcome-unknown error", err)
	}
	if got := proxy.putCount(); got != DefaultMaxAttempts {
		t.Errorf("sent %d PUTs, want %d", got, DefaultMaxAttempts)
	}
	if _, _, err := s.Get(t.Context(), "a"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Get: err = %v, want ErrNotExist", err)
	}
}

// TestServerDown checks that a stopped server gives errors (not
// ErrNotExist), and that the store works again once it is back.
func TestServerDown(t *testing.T) {
	srv := testenv.NewS3(t)
	s := newStore(t, srv, srv.Endpoint)
	ctx := t.Context()
	if err := s.Create(ctx, "a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if _, _, err := s.Get(ctx, "a"); err == nil || errors.Is(err, store.ErrNotExist) {
		t.Errorf("Get with the server down: err = %v", err)
	}
	if err := s.Create(ctx, "b", []byte("b")); err == nil {
		t.Error("Create with the server down succeeded")
	}
	srv.Start(t)
	if data, _, err := s.Get(ctx, "a"); err != nil || !bytes.Equal(data, []byte("a")) {
		t.Errorf("Get after restart = %q, %v", data, err)
	}
	if err := s.Create(ctx, "b", []byte("b")); err != nil {
		t.Errorf("Create after restart: %v", err)
	}
}
