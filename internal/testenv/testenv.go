// Package testenv finds the real tools and starts the real servers that
// chartsync's tests run against: versitygw for S3, a single-node OpenStack
// Swift built from Debian's packages, and the helm CLI. It is imported only
// from _test.go files.
//
// A missing tool or server (see Missing): in CI (CI=true) the test fails,
// naming scripts/install-tools.sh; on a developer's machine it is skipped,
// saying what is missing, so a plain `go test ./...` runs what it can.
//
// Lifetime. S3 and Swift return one server per test binary, started on first
// use (fresh buckets or containers keep tests apart). A package that uses them
// must run its tests through Main or Run:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// which stops the servers and removes their data when the tests are done. As
// a second line of defence every process is started in its own process group
// with SIGKILL as its parent-death signal, so nothing outlives the test binary
// even when it is killed (a killed binary leaves only its temp dirs behind).
// NewS3 and NewSwift start a private server that the test owns and that is
// stopped at the test's cleanup: use them for fault tests that Stop and Start
// the server, so tests sharing a server are not disturbed.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	mainActive atomic.Bool
	exitMu     sync.Mutex
	atExit     []func()
)

// Main runs the tests with Run and exits with its status. Call it from
// TestMain.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run runs m.Run, then stops every shared server and removes its data, and
// returns m.Run's exit status. Use it from a TestMain that has more to do;
// otherwise use Main.
func Run(m *testing.M) int {
	mainActive.Store(true)
	code := m.Run()
	exitMu.Lock()
	fns := atExit
	atExit = nil
	exitMu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
	return code
}

// onExit registers fn to run when Run returns.
func onExit(fn func()) {
	exitMu.Lock()
	defer exitMu.Unlock()
	atExit = append(atExit, fn)
}

// requireMain fails t when the shared servers would have no one to stop them.
func requireMain(t testing.TB) {
	t.Helper()
	if !mainActive.Load() {
		t.Fatal("testenv: shared servers need the package's tests to run through testenv: " +
			"add `func TestMain(m *testing.M) { testenv.Main(m) }`")
	}
}

// Helm returns the path of the helm binary (<module root>/.tools/bin/helm,
// else helm on PATH), or fails t.
func Helm(t testing.TB) string {
	t.Helper()
	return tool(t, "helm")
}

// CI reports whether the tests run in CI: the environment variable CI is
// "true" or "1" (what CI services set, and .ci/run).
func CI() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}

// Missing reports that something a test needs is not there: in CI the test
// fails (a missing tool must never pass unnoticed), elsewhere it is
// skipped, with the reason and how to install what is missing.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + ": run scripts/install-tools.sh"
	if CI() {
		t.Fatalf("testenv: %s", msg)
	}
	t.Skipf("testenv: %s (skipped outside CI; with CI=true this fails)", msg)
}

// Tool returns the path of name (see tool), or reports it Missing.
func Tool(t testing.TB, name string) string {
	t.Helper()
	return tool(t, name)
}

// tool finds name in <module root>/.tools/bin (the pinned versions
// installed by scripts/install-tools.sh), then on PATH, or reports it
// Missing.
func tool(t testing.TB, name string) string {
	t.Helper()
	p, err := findTool(name)
	if err != nil {
		Missing(t, "%v", err)
	}
	return p
}

func findTool(name string) (string, error) {
	if root, err := moduleRoot(); err == nil {
		p := filepath.Join(root, ".tools", "bin", name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in .tools/bin or on PATH", name)
}

// requireFile fails t unless path exists (a tool from a Debian package).
func requireFile(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, "%s is missing (Debian package %s)", path, pkg)
	}
}

// moduleRoot returns the directory holding go.mod, searched upwards from the
// working directory (a package's directory under go test).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// process is a server child process that can be stopped and started again
// with the same command line.
type process struct {
	name string
	path string
	args []string
	env  []string // added to the environment
	log  string   // stdout and stderr are appended here

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// start starts the process; it is a no-op if it is running.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := spawn(cmd); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited
	return nil
}

// stop kills the process group and waits for the process to exit.
func (p *process) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	killGroup(p.cmd)
	<-p.exited
	p.cmd, p.exited = nil, nil
}

// running reports whether the process was started and has not exited.
func (p *process) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// logTail returns the end of the process's log, for error messages.
func (p *process) logTail() string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(data)
}

var (
	spawnOnce sync.Once
	spawnReqs chan spawnReq
)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// spawn starts cmd in its own process group with SIGKILL as parent-death
// signal. The kernel sends that signal when the *thread* that forked the
// child exits, so every child is forked from one goroutine locked to a thread
// that lives as long as the test binary.
func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread dies with the process
			for r := range spawnReqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	setProcAttr(cmd)
	done := make(chan error)
	spawnReqs <- spawnReq{cmd, done}
	return <-done
}

// waitHealthy polls url until it answers 200, the process exits or timeout
// passes.
func waitHealthy(url string, p *process, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !p.running() {
			return fmt.Errorf("%s exited before %s answered; log:\n%s", p.name, url, p.logTail())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s not healthy after %v; log:\n%s", p.name, url, timeout, p.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// uniqueName returns prefix followed by a per-binary counter and the pid,
// lower case and valid as an S3 bucket or Swift container name.
func uniqueName(prefix string) string {
	return prefix + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(nameSeq.Add(1), 10)
}

var nameSeq atomic.Int64
