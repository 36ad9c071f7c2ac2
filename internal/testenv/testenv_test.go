package testenv

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestMain(m *testing.M) { Main(m) }

func TestHelm(t *testing.T) {
	out, err := exec.Command(Helm(t), "version", "--short").CombinedOutput()
	if err != nil {
		t.Fatalf("helm version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "v3.") {
		t.Errorf("helm version = %q, want v3.x", out)
	}
}

func TestS3(t *testing.T) {
	s := S3(t)
	if S3(t) != s {
		t.Fatal("S3 started a second shared server")
	}
	b1, b2 := s.NewBucket(t), s.NewBucket(t)
	if b1 == b2 {
		t.Fatalf("NewBucket returned %q twice", b1)
	}
	putS3(t, s, b1, "a/b.txt", "hello")
	// The posix backend stores objects as plain files.
	if data, err := os.ReadFile(filepath.Join(s.Dir, b1, "a", "b.txt")); err != nil || string(data) != "hello" {
		t.Errorf("object file: %q, %v", data, err)
	}

	// Stop and Start keep the port and the data. Safe here: this package's
	// tests do not run in parallel.
	s.Stop()
	if _, err := http.Get(s.Endpoint + "/health"); err == nil {
		t.Error("server still answers after Stop")
	}
	s.Start(t)
	if got := getS3(t, s, b1, "a/b.txt"); got != "hello" {
		t.Errorf("after restart, object = %q", got)
	}
}

func putS3(t *testing.T, s *S3Server, bucket, key, data string) {
	t.Helper()
	_, err := s.client.PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(data),
	})
	if err != nil {
		t.Fatalf("PutObject: %v", err)
	}
}

func getS3(t *testing.T, s *S3Server, bucket, key string) string {
	t.Helper()
	out, err := s.client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	defer out.Body.Close()
	data, _ := io.ReadAll(out.Body)
	return string(data)
}

func TestSwift(t *testing.T) {
	s := Swift(t)
	if Swift(t) != s {
		t.Fatal("Swift started a second shared server")
	}
	c1, c2 := s.NewContainer(t), s.NewContainer(t)
	if c1 == c2 {
		t.Fatalf("NewContainer returned %q twice", c1)
	}
	swiftDo(t, s, http.MethodPut, c1+"/a/b.txt", "hello", http.StatusCreated)
	if got := swiftDo(t, s, http.MethodGet, c1+"/a/b.txt", "", http.StatusOK); got != "hello" {
		t.Errorf("GET = %q", got)
	}
	swiftDo(t, s, http.MethodGet, c2+"/a/b.txt", "", http.StatusNotFound)

	s.Stop()
	if _, err := http.Get(s.proxyURL + "/healthcheck"); err == nil {
		t.Error("proxy still answers after Stop")
	}
	s.Start(t)
	if got := swiftDo(t, s, http.MethodGet, c1+"/a/b.txt", "", http.StatusOK); got != "hello" {
		t.Errorf("after restart, GET = %q", got)
	}
}

func swiftDo(t *testing.T, s *SwiftServer, method, path, body string, want int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	storageURL, token, err := s.auth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, method, storageURL+"/"+path, bytes.NewReader([]byte(body)))
	req.Header.Set("X-Auth-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s, want %d", method, path, resp.Status, want)
	}
	return string(data)
}

// TestPrivateServers checks that NewS3 and NewSwift start servers of the
// test's own, and stop them at the test's cleanup.
func TestPrivateServers(t *testing.T) {
	var s3URL, swiftURL string
	t.Run("start", func(t *testing.T) {
		s := NewS3(t)
		if s == sharedS3 {
			t.Fatal("NewS3 returned the shared server")
		}
		putS3(t, s, s.NewBucket(t), "k", "v")
		s3URL = s.Endpoint + "/health"

		w := NewSwift(t)
		if w == sharedSwift {
			t.Fatal("NewSwift returned the shared server")
		}
		swiftDo(t, w, http.MethodPut, w.NewContainer(t)+"/k", "v", http.StatusCreated)
		swiftURL = w.proxyURL + "/healthcheck"
	})
	for _, u := range []string{s3URL, swiftURL} {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			t.Errorf("%s still answers after the owning test ended", u)
		}
	}
}
