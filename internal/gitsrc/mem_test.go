package gitsrc

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
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
func childPeakRSS(t testing.TB, url, dir string) float64 {
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
func objectsMiB(t testing.TB, dir string) float64 {
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

// TestSyncLargeFileMemory measures the peak RSS of clones and fetches of a
// repository holding 300 MiB files, in a child process, over a local path
// (loose objects and packed) and over smart HTTP, and of a clone whose pack
// holds a 48 MiB file as a delta. The bounds are generous (100 MiB over the
// baseline, where holding one large object whole would exceed them); the
// figures are logged. The upstream stores files over 64 MiB undeltified
// (core.bigFileThreshold, 512 MiB by default), which only keeps git's own
// repacking of it fast.
func TestSyncLargeFileMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 300 MiB files")
	}
	u := newUpstream(t)
	runGit(t, u.dir, "config", "core.bigFileThreshold", "64m")
	u.write("README.md", "large\n", 0o644)
	u.commit("small")
	base := childPeakRSS(t, u.dir, filepath.Join(t.TempDir(), "base"))
	t.Logf("baseline: clone of a one-file repository: peak RSS %.0f MiB", base)
	bound := base + 100
	check := func(what string, rss float64) {
		t.Helper()
		t.Logf("%s: peak RSS %.0f MiB", what, rss)
		if rss > bound {
			t.Errorf("%s: peak RSS %.0f MiB, want <= %.0f", what, rss, bound)
		}
	}

	writeLarge(t, filepath.Join(u.dir, "big1.txt"), largeFileMiB, "one")
	u.commit("big1")
	local := filepath.Join(t.TempDir(), "local")
	check(fmt.Sprintf("local clone, loose %d MiB object", largeFileMiB), childPeakRSS(t, u.dir, local))
	writeLarge(t, filepath.Join(u.dir, "big2.txt"), largeFileMiB, "two")
	u.commit("big2")
	check(fmt.Sprintf("local fetch, new loose %d MiB object", largeFileMiB), childPeakRSS(t, u.dir, local))

	runGit(t, u.dir, "gc", "-q")
	packed := filepath.Join(t.TempDir(), "packed")
	check("local clone, packed upstream", childPeakRSS(t, u.dir, packed))

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
	check(fmt.Sprintf("HTTP clone, two %d MiB files", largeFileMiB), childPeakRSS(t, url, remote))
	t.Logf("HTTP clone: objects %.0f MiB on disk", objectsMiB(t, remote))
	writeLarge(t, filepath.Join(u.dir, "big3.txt"), largeFileMiB, "three")
	u.commit("big3")
	check(fmt.Sprintf("HTTP fetch, one new %d MiB file", largeFileMiB), childPeakRSS(t, url, remote))

	// Deltas: two versions of a 48 MiB file, the second a delta of the first.
	writeLarge(t, filepath.Join(u.dir, "mid.txt"), 48, "mid")
	u.commit("mid")
	f, err := os.OpenFile(filepath.Join(u.dir, "mid.txt"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "one more line")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	u.commit("mid, a line longer")
	runGit(t, u.dir, "repack", "-q", "-a", "-d")
	if v := runGit(t, u.dir, "verify-pack", "-v", mustGlob(t, filepath.Join(u.dir, ".git/objects/pack/*.idx"))); !strings.Contains(v, "chain length = 1:") {
		t.Fatalf("the upstream pack holds no delta:\n%s", v)
	}
	check("HTTP clone, pack with a 48 MiB delta", childPeakRSS(t, url, filepath.Join(t.TempDir(), "deltas")))
}

func mustGlob(t *testing.T, pattern string) string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) != 1 {
		t.Fatalf("glob %s: %v %v", pattern, m, err)
	}
	return m[0]
}
