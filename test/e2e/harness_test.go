// Package e2e drives the built chartsync binary the way operators run it:
// against git repositories made in t.TempDir(), real stores, and the real
// helm CLI as the consumer.
package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/testenv"
)

var binary string // the chartsync binary under test

func TestMain(m *testing.M) { testenv.MainWithBinary(m, &binary) }

// gitRepo is an upstream repository of charts.
type gitRepo = testenv.GitRepo

func newGitRepo(t *testing.T) *gitRepo { return testenv.NewGitRepo(t) }

// site is one chartsync installation: a state dir and a config.
type site struct {
	t        *testing.T
	config   string
	stateDir string
}

// newLocalSite configures chartsync to publish repo's charts/* to a local
// directory, returned as the second value. extra (top-level keys and
// tables) goes before the [git] table.
func newLocalSite(t *testing.T, repo *gitRepo, extra string) (*site, string) {
	t.Helper()
	store := filepath.Join(t.TempDir(), "repo")
	return newSite(t, repo.Dir, "", fmt.Sprintf("[store.main]\ntype = \"local\"\npath = %q\n", store), extra), store
}

// newSite writes a config publishing charts/* of the git repository at
// gitURL to the [store.main] in storeTOML, under prefix. extra (top-level
// keys and tables) goes before the [git] table.
func newSite(t *testing.T, gitURL, prefix, storeTOML, extra string) *site {
	t.Helper()
	dir := t.TempDir()
	s := &site{t: t, config: filepath.Join(dir, "chartsync.toml"), stateDir: filepath.Join(dir, "state")}
	cfg := fmt.Sprintf(`state_dir = %q
%s
[git]
url = %q
branch = "main"
[[repository]]
name = "stable"
charts = ["charts/*"]
store = "main"
prefix = %q
%s`, s.stateDir, extra, gitURL, prefix, storeTOML)
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs chartsync with args and the site's config; it returns the exit
// status and the combined output.
func (s *site) run(args ...string) (int, string) {
	s.t.Helper()
	return runCmd(s.t, exec.Command(binary, append(args, "--config", s.config)...))
}

func runCmd(t *testing.T, cmd *exec.Cmd) (int, string) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return 0, out.String()
}

func (s *site) mustRun(args ...string) string {
	s.t.Helper()
	code, out := s.run(args...)
	if code != 0 {
		s.t.Fatalf("chartsync %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// helm runs the real helm CLI with its own config, cache and data homes.
type helm struct {
	t    *testing.T
	bin  string
	home string
}

func newHelm(t *testing.T) *helm {
	return &helm{t: t, bin: testenv.Helm(t), home: t.TempDir()}
}

// cmd returns the helm command for args, in this helm's homes.
func (h *helm) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(h.bin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(h.home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(h.home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(h.home, "data"))
	return cmd
}

// run runs helm and fails the test unless it exits 0.
func (h *helm) run(args ...string) string {
	h.t.Helper()
	code, out := runCmd(h.t, h.cmd(args...))
	if code != 0 {
		h.t.Fatalf("helm %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// serveDir serves a directory over HTTP as a chart repository.
func serveDir(t *testing.T, dir string) string {
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// snapshot maps every file below dir to the sha256 of its bytes and its
// modification time, to prove that nothing was written.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		m[p] = fmt.Sprintf("%s %d", sha(b), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// freeAddr returns a 127.0.0.1 address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServe runs `chartsync serve` for the site on a free port until the
// test ends, and returns its base URL.
func startServe(t *testing.T, s *site) string {
	t.Helper()
	addr := freeAddr(t)
	var out bytes.Buffer
	cmd := exec.Command(binary, "serve", "--listen", addr, "--config", s.config)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("chartsync serve output:\n%s", out.String())
		}
	})
	url := "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(url + "/"); err == nil {
			resp.Body.Close()
			return url
		}
		if time.Now().After(deadline) {
			t.Fatalf("chartsync serve did not start:\n%s", out.String())
		}
	}
}
