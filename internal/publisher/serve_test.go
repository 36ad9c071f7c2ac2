package publisher

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/publisher/s3"
	"github.com/chartsync/chartsync/internal/publisher/store"
	"github.com/chartsync/chartsync/internal/testenv"
)

// newS3 returns an S3 store on a versitygw of the test's own.
func newS3(t *testing.T) store.Store {
	t.Helper()
	srv := testenv.NewS3(t)
	s, err := s3.New(t.Context(), s3.Config{
		Bucket: srv.NewBucket(t), Region: srv.Region, Endpoint: srv.Endpoint, PathStyle: true,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestServeMalformedPath is issue 9 case 19: a path no object can have is
// the client's fault: 400, logged at debug, never an ERROR nor a 502.
func TestServeMalformedPath(t *testing.T) {
	s, _ := newLocal(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(New(s, Config{Prefix: "stable"}, log).Handler())
	defer srv.Close()
	for _, path := range []string{"/%00.tgz", "/a%00b-1.0.0.tgz", "/%0a.tgz", "/%ff%fe.tgz", "/index.yaml%00"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", path, resp.StatusCode)
		}
	}
	if out := logs.String(); strings.Contains(out, "level=ERROR") || strings.Count(out, "level=DEBUG msg=\"serve: malformed path\"") != 5 {
		t.Errorf("log: want one debug line per malformed path and no error, got:\n%s", out)
	}
	// A name longer than the file system allows is simply not there.
	resp, err := http.Get(srv.URL + "/" + strings.Repeat("a", 300) + ".tgz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of a 304-byte name: %d, want 404", resp.StatusCode)
	}
}

// TestServeHTTPSemantics checks ETag, conditional GET, HEAD and ranges on
// a store that seeks (local) and one that streams (S3).
func TestServeHTTPSemantics(t *testing.T) {
	data := make([]byte, 100_000)
	rand.Read(data)
	for _, tc := range []struct {
		name     string
		open     func(t *testing.T) store.Store
		seekable bool
	}{
		{"local", func(t *testing.T) store.Store { s, _ := newLocal(t); return s }, true},
		{"s3", newS3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			if err := s.Create(t.Context(), "stable/a-1.0.0.tgz", data); err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(New(s, Config{Prefix: "stable"}, quiet()).Handler())
			defer srv.Close()
			url := srv.URL + "/a-1.0.0.tgz"

			resp, body := do(t, "GET", url, nil)
			etag := resp.Header.Get("ETag")
			if resp.StatusCode != 200 || !bytes.Equal(body, data) || etag == "" || resp.ContentLength != int64(len(data)) {
				t.Fatalf("GET: %d, %d bytes (Content-Length %d), ETag %q", resp.StatusCode, len(body), resp.ContentLength, etag)
			}
			if resp, _ := do(t, "GET", url, map[string]string{"If-None-Match": etag}); resp.StatusCode != http.StatusNotModified {
				t.Errorf("conditional GET: %d, want 304", resp.StatusCode)
			}
			resp, body = do(t, "HEAD", url, nil)
			if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(len(data)) || resp.Header.Get("ETag") != etag {
				t.Errorf("HEAD: %d, body %d bytes, Content-Length %d, ETag %q", resp.StatusCode, len(body), resp.ContentLength, resp.Header.Get("ETag"))
			}
			resp, body = do(t, "GET", url, map[string]string{"Range": "bytes=10-19"})
			switch {
			case tc.seekable && (resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[10:20])):
				t.Errorf("range GET: %d, %d bytes; want 206 and bytes 10-19", resp.StatusCode, len(body))
			case !tc.seekable && (resp.StatusCode != 200 || !bytes.Equal(body, data)):
				t.Errorf("range GET of a streamed object: %d, %d bytes; want 200 and the whole object", resp.StatusCode, len(body))
			}
			if resp, _ := do(t, "GET", srv.URL+"/b-1.0.0.tgz", nil); resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET missing: %d, want 404", resp.StatusCode)
			}
		})
	}
}

func do(t *testing.T, method, url string, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestServeLargeObjectToSlowClients is issue 9 case 8 (serve): several
// slow clients downloading a large object at once cost the server a few
// buffers each, not the object: the heap grows by far less than one copy.
func TestServeLargeObjectToSlowClients(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 3 x 96 MiB")
	}
	const size = 96 << 20
	const clients = 3
	for _, tc := range []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"local", func(t *testing.T) store.Store { s, _ := newLocal(t); return s }},
		{"s3", newS3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			want := putLarge(t, s, "stable/big-1.0.0.tgz", size)
			srv := httptest.NewServer(New(s, Config{Prefix: "stable"}, quiet()).Handler())
			defer srv.Close()

			base := heapInUse()
			var peak atomic.Uint64
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				for {
					if h := heapInUse(); h > peak.Load() {
						peak.Store(h)
					}
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			}()
			var wg sync.WaitGroup
			sums := make([][]byte, clients)
			for i := range clients {
				wg.Go(func() { sums[i] = slowDownload(t, srv.URL+"/big-1.0.0.tgz") })
			}
			wg.Wait()
			close(stop)
			<-sampled
			for i, sum := range sums {
				if !bytes.Equal(sum, want) {
					t.Errorf("client %d got other bytes", i)
				}
			}
			growth := int64(peak.Load()) - int64(base)
			t.Logf("%s: %d clients x %d MiB: heap in use grew by %.1f MiB at most", tc.name, clients, size>>20, float64(growth)/(1<<20))
			if limit := int64(32 << 20); growth > limit {
				t.Errorf("heap grew by %d MiB while serving, want under %d MiB (one copy of the object is %d MiB)",
					growth>>20, limit>>20, size>>20)
			}
		})
	}
}

// putLarge stores size random bytes at key without keeping them, and
// returns their sha256.
func putLarge(t *testing.T, s store.Store, key string, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	sum := sha256.Sum256(data)
	if err := s.Create(t.Context(), key, data); err != nil {
		t.Fatal(err)
	}
	return sum[:]
}

// slowDownload reads url in small pieces with pauses, as a slow client
// does, and returns the sha256 of the body.
func slowDownload(t *testing.T, url string) []byte {
	c := &http.Client{Transport: &http.Transport{
		DialContext:     (&net.Dialer{}).DialContext,
		ReadBufferSize:  16 << 10,
		WriteBufferSize: 16 << 10,
	}}
	resp, err := c.Get(url)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer resp.Body.Close()
	h := sha256.New()
	buf := make([]byte, 256<<10)
	for {
		n, err := resp.Body.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Error(err)
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return h.Sum(nil)
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
