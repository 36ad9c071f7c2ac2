package hostile

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/testenv"
)

// TestSecretsNeverLogged: the git token and the S3 and Swift secrets are
// read from files, and whatever fails (git unreachable, stores unreachable)
// none of them appears in the logs, the summary or plan's output. Every
// address is a closed port on 127.0.0.1.
func TestSecretsNeverLogged(t *testing.T) {
	dir := t.TempDir()
	secrets := map[string]string{
		"token":  "gittoken-5f1c9a0e-never-logged",
		"akid":   "AKIASECRETNEVERLOGGED",
		"sak":    "s3secret-a8c2e1-never-logged",
		"swift":  "swiftkey-77d0b4-never-logged",
		"appsec": "appcred-91ee3c-never-logged",
	}
	for name, v := range secrets {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s3addr, swiftAddr, gitAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`state_dir = %[1]q
[git]
url = "http://%[2]s/charts.git"
branch = "main"
username = "publisher"
token_file = %[3]q
timeout = "5s"

[[repository]]
name = "s3repo"
charts = ["charts/*"]
store = "s3"
prefix = "stable"

[[repository]]
name = "swiftrepo"
charts = ["charts/*"]
store = "swift"
prefix = "stable"

[store.s3]
type = "s3"
bucket = "charts"
region = "us-east-1"
endpoint = "http://%[4]s"
path_style = true
access_key_id_file = %[5]q
secret_access_key_file = %[6]q
timeout = "5s"

[store.swift]
type = "swift"
auth_url = "http://%[7]s/auth/v1.0"
container = "charts"
user = "test:tester"
key_file = %[8]q
timeout = "5s"
`, filepath.Join(dir, "state"), gitAddr, filepath.Join(dir, "token"), s3addr,
		filepath.Join(dir, "akid"), filepath.Join(dir, "sak"), swiftAddr, filepath.Join(dir, "swift"))
	s := &site{t: t, config: filepath.Join(dir, "chartsync.toml"), stateDir: filepath.Join(dir, "state")}
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var runs []*result
	runs = append(runs, s.mustRun(0, "check-config"))
	runs = append(runs, s.mustRun(1, "run", "--once"))
	runs = append(runs, s.run("plan"))
	if !strings.Contains(runs[1].stderr+runs[1].stdout, gitAddr) {
		t.Errorf("run --once does not say that git at %s failed:\n%s\n%s", gitAddr, runs[1].stdout, runs[1].stderr)
	}
	for _, res := range runs {
		for name, v := range secrets {
			if strings.Contains(res.stdout+res.stderr, v) {
				t.Errorf("the %s secret appears in the output:\n%s\n%s", name, res.stdout, res.stderr)
			}
		}
	}
}

// TestServeRefusesTraversal: `chartsync serve` answers only objects of the
// repository: paths that climb out of it, encoded or not, are refused and
// never show a file of the state dir, the config or the system.
func TestServeRefusesTraversal(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Chart("charts/ok", "ok", "1.0.0"))
	r.Commit("ok")
	s := newSite(t, r, []string{"charts/*"}, "", `prefix = "stable"`)
	s.mustRun(0, "run", "--once")
	if err := os.WriteFile(filepath.Join(s.store, "secret.txt"), []byte("outside the repository prefix"), 0o644); err != nil {
		t.Fatal(err)
	}

	addr := freeAddr(t)
	cmd := exec.Command(binary, "serve", "--config", s.config, "--listen", addr, "--log-format", "json")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/stable/index.yaml")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	for _, p := range []string{
		"/stable/../secret.txt",
		"/stable/%2e%2e/secret.txt",
		"/stable/..%2fsecret.txt",
		"/stable/%2e%2e%2fsecret.txt",
		"/stable/....//secret.txt",
		"/stable//../../etc/passwd",
		"/stable/%2e%2e/%2e%2e/chartsync.toml",
		"/stable/..%5csecret.txt",
		"/stable/%00.tgz",
	} {
		// A raw request line: Go's client would clean the path first.
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", p, addr)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		raw, _ := io.ReadAll(conn)
		conn.Close()
		resp := string(raw)
		status := strings.SplitN(resp, "\r\n", 2)[0]
		if strings.Contains(status, " 200 ") || strings.Contains(status, " 5") {
			t.Errorf("GET %s: %s, want a 3xx or 4xx", p, status)
		}
		for _, leak := range []string{"outside the repository prefix", "root:x:0:0", "state_dir"} {
			if strings.Contains(resp, leak) {
				t.Errorf("GET %s: the answer shows %q", p, leak)
			}
		}
	}
}

// TestKillAtAnyWrite: chartsync killed with SIGKILL at points spread over a
// run's writes leaves a store that the next run completes and repairs:
// every chart indexed once, every package's bytes matching its index
// digest, no temporary file left where the repository is served.
func TestKillAtAnyWrite(t *testing.T) {
	const charts = 12
	r := newRepo(t)
	for i := range charts {
		r.Write(testenv.Chart(fmt.Sprintf("charts/c%02d", i), fmt.Sprintf("c%02d", i), "1.0.0"))
	}
	r.Commit("charts")
	var all []string
	for i := range charts {
		all = append(all, fmt.Sprintf("c%02d-1.0.0", i))
	}

	// How long an undisturbed run takes, to spread the kills over it.
	probe := newSite(t, r, []string{"charts/*"}, "", "")
	full := probe.mustRun(0, "run", "--once").elapsed

	for _, frac := range []float64{0.2, 0.4, 0.6, 0.75, 0.9} {
		t.Run(fmt.Sprintf("at%.0f%%", frac*100), func(t *testing.T) {
			s := newSite(t, r, []string{"charts/*"}, "", "")
			cmd := exec.Command(binary, "run", "--once", "--config", s.config)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(frac * float64(full)))
			cmd.Process.Kill()
			cmd.Wait()
			s.mustRun(0, "run", "--once")
			want(t, "index", s.indexed(), all...)
			idx := s.index()
			stored := s.stored()
			for name, b := range stored {
				if strings.HasPrefix(name, ".chartsync-tmp/") {
					t.Errorf("temporary file %s left after a complete run", name)
					continue
				}
				cv, err := idx.Get(strings.TrimSuffix(name, "-1.0.0.tgz"), "1.0.0")
				if err != nil {
					t.Errorf("stored %s is not indexed", name)
					continue
				}
				sum := sha256.Sum256(b)
				if hex.EncodeToString(sum[:]) != cv.Digest {
					t.Errorf("%s: stored sha256 %x, index digest %s", name, sum, cv.Digest)
				}
			}
			if len(stored) != charts {
				t.Errorf("%d files stored, want %d: %v", len(stored), charts, s.storedNames())
			}
		})
	}
}
