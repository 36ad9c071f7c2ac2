package s3

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
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

// TestNewProfile checks that Profile selects credentials from the shared
// credentials file.
func TestNewProfile(t *testing.T) {
	srv := testenv.S3(t)
	bucket := srv.NewBucket(t)
	creds := filepath.Join(t.TempDir(), "credentials")
	content := "[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n" +
		"[chartsync]\naws_access_key_id = " + srv.AccessKey + "\naws_secret_access_key = " + srv.SecretKey + "\n"
	if err := os.WriteFile(creds, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	for _, tt := range []struct {
		profile string
		wantOK  bool
	}{{"chartsync", true}, {"", false}} {
		s, err := New(t.Context(), Config{Bucket: bucket, Endpoint: srv.Endpoint, PathStyle: true, Profile: tt.profile})
		if err != nil {
			t.Fatalf("New(profile %q): %v", tt.profile, err)
		}
		_, err = s.List(t.Context(), "")
		if (err == nil) != tt.wantOK {
			t.Errorf("profile %q: List err = %v, want success %v", tt.profile, err, tt.wantOK)
		}
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

// TestUnknownOutcome checks that a conditional write whose answer is lost
// (or replaced by a server error) is reported from what is really stored:
// the store reads back before it retries, so its own landed write is a
// success, not an ErrExist/ErrConflict for itself.
func TestUnknownOutcome(t *testing.T) {
	srv := testenv.S3(t)
	tests := []struct {
		name     string
		fault    testenv.Fault
		wantPuts int // PUT requests seen by the proxy
	}{
		// The write landed, the answer was lost: read back, ours, done.
		{"answer lost", testenv.CutAfter, 1},
		// The write never reached the server: read back, absent, retry.
		{"request lost", testenv.CutBefore, 2},
		// Throttled before the server saw it: retried.
		{"throttled", testenv.Unavailable, 2},
		// The write landed, the answer is a 500: read back, ours, done.
		{"server error after write", testenv.ErrorAfter, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var faultOn atomic.Int64 // the PUT number that fails
			proxy := testenv.NewProxy(t, srv.Endpoint, testenv.PutFaults(tt.fault, func(n int) bool { return int64(n) == faultOn.Load() }))
			s := newStore(t, srv, proxy.URL)
			ctx := t.Context()

			faultOn.Store(1)
			if err := s.Create(ctx, "a-1.0.0.tgz", []byte("package")); err != nil {
				t.Fatalf("Create: %v", err)
			}
			if got := proxy.Count(http.MethodPut); got != tt.wantPuts {
				t.Errorf("Create sent %d PUTs, want %d", got, tt.wantPuts)
			}
			if data, _, err := s.Get(ctx, "a-1.0.0.tgz"); err != nil || string(data) != "package" {
				t.Fatalf("Get after Create = %q, %v", data, err)
			}

			v1, err := s.Replace(ctx, "index.yaml", []byte("one"), "")
			if err != nil {
				t.Fatalf("Replace: %v", err)
			}
			faultOn.Store(int64(proxy.Count(http.MethodPut) + 1))
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
	proxy := testenv.NewProxy(t, srv.Endpoint, testenv.PutFaults(testenv.CutBefore, func(n int) bool { return n == 1 }))
	s := newStore(t, srv, proxy.URL)
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
	proxy := testenv.NewProxy(t, srv.Endpoint, nil)
	s := newStore(t, srv, proxy.URL)
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
	if got := proxy.Count(http.MethodPut); got != 3 {
		t.Errorf("sent %d PUTs, want 3 (412 is never retried)", got)
	}
}

// TestRetriesAreBounded checks that a server that never answers makes the
// write fail with an "outcome unknown" error after MaxAttempts, and that
// nothing is written.
func TestRetriesAreBounded(t *testing.T) {
	srv := testenv.S3(t)
	proxy := testenv.NewProxy(t, srv.Endpoint, testenv.PutFaults(testenv.Unavailable, func(int) bool { return true }))
	s := newStore(t, srv, proxy.URL)
	err := s.Create(t.Context(), "a", []byte("a"))
	if err == nil || !strings.Contains(err.Error(), "outcome unknown") {
		t.Fatalf("Create: err = %v, want an outcome-unknown error", err)
	}
	if got := proxy.Count(http.MethodPut); got != DefaultMaxAttempts {
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
