package gitsrc

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A state dir left by the previous release (a checkout: work tree plus
// .git, remote-tracking refspec, world-readable files, local changes) is
// converted in place: its objects are kept (a commit that exists only there
// survives), the work tree goes, and the next Sync is a plain fetch.
func TestSyncConvertsOldCheckout(t *testing.T) {
	t.Parallel()
	u := baseUpstream(t)
	dir := filepath.Join(t.TempDir(), "git")
	runGit(t, "", "clone", "-q", "--single-branch", "--no-tags", "-b", "master", u.dir, dir)
	if fs := runGit(t, dir, "config", "remote.origin.fetch"); fs != "+refs/heads/master:refs/remotes/origin/master" {
		t.Fatalf("old-style checkout has refspec %s", fs)
	}
	mustWrite(t, filepath.Join(dir, "README.md"), "local edit\n")
	mustWrite(t, filepath.Join(dir, "untracked.txt"), "x")
	mustWrite(t, filepath.Join(dir, "local.txt"), "only here")
	runGit(t, dir, "add", "local.txt")
	runGit(t, dir, "commit", "-q", "-m", "local commit")
	localOnly := runGit(t, dir, "rev-parse", "HEAD")
	runGit(t, dir, "fetch", "-q", "origin") // leaves a FETCH_HEAD, as reflogs, with the URL in it
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	u.write("charts/a/Chart.yaml", "name: a\nversion: 1.1.0\n", 0o644)
	want := u.commit("upstream moved on")
	opts := Options{URL: u.dir, Branch: "master", Dir: dir}
	tree := syncOK(t, opts)
	assertTree(t, tree, dir, u.dir, want)
	assertPrivate(t, dir)
	if err := exec.Command(gitBin(t), "-C", dir, "cat-file", "-e", localOnly+"^{commit}").Run(); err != nil {
		t.Errorf("the old checkout's own commit is gone: re-cloned instead of converted (%v)", err)
	}
	for _, gone := range []string{".git", "README.md", "untracked.txt", "charts", "index", "logs", "FETCH_HEAD"} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("%s left in the converted repository: %v", gone, err)
		}
	}
	if got := runGit(t, dir, "config", "remote.origin.fetch"); got != string(refSpec("master")) {
		t.Errorf("refspec after conversion = %s, want %s", got, refSpec("master"))
	}
	gd := repoID(t, dir)
	tree = syncOK(t, opts)
	assertTree(t, tree, dir, u.dir, want)
	assertNotRecloned(t, gd, dir)
}

// Local repositories are read in-process: with no git binary on PATH, a
// clone and a fetch both work. Not parallel: it changes PATH.
func TestSyncLocalWithoutGitBinary(t *testing.T) {
	u := baseUpstream(t)
	dir := filepath.Join(t.TempDir(), "repo")
	opts := Options{URL: "file://" + u.dir, Branch: "master", Dir: dir}
	noGit := func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		if _, err := exec.LookPath("git"); err == nil {
			t.Fatal("git still on PATH")
		}
	}
	var first *Tree
	t.Run("clone", func(t *testing.T) {
		noGit(t)
		first = syncOK(t, opts)
	})
	assertTree(t, first, dir, u.dir, u.head("master"))
	u.write("new.txt", "x", 0o644)
	want := u.commit("new")
	t.Run("fetch", func(t *testing.T) {
		noGit(t)
		tree := syncOK(t, opts)
		if tree.Commit != want {
			t.Errorf("Tree.Commit = %s, want %s", tree.Commit, want)
		}
	})
	assertTree(t, nil, dir, u.dir, want)
}

const (
	childURL     = "GITSRC_TEST_CHILD_URL"
	childDir     = "GITSRC_TEST_CHILD_DIR"
	childAnyFile = "GITSRC_TEST_CHILD_ANY" // do not look for charts/a/Chart.yaml
)

// A repository owned by root, read by another user (the Debian package's
// default: /srv/deployment-charts made by root, chartsync running as the
// chartsync user). The reader runs as a child process with another uid;
// git's own "dubious ownership" check does not apply.
func TestSyncRootOwnedRepoAsOtherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to own the repository and to run the reader as uid 65534")
	}
	t.Parallel()
	const uid, gid = 65534, 65534
	base, err := os.MkdirTemp("", "gitsrc-owner-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	// Everything the other user reads: world-readable, owned by root.
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	upDir := filepath.Join(base, "srv-charts")
	if err := os.Mkdir(upDir, 0o755); err != nil {
		t.Fatal(err)
	}
	u := newUpstreamAt(t, upDir)
	u.write("charts/a/Chart.yaml", "name: a\nversion: 1.0.0\n", 0o644)
	want := u.commit("root's commit")
	bin := filepath.Join(base, "gitsrc.test")
	copyExecutable(t, bin)
	state := filepath.Join(base, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(state, uid, gid); err != nil {
		t.Fatal(err)
	}

	run := func() string {
		t.Helper()
		cmd := exec.Command(bin, "-test.run=^TestChildSync$", "-test.count=1", "-test.v")
		cmd.Env = []string{"HOME=" + state, "PATH=/usr/bin:/bin", childURL + "=" + upDir, childDir + "=" + filepath.Join(state, "git")}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child Sync as uid %d: %v\n%s", uid, err, out)
		}
		return string(out)
	}
	if out := run(); !strings.Contains(out, "commit "+want) {
		t.Fatalf("child did not report commit %s:\n%s", want, out)
	}
	u.write("charts/a/Chart.yaml", "name: a\nversion: 1.0.1\n", 0o644)
	want = u.commit("root's second commit")
	if out := run(); !strings.Contains(out, "commit "+want) {
		t.Fatalf("child fetch did not report commit %s:\n%s", want, out)
	}
	// What the previous release ran (git-upload-pack, through go-git's file
	// transport) is refused for this repository as that user; logged only,
	// since it is a property of the installed git.
	cmd := exec.Command(gitBin(t), "ls-remote", upDir)
	cmd.Env = []string{"HOME=" + state, "GIT_CONFIG_NOSYSTEM=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	out, err := cmd.CombinedOutput()
	t.Logf("for comparison, git ls-remote as uid %d: err=%v: %s", uid, err, strings.TrimSpace(string(out)))
}

// TestChildSync is the reader of TestSyncRootOwnedRepoAsOtherUser: it only
// runs in the child process.
func TestChildSync(t *testing.T) {
	url, dir := os.Getenv(childURL), os.Getenv(childDir)
	if url == "" {
		t.Skip("runs only as the child of TestSyncRootOwnedRepoAsOtherUser")
	}
	tree, err := Sync(context.Background(), Options{URL: url, Branch: "master", Dir: dir})
	if err != nil {
		t.Fatalf("Sync as uid %d: %v", os.Getuid(), err)
	}
	if os.Getenv(childAnyFile) == "" {
		if _, err := fs.ReadFile(tree.FS, "charts/a/Chart.yaml"); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("uid %d commit %s\n", os.Getuid(), tree.Commit)
}

// copyExecutable copies the running test binary to dst, mode 0755.
func copyExecutable(t *testing.T, dst string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
