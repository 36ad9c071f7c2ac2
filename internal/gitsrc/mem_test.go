package gitsrc

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// largeFileMiB is the size of the large file of TestSyncLargeFileMemory
// (issue 9, case 9: 300 MB cost about 1 GB to clone and again to fetch).
const largeFileMiB = 300

// writeLarge writes a file of mib MiB of distinct lines (compressible, so
// that making the test repository is quick; what is measured is whether a
// whole object is held in memory, which does not depend on that).
func writeLarge(t *testing.T, p string, mib int, seed string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	line := 0
	for n := 0; n < mib<<20; line++ {
		k, _ := fmt.Fprintf(w, "%s line %d of a large file in git\n", seed, line)
		n += k
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// childPeakRSS runs Sync of url into dir in a child process (this test
// binary) and returns the child's peak resident set size in MiB.
func childPeakRSS(t *testing.T, url, dir string) float64 {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^TestChildSync$", "-test.count=1")
	cmd.Env = append(os.Environ(), childURL+"="+url, childDir+"="+dir, childAnyFile+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child Sync: %v\n%s", err, out)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatal("no rusage")
	}
	return float64(ru.Maxrss) / 1024 // Linux reports KiB
}

// packMiB is the size of the pack files and loose objects under dir in MiB.
func objectsMiB(t *testing.T, dir string) float64 {
	t.Helper()
	var n int64
	err := filepath.Walk(filepath.Join(dir, "objects"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return float64(n) / (1 << 20)
}

// TestSyncLargeFileMemory measures the peak RSS of a clone and a fetch of a
// repository holding a 300 MiB file, in a child process, over a local path
// (loose objects and packed) and over smart HTTP. The bounds are generous;
// the figures are logged.
func TestSyncLargeFileMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes several 300 MiB files")
	}
	u := newUpstream(t)
	u.write("README.md", "large\n", 0o644)
	u.commit("small")
	base := childPeakRSS(t, u.dir, filepath.Join(t.TempDir(), "base"))
	t.Logf("baseline: clone of a one-file repository: peak RSS %.0f MiB", base)

	writeLarge(t, filepath.Join(u.dir, "big1.txt"), largeFileMiB, "one")
	u.commit("big1")
	bound := base + 100 // streaming: never the whole object in memory

	local := filepath.Join(t.TempDir(), "local")
	rss := childPeakRSS(t, u.dir, local)
	t.Logf("local clone, loose %d MiB object: peak RSS %.0f MiB (objects %.0f MiB)", largeFileMiB, rss, objectsMiB(t, local))
	if rss > bound {
		t.Errorf("local clone: peak RSS %.0f MiB, want <= %.0f", rss, bound)
	}

	writeLarge(t, filepath.Join(u.dir, "big2.txt"), largeFileMiB, "two")
	u.commit("big2")
	rss = childPeakRSS(t, u.dir, local)
	t.Logf("local fetch, new loose %d MiB object: peak RSS %.0f MiB", largeFileMiB, rss)
	if rss > bound {
		t.Errorf("local fetch: peak RSS %.0f MiB, want <= %.0f", rss, bound)
	}

	// Packed upstream: the clone copies the pack; a fetch reads the new
	// object out of the upstream's pack.
	runGit(t, u.dir, "gc", "-q")
	packed := filepath.Join(t.TempDir(), "packed")
	rss = childPeakRSS(t, u.dir, packed)
	t.Logf("local clone, packed upstream: peak RSS %.0f MiB (objects %.0f MiB)", rss, objectsMiB(t, packed))
	if rss > bound {
		t.Errorf("local clone of a packed upstream: peak RSS %.0f MiB, want <= %.0f", rss, bound)
	}
	writeLarge(t, filepath.Join(u.dir, "big3.txt"), largeFileMiB, "three")
	u.commit("big3")
	runGit(t, u.dir, "repack", "-q", "-d")
	rss = childPeakRSS(t, u.dir, packed)
	t.Logf("local fetch, new object packed upstream: peak RSS %.0f MiB", rss)
	if rss > bound {
		t.Errorf("local fetch from a packed upstream: peak RSS %.0f MiB, want <= %.0f", rss, bound)
	}

	// Smart HTTP (git http-backend on 127.0.0.1).
	execPath := runGit(t, "", "--exec-path")
	h := &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Dir(u.dir), "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"},
	}
	srv := httptest.NewServer(http.HandlerFunc(h.ServeHTTP))
	t.Cleanup(srv.Close)
	url := srv.URL + "/" + filepath.Base(u.dir)
	remote := filepath.Join(t.TempDir(), "remote")
	rss = childPeakRSS(t, url, remote)
	objs := objectsMiB(t, remote)
	t.Logf("HTTP clone, three %d MiB files: peak RSS %.0f MiB (objects %.0f MiB)", largeFileMiB, rss, objs)
	if limit := base + largeFileMiB + 100; rss > limit {
		t.Errorf("HTTP clone: peak RSS %.0f MiB, want <= %.0f", rss, limit)
	}
	writeLarge(t, filepath.Join(u.dir, "big4.txt"), largeFileMiB, "four")
	u.commit("big4")
	rss = childPeakRSS(t, url, remote)
	t.Logf("HTTP fetch, one new %d MiB file: peak RSS %.0f MiB", largeFileMiB, rss)
	if limit := base + largeFileMiB + 100; rss > limit {
		t.Errorf("HTTP fetch: peak RSS %.0f MiB, want <= %.0f", rss, limit)
	}
	_ = strconv.Itoa
	_ = strings.TrimSpace
	_ = context.Background
}
