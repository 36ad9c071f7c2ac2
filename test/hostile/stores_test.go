package hostile

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"

	"github.com/chartsync/chartsync/internal/testenv"
)

// The cases of issue 9 about the stores, the index file and serve: 4 (the
// local store's part), 8, 12, 17, 19 and 20.

// TestCase4LongNameFailsAloneEveryCycle: a chart whose package file name
// is longer than a file name can be fails alone, naming the chart, in every
// cycle; the other charts are published and the repository keeps working.
// (Discover refuses it up front; a name that passes Discover but not the
// file system fails alone in the store: the publisher's own test.)
func TestCase4LongNameFailsAloneEveryCycle(t *testing.T) {
	long := strings.Repeat("a", 250)
	r := newRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"), testenv.Chart("charts/long", long, "1.0.0")))
	r.Commit("a name no file system holds")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	for cycle := range 2 {
		res := s.mustRun(1, "run", "--once")
		if cycle == 0 {
			res.published(t, "charts/ok")
		}
		o := res.charts["charts/long"]
		if o.Msg != "chart failed" || !strings.Contains(o.Err, long) {
			t.Errorf("cycle %d: long name: %+v, want a failure naming the chart", cycle, o)
		}
		want(t, "index", s.indexed(), "ok-1.0.0")
		want(t, "store", s.storedNames(), "ok-1.0.0.tgz")
	}
}

// sparse makes a file of size bytes that takes no disk space.
func sparse(t *testing.T, name string, size int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// TestCase8IndexAboveLimitRefusedUnread: a 200 MB index.yaml is refused by
// its size, before it is read: quickly, in little memory, with an error
// naming the index and the limit; nothing is published and the index is
// not touched.
func TestCase8IndexAboveLimitRefusedUnread(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Chart("charts/ok", "ok", "1.0.0"))
	r.Commit("one chart")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	index := filepath.Join(s.store, "index.yaml")
	sparse(t, index, 200<<20)
	before, _ := os.Stat(index)
	res := s.mustRun(1, "run", "--once")
	for _, w := range []string{"index unreadable", "index.yaml", "200 MiB", "64 MiB", "max_index_size"} {
		if !strings.Contains(res.stderr, w) {
			t.Errorf("log lacks %q:\n%s", w, res.stderr)
		}
	}
	if after, _ := os.Stat(index); !os.SameFile(before, after) || after.ModTime() != before.ModTime() {
		t.Error("index.yaml was rewritten")
	}
	want(t, "store", s.storedNames())
	t.Logf("refused a 200 MiB index in %v with a peak RSS of %d MiB", res.elapsed.Round(time.Millisecond), res.maxRSS>>20)
	if res.maxRSS > 150<<20 {
		t.Errorf("peak RSS %d MiB: the index was read", res.maxRSS>>20)
	}
}

// TestCase8LargeObjectsInTheStore: a 1 GiB .tgz in the store that is not a
// chart is never read (it is above the package limit): the cycle stays
// small, says why it skipped it, and publishes the rest. A built package
// above max_package_size fails alone, naming the package and the limit.
func TestCase8LargeObjectsInTheStore(t *testing.T) {
	r := newRepo(t)
	random := make([]byte, 600<<10)
	rand.Read(random)
	r.Write(testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"), testenv.Chart("charts/big", "big", "1.0.0"),
		map[string]string{"charts/big/files/blob.bin": string(random)}))
	r.Commit("a chart with a large file")
	s := newSite(t, r, []string{"charts/*"}, "", `max_package_size = "512KiB"`)
	sparse(t, filepath.Join(s.store, "huge-1.0.0.tgz"), 1<<30)
	for cycle := range 2 {
		res := s.mustRun(1, "run", "--once")
		res.failed(t, "charts/big", "store", "big-1.0.0.tgz", "512 KiB", "max_package_size")
		if cycle == 0 {
			res.published(t, "charts/ok")
		}
		if !strings.Contains(res.stderr, "stored package not read") || !strings.Contains(res.stderr, "huge-1.0.0.tgz: 1 GiB is above the limit of 512 KiB") {
			t.Errorf("cycle %d: no warning naming the large stored object and the limit:\n%s", cycle, res.stderr)
		}
		want(t, "index", s.indexed(), "ok-1.0.0")
		t.Logf("cycle %d with a 1 GiB object in the store: %v, peak RSS %d MiB", cycle, res.elapsed.Round(time.Millisecond), res.maxRSS>>20)
		if res.maxRSS > 300<<20 {
			t.Errorf("peak RSS %d MiB: the large object was read", res.maxRSS>>20)
		}
	}
}

