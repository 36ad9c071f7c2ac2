package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/testenv"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// daemon is a running `chartsync run`.
type daemon struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	out  *strings.Builder
	done chan error
}

// daemonTOML is the config for a daemon on a free port.
func daemonTOML(addr, schedule, grace string) string {
	return fmt.Sprintf("schedule = %q\nshutdown_grace = %q\n[http]\nlisten = %q\n", schedule, grace, addr)
}

func startDaemon(t *testing.T, s *site, addr string, args ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, url: "http://" + addr, out: &strings.Builder{}, done: make(chan error, 1)}
	d.cmd = exec.Command(binary, append([]string{"run", "--config", s.config}, args...)...)
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
	d.waitFor("first cycle", func() bool { code, _ := d.get("/readyz"); return code == 200 })
	return d
}

func (d *daemon) get(path string) (int, string) {
	resp, err := http.Get(d.url + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (d *daemon) post(path string) int {
	resp, err := http.Post(d.url+path, "text/plain", nil)
	if err != nil {
		d.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (d *daemon) waitFor(what string, cond func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			d.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metric returns the value of one series in the daemon's /metrics, or -1.
func (d *daemon) metric(name string, labels map[string]string) float64 {
	d.t.Helper()
	_, body := d.get("/metrics")
	return metricValue(d.t, body, name, labels)
}

func metricValue(t *testing.T, exposition, name string, labels map[string]string) float64 {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(exposition))
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	mf := families[name]
	if mf == nil {
		return -1
	}
	for _, m := range mf.Metric {
		ok := true
		for k, v := range labels {
			found := false
			for _, lp := range m.Label {
				found = found || (lp.GetName() == k && lp.GetValue() == v)
			}
			ok = ok && found
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func promtool(t *testing.T, args ...string) {
	t.Helper()
	bin := testenv.Tool(t, "promtool")
	cmd := exec.Command(bin, args[:len(args)-1]...)
	cmd.Stdin = strings.NewReader(args[len(args)-1])
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args[:len(args)-1], " "), err, out)
	}
}

func TestDaemonPublishesOnScheduleAndOnTrigger(t *testing.T) {
	r := newGitRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/a", "a", "1.0.0"), testenv.Chart("charts/b", "b", "1.0.0"), testenv.Chart("charts/bad", "bad", "banana")))
	r.Commit("two good charts, one bad")
	addr := freeAddr(t)
	s, store := newLocalSite(t, r, daemonTOML(addr, "@every 1h", "30s"))
	d := startDaemon(t, s, addr)

	// Exactly the start-up cycle has run: 2 published, 1 failed.
	repo := map[string]string{"repository": "stable"}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"chartsync_charts_published_total", repo, 2},
		{"chartsync_charts_failed_total", map[string]string{"repository": "stable", "reason": "version"}, 1},
		{"chartsync_charts_failed_total", map[string]string{"repository": "stable", "reason": "lint"}, 0},
		{"chartsync_cycles_total", map[string]string{"result": "chart_failures"}, 1},
		{"chartsync_cycles_total", map[string]string{"result": "success"}, 0},
		{"chartsync_index_entries", repo, 2},
		{"chartsync_git_chart_versions", repo, 2},
		{"chartsync_build_info", nil, 1},
	} {
		if got := d.metric(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	_, exposition := d.get("/metrics")
	promtool(t, "check", "metrics", exposition)
	// Every metric the dashboard and the alerts query is really exposed.
	for _, f := range []string{"../../contrib/grafana/chartsync.json", "../../contrib/prometheus/chartsync-alerts.yml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range regexp.MustCompile(`chartsync_[a-z_]+`).FindAllString(string(b), -1) {
			base := regexp.MustCompile(`_(bucket|sum|count)$`).ReplaceAllString(name, "")
			if !regexp.MustCompile(`(?m)^# TYPE ` + base + ` `).MatchString(exposition) {
				t.Errorf("%s queries %s, which /metrics does not expose", filepath.Base(f), name)
			}
		}
	}
	if code, _ := d.get("/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}

	// POST /sync publishes a new commit now, not in an hour.
	r.Write(testenv.Chart("charts/c", "c", "0.1.0"))
	r.Commit("add c")
	if code := d.post("/sync"); code != http.StatusAccepted {
		t.Fatalf("POST /sync: %d", code)
	}
	d.waitFor("c published", func() bool {
		_, err := os.Stat(filepath.Join(store, "c-0.1.0.tgz"))
		return err == nil && readIndex(t, store).Has("c", "0.1.0")
	})
	if code, _ := d.get("/sync"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /sync: %d, want 405", code)
	}
}

func TestDaemonScheduleAndOverlap(t *testing.T) {
	r := newGitRepo(t)
	r.Write(testenv.Chart("charts/a", "a", "1.0.0"))
	r.Commit("a")
	addr := freeAddr(t)
	s, store := newLocalSite(t, r, daemonTOML(addr, "@every 1s", "30s"))
	d := startDaemon(t, s, addr, "--lock-wait", "20s")

	// A commit is published by the schedule within one interval.
	r.Write(testenv.Chart("charts/b", "b", "1.0.0"))
	r.Commit("b")
	d.waitFor("b published on schedule", func() bool {
		return readIndex(t, store).Has("b", "1.0.0")
	})

	// Hold the state dir lock so that the next cycle blocks: triggers and
	// scheduled cycles meanwhile are refused or skipped, never run twice.
	f, err := os.OpenFile(filepath.Join(s.stateDir, "chartsync.lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	skipped := d.metric("chartsync_cycles_skipped_total", nil)
	started := d.metric("chartsync_last_cycle_start_timestamp_seconds", nil)
	var conflict bool
	d.waitFor("a blocked cycle", func() bool {
		code := d.post("/sync")
		conflict = code == http.StatusConflict
		return conflict
	})
	d.waitFor("a skipped scheduled cycle", func() bool {
		return d.metric("chartsync_cycles_skipped_total", nil) > skipped
	})
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if d.metric("chartsync_last_cycle_start_timestamp_seconds", nil) < started {
		t.Error("start timestamp went back")
	}
}

func TestDaemonSIGTERMDuringPublishingLeavesTheStoreConsistent(t *testing.T) {
	r := newGitRepo(t)
	r.Write(testenv.Chart("charts/first", "first", "1.0.0"))
	r.Commit("first")
	addr := freeAddr(t)
	// No grace: SIGTERM cancels the running cycle at once.
	s, store := newLocalSite(t, r, daemonTOML(addr, "@every 1h", "0s"))
	d := startDaemon(t, s, addr)

	var files []map[string]string
	for i := range 40 {
		files = append(files, testenv.Chart(fmt.Sprintf("charts/c%02d", i), fmt.Sprintf("c%02d", i), "1.0.0"))
	}
	r.Write(testenv.Merge(files...))
	r.Commit("forty charts")
	if code := d.post("/sync"); code != http.StatusAccepted {
		t.Fatalf("POST /sync: %d", code)
	}
	time.Sleep(300 * time.Millisecond) // into the cycle: git, packaging
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, d.out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop within 30s of SIGTERM")
	}
	checkConsistent(t, store)
	t.Logf("after SIGTERM the index has %d of 41 charts", len(readIndex(t, store).Entries))

	// The next run converges: everything published, nothing differing.
	out := s.mustRun("run", "--once")
	if !strings.Contains(out, "failed 0") {
		t.Errorf("run after SIGTERM:\n%s", out)
	}
	if idx := readIndex(t, store); len(idx.Entries) != 41 {
		t.Errorf("index has %d charts after convergence, want 41", len(idx.Entries))
	}
	checkConsistent(t, store)
}

// checkConsistent: the index parses, and every entry's package is stored
// with the digest the index gives.
func checkConsistent(t *testing.T, store string) {
	t.Helper()
	idx := readIndex(t, store)
	for name, cvs := range idx.Entries {
		for _, cv := range cvs {
			b, err := os.ReadFile(filepath.Join(store, cv.URLs[0]))
			if err != nil {
				t.Errorf("%s %s: %v", name, cv.Version, err)
				continue
			}
			if sha(b) != cv.Digest {
				t.Errorf("%s %s: digest %s, stored %s", name, cv.Version, cv.Digest, sha(b))
			}
		}
	}
}

func TestDaemonSIGHUPKeepsTheOldConfigWhenTheNewOneIsInvalid(t *testing.T) {
	r := newGitRepo(t)
	r.Write(testenv.Chart("charts/a", "a", "1.0.0"))
	r.Commit("a")
	addr := freeAddr(t)
	s, _ := newLocalSite(t, r, daemonTOML(addr, "@every 1h", "30s"))
	d := startDaemon(t, s, addr)
	good, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}

	os.WriteFile(s.config, append(good, []byte("\nbogus_key = 1\n")...), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitFor("failed reload counted", func() bool {
		return d.metric("chartsync_config_reloads_total", map[string]string{"result": "failure"}) == 1
	})
	if v := d.metric("chartsync_config_last_reload_successful", nil); v != 0 {
		t.Errorf("last_reload_successful = %v after a bad reload", v)
	}
	if code := d.post("/sync"); code != http.StatusAccepted && code != http.StatusConflict {
		t.Errorf("daemon not serving after a bad reload: POST /sync %d", code)
	}
	if !strings.Contains(d.out.String(), "bogus_key") {
		t.Errorf("log does not say what was wrong:\n%s", d.out)
	}

	os.WriteFile(s.config, good, 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitFor("successful reload", func() bool {
		return d.metric("chartsync_config_last_reload_successful", nil) == 1
	})
}

func TestOnceWritesTextfileMetrics(t *testing.T) {
	r := newGitRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/a", "a", "1.0.0"), testenv.Chart("charts/b", "b", "1.0.0"), testenv.Chart("charts/bad", "bad", "banana")))
	r.Commit("two good, one bad")
	textfile := filepath.Join(t.TempDir(), "chartsync.prom")
	s, _ := newLocalSite(t, r, fmt.Sprintf("[metrics]\ntextfile = %q\n", textfile))
	if code, out := s.run("run", "--once"); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	b, err := os.ReadFile(textfile)
	if err != nil {
		t.Fatal(err)
	}
	promtool(t, "check", "metrics", string(b))
	if v := metricValue(t, string(b), "chartsync_charts_published_total", map[string]string{"repository": "stable"}); v != 2 {
		t.Errorf("published = %v, want 2", v)
	}
	if v := metricValue(t, string(b), "chartsync_charts_failed_total", map[string]string{"repository": "stable", "reason": "version"}); v != 1 {
		t.Errorf("failed{version} = %v, want 1", v)
	}
}
