package hostile

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/testenv"
)

// tgzNames lists the entry names of a .tgz.
func tgzNames(t *testing.T, data []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

// TestCase2GitNeverPublished: a chart at the repository root (charts =
// ["."]) is published without .git, with one digest from two state dirs;
// a symlink into .git fails its chart alone.
func TestCase2GitNeverPublished(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Chart(".", "top", "1.0.0"))
	r.Commit("a chart at the root")
	r.Git("config", "secret.token", "hunter2") // only in this checkout's .git/config

	var digests []string
	for range 2 {
		s := newSite(t, r, []string{"."}, "", "")
		res := s.mustRun(0, "run", "--once")
		res.published(t, ".")
		want(t, "store", s.storedNames(), "top-1.0.0.tgz")
		data := s.stored()["top-1.0.0.tgz"]
		for _, n := range tgzNames(t, data) {
			if strings.Contains(strings.ToLower(n), ".git/") || strings.HasSuffix(strings.ToLower(n), ".git") {
				t.Errorf("package holds %s", n)
			}
		}
		if bytes.Contains(data, []byte("hunter2")) {
			t.Error("package holds the checkout's .git/config")
		}
		digests = append(digests, s.index().Entries["top"][0].Digest)
	}
	if digests[0] != digests[1] {
		t.Errorf("one commit, two state dirs, two digests: %v", digests)
	}

	r2 := newRepo(t)
	r2.Write(testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"),
		testenv.Chart("charts/dir", "dir", "1.0.0"), map[string]string{"charts/dir/history": "-> ../../.git"},
		testenv.Chart("charts/cfg", "cfg", "1.0.0"), map[string]string{"charts/cfg/files/config": "-> ../../../.git/config"},
	))
	r2.Commit("links into .git")
	s := newSite(t, r2, []string{"charts/*"}, "", "")
	res := s.mustRun(1, "run", "--once")
	res.published(t, "charts/ok")
	res.failed(t, "charts/dir", "symlink", "charts/dir/history -> ../../.git points into .git")
	res.failed(t, "charts/cfg", "symlink", "charts/cfg/files/config -> ../../../.git/config points into .git")
	res.only(t, "charts/ok", "charts/dir", "charts/cfg")
	want(t, "index", s.indexed(), "ok-1.0.0")
	want(t, "store", s.storedNames(), "ok-1.0.0.tgz")
}

// TestCase4LongNames: a chart whose package file name no store can hold
// fails alone, up front; the longest name that fits is published.
func TestCase4LongNames(t *testing.T) {
	fits := strings.Repeat("f", 250-len("-1.0.0.tgz"))
	long := strings.Repeat("l", 256)
	r := newRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"), testenv.Chart("charts/fits", fits, "1.0.0"), testenv.Chart("charts/long", long, "1.0.0"),
		testenv.Chart("charts/longver", "v", "1.0.0-"+strings.Repeat("a", 240))))
	r.Commit("long names")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	for run := range 2 {
		res := s.mustRun(1, "run", "--once")
		if run == 0 {
			res.published(t, "charts/ok")
			res.published(t, "charts/fits")
		}
		res.failed(t, "charts/long", "chartfile", "too long", "package file name would be 266 bytes")
		res.failed(t, "charts/longver", "chartfile", "too long")
	}
	want(t, "index", s.indexed(), fits+"-1.0.0", "ok-1.0.0")
	want(t, "store", s.storedNames(), fits+"-1.0.0.tgz", "ok-1.0.0.tgz")
}

// TestCase5Cost: a file 150 levels deep, 20,100 files in one chart and a
// symlink fan-out of 18 levels (2^18 paths) each fail their chart alone on
// a limit, and the cycle stays short (about 1 s measured, with charts read
// from git objects).
func TestCase5Cost(t *testing.T) {
	r := newRepo(t)
	files := testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"),
		testenv.Chart("charts/deep", "deep", "1.0.0"), map[string]string{"charts/deep/files/" + strings.Repeat("d/", 150) + "f.txt": "deep\n"},
		testenv.Chart("charts/many", "many", "1.0.0"),
		testenv.Chart("charts/fan", "fan", "1.0.0"), map[string]string{"charts/fan/files": "-> ../../fan/l18", "fan/l0/leaf.txt": "leaf\n"},
	)
	for i := range 20100 {
		files[fmt.Sprintf("charts/many/files/%02d/%05d.txt", i/1000, i)] = "x\n"
	}
	for i := 1; i <= 18; i++ {
		files[fmt.Sprintf("fan/l%d/a", i)] = fmt.Sprintf("-> ../l%d", i-1)
		files[fmt.Sprintf("fan/l%d/b", i)] = fmt.Sprintf("-> ../l%d", i-1)
	}
	r.Write(files)
	r.Commit("costly charts")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	res := s.mustRun(1, "run", "--once")
	res.published(t, "charts/ok")
	res.failed(t, "charts/deep", "package", "limit: more than 64 directory levels")
	res.failed(t, "charts/many", "package", "limit: more than 20000 files and directories")
	res.failed(t, "charts/fan", "package", "limit: more than 20000 files and directories")
	res.only(t, "charts/ok", "charts/deep", "charts/many", "charts/fan")
	want(t, "index", s.indexed(), "ok-1.0.0")
	t.Logf("cost: first cycle %v, %v after the checkout, peak RSS %d MB", res.elapsed, res.packing, res.maxRSS>>20)
	again := s.mustRun(1, "run", "--once")
	t.Logf("cost: second cycle %v, %v after the checkout, peak RSS %d MB", again.elapsed, again.packing, again.maxRSS>>20)
	for _, x := range []*result{res, again} {
		if x.packing > 30*time.Second || x.elapsed > 60*time.Second || x.maxRSS > 1<<30 {
			t.Errorf("cycle took %v (%v after the checkout) and %d MB, want under 60 s (30 s) and 1 GiB", x.elapsed, x.packing, x.maxRSS>>20)
		}
	}
}