// serve runs `chartsync serve` for the site until the test ends and
// returns its base URL, the process and its log.
func (s *site) serve(t *testing.T) (string, *exec.Cmd, *bytes.Buffer) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var out bytes.Buffer
	cmd := exec.Command(binary, "serve", "--listen", addr, "--config", s.config, "--log-format", "json", "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	url := "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(url + "/"); err == nil {
			resp.Body.Close()
			return url, cmd, &out
		}
		if time.Now().After(deadline) {
			t.Fatalf("chartsync serve did not start:\n%s", out.String())
		}
	}
}

// peakRSS returns the peak resident set size of a running process.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// TestCase8ServeStreamsToSlowClients: three slow downloads of a 1 GiB
// object from `chartsync serve` cost the process a few buffers each, not
// the object (it held whole objects: 6.5 GB for three).
func TestCase8ServeStreamsToSlowClients(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Chart("charts/ok", "ok", "1.0.0"))
	r.Commit("one chart")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	s.mustRun(0, "run", "--once")
	const size = 1 << 30
	sparse(t, filepath.Join(s.store, "huge-1.0.0.tgz"), size)
	url, cmd, _ := s.serve(t)
	start := time.Now()
	var wg sync.WaitGroup
	got := make([]int64, 3)
	for i := range got {
		wg.Go(func() {
			resp, err := http.Get(url + "/stable/huge-1.0.0.tgz")
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			// Slow at first (the server must hold the rest meanwhile), then
			// as fast as it goes.
			buf := make([]byte, 64<<10)
			for range 200 {
				n, err := io.ReadFull(resp.Body, buf)
				got[i] += int64(n)
				if err != nil {
					t.Error(err)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			got[i] += n
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	rss := peakRSS(t, cmd.Process.Pid)
	t.Logf("3 slow clients x 1 GiB in %v: serve's peak RSS %d MiB", time.Since(start).Round(time.Millisecond), rss>>20)
	for i, n := range got {
		if n != size {
			t.Errorf("client %d got %d bytes, want %d", i, n, size)
		}
	}
	if rss > 200<<20 {
		t.Errorf("serve's peak RSS %d MiB for 3 x 1 GiB: objects are held in memory", rss>>20)
	}
}

// TestCase12ForeignIndexKept: an index another tool wrote (ChartMuseum's
// serverInfo, unknown fields, entries without created, an unquoted
// all-digit digest), as YAML and as JSON, keeps all of it when chartsync
// adds a chart.
func TestCase12ForeignIndexKept(t *testing.T) {
	zeros := strings.Repeat("0", 64)
	foreign := map[string]string{
		"yaml": `apiVersion: v1
serverInfo:
  contextPath: /charts
x-top: kept
entries:
  old:
  - apiVersion: v2
    name: old
    version: 0.1.0
    digest: ` + zeros + `
    urls:
    - old-0.1.0.tgz
    x-entry: kept too
generated: 2020-01-01T00:00:00Z
`,
		"json": `{"apiVersion": "v1", "serverInfo": {"contextPath": "/charts"}, "x-top": "kept",
 "entries": {"old": [{"apiVersion": "v2", "name": "old", "version": "0.1.0", "digest": "` + zeros + `",
   "urls": ["old-0.1.0.tgz"], "x-entry": "kept too"}]},
 "generated": "2020-01-01T00:00:00Z"}`,
	}
	for format, index := range foreign {
		t.Run(format, func(t *testing.T) {
			r := newRepo(t)
			r.Write(testenv.Chart("charts/ok", "ok", "1.0.0"))
			r.Commit("one chart")
			s := newSite(t, r, []string{"charts/*"}, "", "")
			if err := os.MkdirAll(s.store, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(s.store, "index.yaml"), []byte(index), 0o644); err != nil {
				t.Fatal(err)
			}
			res := s.run("run", "--once")
			res.published(t, "charts/ok")
			b, err := os.ReadFile(filepath.Join(s.store, "index.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			text := string(b)
			if format == "json" && !json.Valid(b) {
				t.Errorf("a JSON index was not kept JSON:\n%s", text)
			}
			for _, w := range []string{"serverInfo", "contextPath", "/charts", "x-top", "x-entry", "kept too", zeros, "ok-1.0.0.tgz"} {
				if !strings.Contains(text, w) {
					t.Errorf("index lacks %q:\n%s", w, text)
				}
			}
			if strings.Contains(text, "0001-01-01") || strings.Count(text, "created") != 1 {
				t.Errorf("the entry without created gained one:\n%s", text)
			}
			if format == "yaml" && !strings.Contains(text, "digest: "+zeros+"\n") {
				t.Errorf("the unquoted digest was rewritten:\n%s", text)
			}
			// helm's own reader is strict about YAML: it refuses fields it
			// does not know, in the index as it was before, too; and it
			// reads the unquoted digest as a number, as it did before.
			var idx repo.IndexFile
			if err := yaml.Unmarshal(b, &idx); err != nil {
				t.Fatal(err)
			}
			if len(idx.Entries) != 2 || len(idx.Entries["ok"]) != 1 || len(idx.Entries["old"]) != 1 {
				t.Errorf("index entries: %+v", idx.Entries)
			}
		})
	}
}

// TestCase17DigestCacheUnsavable: when the digest cache cannot be saved
// the cycle succeeds, with a warning naming the file in the state dir.
func TestCase17DigestCacheUnsavable(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Chart("charts/ok", "ok", "1.0.0"))
	r.Commit("one chart")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	// A file where the cache's directory belongs: saving fails as on a
	// read-only or full state dir, even for root.
	if err := os.MkdirAll(s.stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.stateDir, "digests"), []byte("in the way"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := s.mustRun(0, "run", "--once")
	res.published(t, "charts/ok")
	var warned bool
	for _, line := range strings.Split(res.stderr, "\n") {
		if strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, "digest cache not saved") &&
			strings.Contains(line, filepath.Join(s.stateDir, "digests", "stable.bin")) {
			warned = true
		}
		if strings.Contains(line, `"level":"ERROR"`) {
			t.Errorf("error logged: %s", line)
		}
	}
	if !warned {
		t.Errorf("no warning naming the cache file:\n%s", res.stderr)
	}
	want(t, "index", s.indexed(), "ok-1.0.0")
}

// TestCase19ServeMalformedPath: a path no object can have is a 400 logged
// at debug level, never a 502 or an ERROR.
func TestCase19ServeMalformedPath(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Chart("charts/ok", "ok", "1.0.0"))
	r.Commit("one chart")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	s.mustRun(0, "run", "--once")
	url, _, log := s.serve(t)
	for _, path := range []string{"/stable/%00.tgz", "/stable/a%00b-1.0.0.tgz", "/stable/%ff.tgz", "/stable/%0d%0a.tgz"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", path, resp.StatusCode)
		}
	}
	resp, err := http.Get(url + "/stable/ok-1.0.0.tgz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET of the package after them: %d", resp.StatusCode)
	}
	time.Sleep(100 * time.Millisecond) // let the log lines land
	out := log.String()
	if strings.Contains(out, `"level":"ERROR"`) || strings.Count(out, `"level":"DEBUG","msg":"serve: malformed path"`) != 4 {
		t.Errorf("want 4 debug lines and no error:\n%s", out)
	}
}

// TestCase20NoTemporaryFilesServed: temporary files are written outside
// the served directory, and what a killed run left behind (in the
// temporary directory, or next to the packages as earlier releases wrote
// them) is removed by the next run.
func TestCase20NoTemporaryFilesServed(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Chart("charts/ok", "ok", "1.0.0"))
	r.Commit("one chart")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	// What kill -9 at a write leaves: a partial temporary file, older than
	// a minute (a live writer's file is newer, and locked).
	old := time.Now().Add(-time.Hour)
	leftovers := []string{filepath.Join(s.store, ".chartsync-tmp", "4242"), filepath.Join(s.store, ".chartsync-tmp-4242")}
	for _, p := range leftovers {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial package"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	res := s.mustRun(0, "run", "--once")
	res.published(t, "charts/ok")
	want(t, "store", s.storedNames(), "ok-1.0.0.tgz")
	entries, err := os.ReadDir(s.store)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want(t, "store root", names, ".chartsync-tmp", "index.yaml", "ok-1.0.0.tgz")
	url, _, _ := s.serve(t)
	for _, path := range []string{"/stable/.chartsync-tmp/4242", "/stable/.chartsync-tmp"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}
