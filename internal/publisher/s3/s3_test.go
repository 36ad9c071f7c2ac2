package s3

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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

// TestFaults runs the shared fault tests of conditional writes whose
// outcome is unknown.
func TestFaults(t *testing.T) {
	srv := testenv.S3(t)
	storetest.RunFaults(t, DefaultMaxAttempts, func(t *testing.T, fault func(*http.Request) testenv.Fault) (store.Store, *testenv.Proxy) {
		proxy := testenv.NewProxy(t, srv.Endpoint, fault)
		return newStore(t, srv, proxy.URL), proxy
	})
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
