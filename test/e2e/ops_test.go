package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/testenv"
)

// hungGitServer accepts connections on 127.0.0.1 and never answers. It
// returns the URL of a repository on it and a function that returns the
// times connections were accepted.
func hungGitServer(t *testing.T) (string, func() []time.Time) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var accepted []time.Time
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, time.Now())
			conns = append(conns, c) // held open, never read or written
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String() + "/charts.git", func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Time(nil), accepted...)
	}
}

// Issue 13 point 1: a git server that accepts and never answers costs one
// cycle its cycle_timeout, no more: the cycle is counted as a timeout, and
// every following scheduled cycle starts on time (none is skipped).
func TestHungGitServerDoesNotWedgeTheDaemon(t *testing.T) {
	gitURL, accepted := hungGitServer(t)
	addr := freeAddr(t)
	store := filepath.Join(t.TempDir(), "repo")
	s := newSite(t, gitURL, "", fmt.Sprintf("[store.main]\ntype = \"local\"\npath = %q\n", store),
		"schedule = \"@every 4s\"\ncycle_timeout = \"2s\"\n[http]\nlisten = \""+addr+"\"\n")
	d := &daemon{t: t, url: "http://" + addr, out: &strings.Builder{}, done: make(chan error, 1)}
	d.cmd = exec.Command(binary, "run", "--config", s.config)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	start := time.Now()
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("daemon output:\n%s", d.out)
		}
	})

	// The start-up cycle and two scheduled ones (at about 4s and 8s).
	d.waitFor("three cycles to reach the git server", func() bool { return len(accepted()) >= 3 })
	times := accepted()
	for i := 1; i < 3; i++ {
		// Each scheduled cycle comes one interval after the previous one,
		// give or take a busy machine: never a whole interval late.
		if gap := times[i].Sub(times[i-1]); gap > 4*time.Second+3*time.Second {
			t.Errorf("cycle %d reached git %s after cycle %d: schedule is every 4s", i+1, gap.Round(time.Millisecond), i)
		}
	}
	if el := times[2].Sub(start); el > 15*time.Second {
		t.Errorf("third cycle started %s after the daemon", el)
	}
	d.waitFor("two timed-out cycles counted", func() bool {
		return d.metric("chartsync_cycles_total", map[string]string{"result": "timeout"}) >= 2
	})
	if n := d.metric("chartsync_cycles_skipped_total", nil); n != 0 {
		t.Errorf("chartsync_cycles_skipped_total = %v, want 0", n)
	}
	if n := d.metric("chartsync_cycles_total", map[string]string{"result": "success"}); n != 0 {
		t.Errorf("chartsync_cycles_total{result=\"success\"} = %v, want 0", n)
	}
	if code, _ := d.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	if !strings.Contains(d.out.String(), "timed out") {
		t.Errorf("no log line says the cycle timed out")
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		d.done <- nil
	case <-time.After(10 * time.Second):
		t.Error("daemon did not stop within 10s of SIGTERM while git hangs")
	}
}

// Issue 13 point 4: `chartsync serve` needs only the stores' credentials:
// with the git token file, the signing keyring and the sync token file all
// unreadable it still serves what `run` published.
func TestServeNeedsOnlyStoreCredentials(t *testing.T) {
	r := newGitRepo(t)
	r.Write(testenv.Chart("charts/app", "app", "1.0.0"))
	r.Commit("app")
	s, store := newLocalSite(t, r, "")
	s.mustRun("run", "--once")

	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	cfg := fmt.Sprintf(`state_dir = %q
[http]
sync_token_file = %q
[git]
url = %q
token_file = %q
[[repository]]
name = "stable"
charts = ["charts/*"]
store = "main"
sign_key = "charts@example.org"
keyring_file = %q
[store.main]
type = "local"
path = %q
`, filepath.Join(dir, "state"), missing, r.Dir, missing, missing, store)
	srv := &site{t: t, config: filepath.Join(dir, "chartsync.toml"), stateDir: filepath.Join(dir, "state")}
	if err := os.WriteFile(srv.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := srv.run("check-config"); code != 2 {
		t.Fatalf("check-config of a config without git and signing secrets: exit %d, want 2\n%s", code, out)
	}
	url := startServe(t, srv)
	resp, err := http.Get(url + "/stable/index.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "app-1.0.0.tgz") {
		t.Fatalf("GET /stable/index.yaml: %s\n%s", resp.Status, body)
	}
	if _, err := os.Stat(srv.stateDir); !os.IsNotExist(err) {
		t.Errorf("serve created the state directory %s", srv.stateDir)
	}
}

// Issue 13 point 2: switching a node from timer mode to the daemon leaves
// no metrics file behind for node_exporter to serve forever; the daemon
// removes the one `run --once` recorded, even after [metrics] textfile was
// taken out of the config.
func TestDaemonRemovesTimerModesTextfile(t *testing.T) {
	r := newGitRepo(t)
	r.Write(testenv.Chart("charts/a", "a", "1.0.0"))
	r.Commit("a")
	textfile := filepath.Join(t.TempDir(), "chartsync.prom")
	s, store := newLocalSite(t, r, fmt.Sprintf("[metrics]\ntextfile = %q\n", textfile))
	s.mustRun("run", "--once")
	if _, err := os.Stat(textfile); err != nil {
		t.Fatalf("run --once wrote no textfile: %v", err)
	}
	addr := freeAddr(t)
	daemonSite := newSite(t, r.Dir, "", fmt.Sprintf("[store.main]\ntype = \"local\"\npath = %q\n", store),
		daemonTOML(addr, "@every 1h", "10s"))
	// The same state directory: the daemon replaces the timer on this node.
	daemonSite.stateDir = s.stateDir
	cfg, err := os.ReadFile(daemonSite.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), filepath.Join(filepath.Dir(daemonSite.config), "state"), s.stateDir, 1))
	if err := os.WriteFile(daemonSite.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, daemonSite, addr)
	if _, err := os.Stat(textfile); !os.IsNotExist(err) {
		t.Errorf("timer mode's textfile %s still there with the daemon running (%v)", textfile, err)
	}
	if !strings.Contains(d.out.String(), "removed the timer mode's metrics textfile") {
		t.Errorf("the daemon did not say it removed the textfile")
	}
}

