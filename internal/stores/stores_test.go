package stores

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/config"
)

func noEnv(string) string { return "" }

// silentServer accepts connections on 127.0.0.1 and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func secret(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func s3Settings(t *testing.T, addr string, timeout time.Duration) config.Store {
	return config.Store{Type: "s3", Timeout: config.Duration{Duration: timeout}, S3: &config.S3Store{
		Bucket: "charts", Region: "us-east-1", Endpoint: "http://" + addr, PathStyle: true,
		AccessKeyIDFile: secret(t, "AK\n"), SecretAccessKeyFile: secret(t, "SK\n"),
	}}
}

// Issue 13 point 1: a store that accepts and never answers costs each
// request its timeout, and the error says so; the caller's own cancellation
// is not reported as a timeout.
func TestRequestsToASilentStoreTimeOut(t *testing.T) {
	addr := silentServer(t)
	st, err := Open(context.Background(), s3Settings(t, addr, 500*time.Millisecond), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err = st.Get(context.Background(), "stable/index.yaml")
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get from a silent store: %v, want ErrTimeout and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Get took %s with a 500ms timeout", d)
	}
	if _, err := st.List(context.Background(), "stable/"); !errors.Is(err, ErrTimeout) {
		t.Errorf("List from a silent store: %v, want ErrTimeout", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	st, err = Open(ctx, s3Settings(t, addr, time.Minute), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = st.Get(ctx, "stable/index.yaml")
	if err == nil || errors.Is(err, ErrTimeout) {
		t.Errorf("Get cancelled by its caller: %v, want the caller's error, not ErrTimeout", err)
	}
}

// Check reads every secret file and checks the settings, and creates
// nothing; an empty secret file is refused.
func TestCheckCreatesNothingAndRefusesEmptySecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	local := config.Store{Type: "local", Timeout: config.Duration{Duration: time.Minute}, Local: &config.LocalStore{Path: dir}}
	if err := Check(local, noEnv); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Check created %s", dir)
	}
	s3 := s3Settings(t, "127.0.0.1:1", time.Minute)
	s3.S3.SecretAccessKeyFile = secret(t, " \n")
	if err := Check(s3, noEnv); err == nil || !strings.Contains(err.Error(), "secret_access_key_file") {
		t.Errorf("empty secret file: %v", err)
	}
	s3.S3.SecretAccessKeyFile = filepath.Join(t.TempDir(), "missing")
	if err := Check(s3, noEnv); err == nil || !strings.Contains(err.Error(), "secret_access_key_file") {
		t.Errorf("missing secret file: %v", err)
	}
	sw := config.Store{Type: "swift", Timeout: config.Duration{Duration: time.Minute}, Swift: &config.SwiftStore{Container: "charts"}}
	if err := Check(sw, noEnv); err == nil {
		t.Error("swift without auth url or user: accepted")
	}
}
