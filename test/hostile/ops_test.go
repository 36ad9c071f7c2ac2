package hostile

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/testenv"
)

// freeAddr returns a 127.0.0.1 address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// daemonProc is a running `chartsync run` (daemon mode).
type daemonProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	out  *strings.Builder
	done chan error
}

// startDaemon runs the daemon for s until the test ends and waits for its
// first successful cycle.
func startDaemon(t *testing.T, s *site, addr string) *daemonProc {
	t.Helper()
	d := &daemonProc{t: t, url: "http://" + addr, out: &strings.Builder{}, done: make(chan error, 1)}
	d.cmd = exec.Command(binary, "run", "--config", s.config)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
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
	d.waitFor("the first successful cycle", func() bool { code, _ := d.do("GET", "/readyz", ""); return code == 200 })
	return d
}

func (d *daemonProc) do(method, path, token string) (int, string) {
	req, _ := http.NewRequest(method, d.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (d *daemonProc) waitFor(what string, cond func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			d.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metricLine reports whether /metrics has a line starting with prefix
// (e.g. `chartsync_config_last_reload_successful 0`).
func (d *daemonProc) metricLine(prefix string) bool {
	_, body := d.do("GET", "/metrics", "")
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// Case 10: 2,000 idle connections to the daemon's listener neither stop
// /healthz from answering nor starve the sync cycle of descriptors; the
// daemon holds at most its cap of them and closes the rest after the header
// timeout (5 s).
func TestCase10IdleConnectionsAreBounded(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Chart("charts/a", "a", "1.0.0"))
	r.Commit("a")
	addr := freeAddr(t)
	s := newSite(t, r, []string{"charts/*"}, "schedule = \"@every 1h\"\n[http]\nlisten = \""+addr+"\"\n", "")
	d := startDaemon(t, s, addr)

	const n = 2000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	start := time.Now()
	if code, body := d.do("GET", "/healthz", ""); code != 200 {
		t.Fatalf("/healthz with %d idle connections: %d %s", n, code, body)
	}
	t.Logf("/healthz answered in %s with %d idle connections open", time.Since(start).Round(time.Millisecond), n)
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.cmd.Process.Pid))
	if err == nil {
		t.Logf("daemon holds %d file descriptors", len(fds))
		if len(fds) > 256+100 {
			t.Errorf("daemon holds %d descriptors with %d clients connected: the cap is 256 connections", len(fds), n)
		}
	}
	// A cycle still runs and succeeds (git and the store need descriptors).
	r.Write(testenv.Chart("charts/b", "b", "1.0.0"))
	r.Commit("b")
	if code, body := d.do("POST", "/sync", ""); code != http.StatusAccepted {
		t.Fatalf("POST /sync: %d %s", code, body)
	}
	d.waitFor("b published", func() bool { _, err := os.Stat(filepath.Join(s.store, "b-1.0.0.tgz")); return err == nil })
	d.waitFor("the cycle to end", func() bool { return d.metricLine(`chartsync_cycles_total{result="success"} 2`) })
	if strings.Contains(d.out.String(), "too many open files") {
		t.Error("the daemon ran out of file descriptors")
	}
	// Every idle connection is closed by the daemon: evicted for a newer one
	// or timed out waiting for its request header.
	deadline := time.Now().Add(5*time.Second + 15*time.Second)
	for i, c := range conns {
		c.SetReadDeadline(deadline)
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("idle connection %d still open 20s after the header timeout", i)
		}
	}
}

// Case 11: credentials in the git URL, whatever url.Parse makes of them, are
// refused at config time by every command, pointing to token_file; the
// secret appears in no output and nothing is created (no checkout whose
// .git/config would keep it).
func TestCase11CredentialsInTheGitURLAreRefused(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Chart("charts/a", "a", "1.0.0"))
	r.Commit("a")
	for _, u := range []string{
		"https://alice:S3C/RET@127.0.0.1:1/charts.git",
		"https://alice:S3C#RET@127.0.0.1:1/charts.git",
		"https://alice:S3C%zzRET@127.0.0.1:1/charts.git",
		"https://alice:S3C RET@127.0.0.1:1/charts.git",
		"https://S3CRETTOKEN@127.0.0.1:1/charts.git",
		"alice:S3CRET@127.0.0.1:charts.git",
	} {
		s := newSite(t, r, []string{"charts/*"}, "", "")
		cfg, _ := os.ReadFile(s.config)
		os.WriteFile(s.config, []byte(strings.Replace(string(cfg), fmt.Sprintf("url = %q", r.Dir), fmt.Sprintf("url = %q", u), 1)), 0o644)
		for _, args := range [][]string{{"check-config"}, {"run", "--once"}, {"plan"}, {"run"}} {
			res := s.run(args...)
			if res.code != 2 {
				t.Errorf("%q: %s: exit %d, want 2", u, args, res.code)
			}
			out := res.stdout + res.stderr
			if !strings.Contains(out, "token_file") {
				t.Errorf("%q: %s: the refusal does not point to token_file:\n%s", u, args, out)
			}
			for _, secret := range []string{"S3C", "RET", "alice"} {
				if strings.Contains(out, secret) {
					t.Errorf("%q: %s: output holds %q:\n%s", u, args, secret, out)
				}
			}
		}
		if _, err := os.Stat(s.stateDir); !os.IsNotExist(err) {
			t.Errorf("%q: the state directory was created", u)
		}
	}
}