// Issue 13 point 1, timer mode: `run --once` against a git server that never
// answers ends after git.timeout with exit 1, and its textfile counts a
// timed-out cycle.
func TestOnceAgainstAHungGitServerTimesOut(t *testing.T) {
	gitURL, accepted := hungGitServer(t)
	textfile := filepath.Join(t.TempDir(), "chartsync.prom")
	store := filepath.Join(t.TempDir(), "repo")
	s := newSite(t, gitURL, "", fmt.Sprintf("[store.main]\ntype = \"local\"\npath = %q\n", store),
		fmt.Sprintf("cycle_timeout = \"3s\"\n[metrics]\ntextfile = %q\n", textfile))
	start := time.Now()
	code, out := s.run("run", "--once")
	elapsed := time.Since(start)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	if elapsed > 20*time.Second {
		t.Errorf("run --once took %s with cycle_timeout 3s", elapsed.Round(time.Millisecond))
	}
	if len(accepted()) == 0 {
		t.Error("chartsync never reached the git server")
	}
	if !strings.Contains(out, "timed out after 3s") {
		t.Errorf("output does not say the git fetch timed out:\n%s", out)
	}
	b, err := os.ReadFile(textfile)
	if err != nil {
		t.Fatal(err)
	}
	if v := metricValue(t, string(b), "chartsync_cycles_total", map[string]string{"result": "timeout"}); v != 1 {
		t.Errorf("chartsync_cycles_total{result=\"timeout\"} = %v, want 1", v)
	}
}

// Issue 13 point 5: a reload that renames a repository deletes every series
// of the old name (an alert on one of them would otherwise fire forever).
func TestReloadDeletesTheSeriesOfARemovedRepository(t *testing.T) {
	r := newGitRepo(t)
	r.Write(testenv.Chart("charts/a", "a", "1.0.0"))
	r.Commit("a")
	addr := freeAddr(t)
	store := filepath.Join(t.TempDir(), "repo")
	s := newSite(t, r.Dir, "", fmt.Sprintf("[store.main]\ntype = \"local\"\npath = %q\n", store), daemonTOML(addr, "@every 1h", "10s"))
	d := startDaemon(t, s, addr)
	if v := d.metric("chartsync_index_entries", map[string]string{"repository": "stable"}); v != 1 {
		t.Fatalf("chartsync_index_entries{repository=\"stable\"} = %v, want 1", v)
	}
	cfg, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.config, []byte(strings.Replace(string(cfg), `name = "stable"`, `name = "renamed"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitFor("the reload", func() bool {
		return d.metric("chartsync_config_reloads_total", map[string]string{"result": "success"}) == 1
	})
	_, body := d.get("/metrics")
	if strings.Contains(body, `repository="stable"`) {
		t.Errorf("series of the removed repository stable are still exported:\n%s", grepLines(body, `repository="stable"`))
	}
	if !strings.Contains(body, `chartsync_index_entries{repository="renamed"}`) {
		t.Errorf("no series of the new repository renamed")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