// TestCase5SIGTERM: SIGTERM while a chart renders for minutes ends the run
// within seconds, and the lint worker with it.
func TestCase5SIGTERM(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/spin", "spin", "1.0.0"), map[string]string{"charts/spin/templates/spin.yaml": spinTemplate}))
	r.Commit("spin")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	cmd := exec.Command(binary, "run", "--once", "--config", s.config)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	worker := waitForWorker(t, cmd.Process.Pid, 60*time.Second)
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("run --once still running 30 s after SIGTERM:\n%s", out.String())
	}
	t.Logf("SIGTERM: exited %v after the signal (exit %d)", time.Since(start), cmd.ProcessState.ExitCode())
	time.Sleep(100 * time.Millisecond)
	if err := syscall.Kill(worker, 0); err == nil {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", worker)); !strings.Contains(string(b), ") Z ") {
			t.Errorf("lint worker %d outlived chartsync", worker)
		}
	}
	if cmd.ProcessState.ExitCode() == 0 {
		t.Errorf("exit 0 after SIGTERM:\n%s", out.String())
	}
}

// waitForWorker waits until process pid has a child (the lint worker) and
// returns its pid.
func waitForWorker(t *testing.T, pid int, timeout time.Duration) int {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		procs, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, p := range procs {
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			// pid (comm) state ppid ...
			_, rest, ok := strings.Cut(string(b), ") ")
			f := strings.Fields(rest)
			if !ok || len(f) < 2 || f[1] != fmt.Sprint(pid) {
				continue
			}
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", child))
			if bytes.Contains(env, []byte("CHARTSYNC_INTERNAL_LINT_WORKER=")) {
				return child
			}
		}
	}
	t.Fatalf("no lint worker under %d after %v", pid, timeout)
	return 0
}

// spinTemplate renders for many minutes.
const spinTemplate = "{{- range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}\n"

// TestCase6LintBounded: a template that eats memory fails its chart at the
// bound, the daemon's own memory stays small, and content that failed lint
// is not rendered again on the next cycle.
func TestCase6LintBounded(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"),
		testenv.Chart("charts/hog", "hog", "1.0.0"), map[string]string{"charts/hog/templates/hog.yaml": "{{- range until 30 }}{{ repeat 100000000 \"a\" }}{{ end }}\n"},
		testenv.Chart("charts/slow", "slow", "1.0.0"), map[string]string{"charts/slow/templates/slow.yaml": "{{- range until 3000 }}{{ range until 3000 }}{{ end }}{{ end }}\nkind: [ slow and wrong\n"},
	))
	r.Commit("costly templates")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	first := s.mustRun(1, "run", "--once")
	first.published(t, "charts/ok")
	first.failed(t, "charts/hog", "lint", "lint used more than 1024 MiB of memory")
	first.failed(t, "charts/slow", "lint", "[ERROR] templates/slow.yaml")
	first.only(t, "charts/ok", "charts/hog", "charts/slow")
	t.Logf("lint bounds: first cycle %v, peak RSS of chartsync and its lint workers %d MB", first.elapsed, first.maxRSS>>20)
	if first.maxRSS > 1536<<20 {
		t.Errorf("peak RSS %d MB: the memory bound did not hold", first.maxRSS>>20)
	}
	verdicts, _ := filepath.Glob(filepath.Join(s.stateDir, "lint", "*.json"))
	if len(verdicts) != 3 {
		t.Errorf("lint verdicts in the state dir: %v, want 3", verdicts)
	}

	// Cycle 2 renders nothing: every verdict comes from the state dir. A
	// new bump of ok proves the cycle still publishes.
	r.Write(testenv.Chart("charts/ok", "ok", "1.0.1"))
	r.Commit("bump ok")
	second := s.mustRun(1, "run", "--once")
	second.published(t, "charts/ok")
	second.failed(t, "charts/hog", "lint", "lint used more than 1024 MiB of memory")
	second.failed(t, "charts/slow", "lint", "[ERROR] templates/slow.yaml")
	t.Logf("lint bounds: second cycle %v (%v after the checkout)", second.elapsed, second.packing)
	if second.packing > first.packing {
		t.Errorf("second cycle packaged for %v, longer than the first (%v): verdicts not reused", second.packing, first.packing)
	}
	if again, _ := filepath.Glob(filepath.Join(s.stateDir, "lint", "*.json")); len(again) != 4 {
		t.Errorf("lint verdicts after the bump: %d, want 4 (one new package linted)", len(again))
	}
	want(t, "index", s.indexed(), "ok-1.0.0", "ok-1.0.1")
}