// Case 13: an empty or white-space-only sync_token_file is refused at start
// (exit 2) and on reload (the daemon keeps the old token, and the refused
// reload shows in chartsync_config_last_reload_successful).
func TestCase13EmptySyncTokenFileIsRefused(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Chart("charts/a", "a", "1.0.0"))
	r.Commit("a")
	tokenFile := filepath.Join(t.TempDir(), "sync-token")
	addr := freeAddr(t)
	s := newSite(t, r, []string{"charts/*"},
		fmt.Sprintf("schedule = \"@every 1h\"\n[http]\nlisten = %q\nsync_token_file = %q\n", addr, tokenFile), "")
	for _, content := range []string{"", " \n\t\n"} {
		os.WriteFile(tokenFile, []byte(content), 0o600)
		for _, args := range [][]string{{"check-config"}, {"run"}} {
			res := s.run(args...)
			if res.code != 2 || !strings.Contains(res.stdout+res.stderr, "POST /sync would be open to anyone") {
				t.Errorf("token file %q: %s: exit %d\n%s%s", content, args, res.code, res.stdout, res.stderr)
			}
		}
	}

	os.WriteFile(tokenFile, []byte("t0ken\n"), 0o600)
	d := startDaemon(t, s, addr)
	os.WriteFile(tokenFile, []byte("\n"), 0o600)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitFor("the refused reload in the metrics", func() bool { return d.metricLine("chartsync_config_last_reload_successful 0") })
	if code, _ := d.do("POST", "/sync", ""); code != http.StatusUnauthorized {
		t.Errorf("POST /sync without a token after the refused reload: %d, want 401", code)
	}
	if code, _ := d.do("POST", "/sync", "t0ken"); code != http.StatusAccepted && code != http.StatusConflict {
		t.Errorf("POST /sync with the old token: %d, want 202", code)
	}
}

// Case 16: a prefix is normalised ("/stable/" is "stable") or refused
// ("./stable", "a//b", ".."), the same way by check-config, run and the
// duplicate-location check; a refused one publishes nothing anywhere.
func TestCase16PrefixesAreNormalisedOrRefused(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Chart("charts/a", "a", "1.0.0"))
	r.Commit("a")
	for prefix, why := range map[string]string{
		"./stable": `prefix "./stable": "." segments are not allowed`,
		"a//b":     `prefix "a//b": empty path segment`,
		"..":       `prefix "..": ".." segments are not allowed`,
		"a/../b":   `prefix "a/../b": ".." segments are not allowed`,
	} {
		s := newSite(t, r, []string{"charts/*"}, "", fmt.Sprintf("prefix = %q", prefix))
		for _, args := range [][]string{{"check-config"}, {"run", "--once"}} {
			res := s.run(args...)
			if res.code != 2 || !strings.Contains(res.stdout+res.stderr, why) {
				t.Errorf("prefix %q: %s: exit %d, want 2 saying %q\n%s%s", prefix, args, res.code, why, res.stdout, res.stderr)
			}
		}
		if _, err := os.Stat(s.store); !os.IsNotExist(err) {
			t.Errorf("prefix %q: the store was created", prefix)
		}
	}

	s := newSite(t, r, []string{"charts/*"}, "", `prefix = "/stable/"`)
	s.mustRun(0, "run", "--once")
	for _, f := range []string{"stable/index.yaml", "stable/a-1.0.0.tgz"} {
		if _, err := os.Stat(filepath.Join(s.store, f)); err != nil {
			t.Errorf("prefix \"/stable/\": %v", err)
		}
	}
	// Two repositories at "stable" and "/stable/" of one store: one location.
	cfg, _ := os.ReadFile(s.config)
	two := strings.Replace(string(cfg), "[store.main]", "[[repository]]\nname = \"other\"\ncharts = [\"other/*\"]\nstore = \"main\"\nprefix = \"stable\"\n[store.main]", 1)
	os.WriteFile(s.config, []byte(two), 0o644)
	res := s.run("check-config")
	if res.code != 2 || !strings.Contains(res.stdout+res.stderr, `same store and prefix as repository stable (prefix "stable")`) {
		t.Errorf("\"/stable/\" and \"stable\" in one store: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}
