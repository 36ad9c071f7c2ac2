package testenv

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// GitRepo is a git repository made in a test's temporary directory and
// driven with the git CLI, with a fixed identity and no user or system
// configuration: the upstream repository tests publish from.
type GitRepo struct {
	t   testing.TB
	Dir string
}

// NewGitRepo makes an empty repository whose branch is "main"; initArgs
// go to git init (e.g. "--bare").
func NewGitRepo(t testing.TB, initArgs ...string) *GitRepo {
	t.Helper()
	r := &GitRepo{t: t, Dir: t.TempDir()}
	r.Git(append([]string{"init", "-q", "-b", "main"}, initArgs...)...)
	return r
}

// Git runs git in the repository and returns its trimmed output; a failure
// fails the test.
func (r *GitRepo) Git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command(Tool(r.t, "git"), args...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.org",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.org",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "HOME="+r.Dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Write creates files (slash-separated path -> content) in the work tree,
// replacing what is there. A content starting with "-> " makes a symlink
// to the rest.
func (r *GitRepo) Write(files map[string]string) {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.Dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		os.Remove(p)
		var err error
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			r.t.Fatal(err)
		}
	}
}

// Commit commits everything in the work tree (an empty commit if nothing
// changed) and returns the commit id.
func (r *GitRepo) Commit(msg string) string {
	r.t.Helper()
	r.Git("add", "-A")
	r.Git("commit", "-q", "--allow-empty", "-m", msg)
	return r.Git("rev-parse", "HEAD")
}

// MainWithBinary is TestMain for tests that drive the chartsync binary: it
// builds it into a temporary directory (BuildBinary), sets *binary to its
// path, runs the tests as Run does (servers are stopped at the end) and
// exits.
func MainWithBinary(m *testing.M, binary *string) {
	dir, err := os.MkdirTemp("", "chartsync-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *binary, err = BuildBinary(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// BuildBinary builds cmd/chartsync and its lint helper cmd/chartsync-lint,
// which it finds next to itself, into dir, and returns chartsync's path.
func BuildBinary(dir string) (string, error) {
	out, err := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"github.com/chartsync/chartsync/cmd/chartsync", "github.com/chartsync/chartsync/cmd/chartsync-lint").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build chartsync: %v\n%s", err, out)
	}
	return filepath.Join(dir, "chartsync"), nil
}

// Chart returns the files of a small chart that lints cleanly, in dir;
// extra lines are appended to its Chart.yaml.
func Chart(dir, name, version string, extra ...string) map[string]string {
	return map[string]string{
		dir + "/Chart.yaml":  fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\ndescription: test chart %s\n%s", name, version, name, strings.Join(extra, "\n")),
		dir + "/values.yaml": "replicas: 1\n",
		dir + "/templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-" + name +
			"\ndata:\n  replicas: {{ .Values.replicas | quote }}\n",
	}
}

// Merge returns the union of file sets; a later one wins a path.
func Merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}