// TestCase7NoNetwork: schemas referring to a server fail their charts in run
// and plan, before lint, and the server sees no connection.
func TestCase7NoNetwork(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	url := "http://" + l.Addr().String() + "/schema.json"
	schema := `{"type": "object", "properties": {"replicas": {"$ref": "` + url + `"}}}`
	r := newRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"),
		testenv.Chart("charts/ref", "ref", "1.0.0"), map[string]string{"charts/ref/values.schema.json": schema},
		testenv.Chart("charts/meta", "meta", "1.0.0"), map[string]string{"charts/meta/values.schema.json": `{"$schema": "` + url + `"}`},
		testenv.Chart("charts/sub", "sub", "1.0.0", "dependencies:\n- name: inner\n  version: 1.0.0"), testenv.Chart("charts/sub/charts/inner", "inner", "1.0.0"),
		map[string]string{"charts/sub/charts/inner/values.schema.json": schema},
	))
	r.Commit("remote schemas")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	plan := s.mustRun(1, "plan")
	for _, w := range []string{`(charts/ref): ref/values.schema.json: "$ref" "` + url + `"`, `(charts/meta): meta/values.schema.json: "$schema" "` + url + `"`,
		"(charts/sub): sub/charts/inner/values.schema.json"} {
		if !strings.Contains(plan.stdout, w) {
			t.Errorf("plan output lacks %q:\n%s", w, plan.stdout)
		}
	}
	res := s.mustRun(1, "run", "--once")
	res.published(t, "charts/ok")
	res.failed(t, "charts/ref", "lint", `"$ref" "`+url+`"`, "ref/values.schema.json")
	res.failed(t, "charts/meta", "lint", `"$schema" "`+url+`"`)
	res.failed(t, "charts/sub", "lint", "sub/charts/inner/values.schema.json")
	want(t, "index", s.indexed(), "ok-1.0.0")
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections to the schema server", n)
	}
}

// TestCase14LFSPointers: a committed Git LFS pointer fails its chart with a
// clear reason.
func TestCase14LFSPointers(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"), testenv.Chart("charts/lfs", "lfs", "1.0.0"), map[string]string{
		"charts/lfs/files/blob.bin": "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n",
	}))
	r.Commit("lfs")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	res := s.mustRun(1, "run", "--once")
	res.published(t, "charts/ok")
	res.failed(t, "charts/lfs", "package", "charts/lfs/files/blob.bin is a Git LFS pointer")
	res.only(t, "charts/ok", "charts/lfs")
	want(t, "store", s.storedNames(), "ok-1.0.0.tgz")
}

// TestCase15SymlinkedChartDir: a chart directory that is a symlink is
// reported, naming it, not skipped in silence.
func TestCase15SymlinkedChartDir(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"), testenv.Chart("shared/real", "real", "1.0.0"),
		map[string]string{"charts/link": "-> ../shared/real"}))
	r.Commit("symlinked chart dir")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	res := s.mustRun(1, "run", "--once")
	res.published(t, "charts/ok")
	res.failed(t, "charts/link", "symlink", "chart directory is a symlink (-> ../shared/real)")
	res.only(t, "charts/ok", "charts/link")
	want(t, "index", s.indexed(), "ok-1.0.0")
}

// TestCase6WorkerDiesWithChartsync: kill -9 of chartsync while a chart
// renders for minutes takes the lint worker with it.
func TestCase6WorkerDiesWithChartsync(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/spin", "spin", "1.0.0"), map[string]string{"charts/spin/templates/spin.yaml": spinTemplate}))
	r.Commit("spin")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	cmd := exec.Command(binary, "run", "--once", "--config", s.config)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	worker := waitForWorker(t, cmd.Process.Pid, 60*time.Second)
	cmd.Process.Kill()
	cmd.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", worker))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(worker, syscall.SIGKILL)
			t.Fatalf("lint worker %d still running 10 s after chartsync was killed", worker)
		}
	}
}
