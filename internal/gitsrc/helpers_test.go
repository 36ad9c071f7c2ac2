package gitsrc

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/chartsync/chartsync/internal/testenv"
)

// gitBin returns the git binary: the tests build upstream repositories with
// it and check the result with it (gitsrc does not need it).
func gitBin(t testing.TB) string {
	t.Helper()
	return testenv.Tool(t, "git")
}

// runGit runs git in dir with an isolated configuration and returns stdout.
func runGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return runGitEnv(t, dir, nil, args...)
}

func runGitEnv(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(gitBin(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+os.TempDir(),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.org",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.org",
	)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// upstream is a non-bare repository made with the git CLI, standing in for
// the remote.
type upstream struct {
	t   testing.TB
	dir string
	n   int // commits made, to give each a distinct committer time
}

func newUpstream(t testing.TB) *upstream {
	t.Helper()
	return newUpstreamAt(t, t.TempDir())
}

// newUpstreamAt makes the upstream in dir, which must exist.
func newUpstreamAt(t testing.TB, dir string) *upstream {
	t.Helper()
	u := &upstream{t: t, dir: dir}
	runGit(t, u.dir, "init", "-q", "-b", "master")
	return u
}

// write creates or replaces a file (mode 0o755 makes it executable).
func (u *upstream) write(name, content string, mode os.FileMode) {
	u.t.Helper()
	p := filepath.Join(u.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		u.t.Fatal(err)
	}
	_ = os.Remove(p)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		u.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		u.t.Fatal(err)
	}
}

func (u *upstream) symlink(target, name string) {
	u.t.Helper()
	p := filepath.Join(u.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		u.t.Fatal(err)
	}
	_ = os.Remove(p)
	if err := os.Symlink(target, p); err != nil {
		u.t.Fatal(err)
	}
}

func (u *upstream) remove(name string) {
	u.t.Helper()
	if err := os.RemoveAll(filepath.Join(u.dir, filepath.FromSlash(name))); err != nil {
		u.t.Fatal(err)
	}
}

// commit commits everything and returns the new commit id. Committer times
// are fixed and distinct, in a +02:00 zone.
func (u *upstream) commit(msg string) string {
	u.t.Helper()
	u.n++
	date := fmt.Sprintf("2024-05-06T07:08:%02d+02:00", u.n)
	runGit(u.t, u.dir, "add", "-A")
	runGitEnv(u.t, u.dir, []string{"GIT_COMMITTER_DATE=" + date, "GIT_AUTHOR_DATE=" + date},
		"commit", "-q", "--allow-empty", "-m", msg)
	return u.head("master")
}

func (u *upstream) head(branch string) string {
	u.t.Helper()
	return runGit(u.t, u.dir, "rev-parse", "refs/heads/"+branch)
}

// base makes an upstream with one commit holding a regular file, an
// executable, a nested directory, a .gitignore and symlinks.
func baseUpstream(t testing.TB) *upstream {
	t.Helper()
	u := newUpstream(t)
	u.write("README.md", "hello\n", 0o644)
	u.write(".gitignore", "*.tgz\n", 0o644)
	u.write("charts/a/Chart.yaml", "name: a\nversion: 1.0.0\n", 0o644)
	u.write("charts/a/templates/cm.yaml", "kind: ConfigMap\n", 0o644)
	u.write("bin/tool.sh", "#!/bin/sh\necho hi\n", 0o755)
	u.symlink("../a/templates", "charts/b/templates")
	u.symlink("README.md", "readme-link")
	u.symlink("/etc/hostname", "abs-link")
	u.commit("base")
	return u
}

type entry struct {
	mode string // git mode: 100644, 100755, 120000
	hash string // git blob id of the content or link target
}

// commitTree lists the files and symlinks commit holds, as git ls-tree sees
// them.
func commitTree(t testing.TB, repoDir, commit string) map[string]entry {
	t.Helper()
	out := runGit(t, repoDir, "ls-tree", "-r", "-z", commit)
	m := map[string]entry{}
	for _, line := range strings.Split(out, "\x00") {
		if line == "" {
			continue
		}
		meta, path, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("bad ls-tree line %q", line)
		}
		f := strings.Fields(meta)
		if f[0] == "160000" {
			continue // a submodule: an empty directory in a Tree's FS
		}
		m[path] = entry{mode: f[0], hash: f[2]}
	}
	return m
}

func blobHash(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// fsTree lists what fsys holds, as git ls-tree -r would: files and
// symlinks with their git mode and blob id (submodules are empty
// directories and so not listed).
func fsTree(t testing.TB, fsys fs.FS) map[string]entry {
	t.Helper()
	m := map[string]entry{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := fs.Lstat(fsys, p)
		if err != nil {
			return err
		}
		if fi.Mode().Type() != d.Type() {
			t.Errorf("%s: Lstat type %v, DirEntry type %v", p, fi.Mode().Type(), d.Type())
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := fs.ReadLink(fsys, p)
			if err != nil {
				return err
			}
			m[p] = entry{mode: "120000", hash: blobHash([]byte(target))}
		case fi.Mode().IsRegular():
			b, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			if int64(len(b)) != fi.Size() {
				t.Errorf("%s: Size() %d, content %d bytes", p, fi.Size(), len(b))
			}
			mode := "100644"
			if fi.Mode()&0o111 != 0 {
				mode = "100755"
			}
			m[p] = entry{mode: mode, hash: blobHash(b)}
		default:
			m[p] = entry{mode: fi.Mode().String()}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk tree: %v", err)
	}
	return m
}

// assertTree fails unless tree is commit of repoDir, its FS holds exactly
// the files of that commit (content, mode, symlink targets), and the real
// git CLI finds the repository in dir healthy with HEAD at commit.
func assertTree(t testing.TB, tree *Tree, dir, repoDir, commit string) {
	t.Helper()
	if tree != nil {
		if tree.Commit != commit {
			t.Errorf("Tree.Commit = %s, want %s", tree.Commit, commit)
		}
		assertFS(t, tree.FS, repoDir, commit)
	}
	if head := runGit(t, dir, "rev-parse", "HEAD"); head != commit {
		t.Errorf("git rev-parse HEAD in %s = %s, want %s", dir, head, commit)
	}
	if bare := runGit(t, dir, "rev-parse", "--is-bare-repository"); bare != "true" {
		t.Errorf("git rev-parse --is-bare-repository in %s = %s", dir, bare)
	}
	runGit(t, dir, "fsck", "--no-dangling", "--connectivity-only", "HEAD")
}

// assertFS fails unless fsys holds exactly the files of commit of repoDir.
func assertFS(t testing.TB, fsys fs.FS, repoDir, commit string) {
	t.Helper()
	want := commitTree(t, repoDir, commit)
	got := fsTree(t, fsys)
	var diffs []string
	for p, w := range want {
		if g, ok := got[p]; !ok {
			diffs = append(diffs, "missing "+p)
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s: got %v, want %v", p, g, w))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, "extra "+p)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("tree differs from %s:\n%s", commit, strings.Join(diffs, "\n"))
	}
}

// repoID identifies the repository directory on disk. A re-clone (or a
// conversion) replaces it, so comparing identities tells a fetch from a
// re-clone (the fallback that would otherwise hide a failed fetch).
func repoID(t testing.TB, dir string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func assertNotRecloned(t testing.TB, before os.FileInfo, dir string) {
	t.Helper()
	if !os.SameFile(before, repoID(t, dir)) {
		t.Errorf("Sync re-cloned %s; want a fetch into the existing repository", dir)
	}
}

func assertRecloned(t testing.TB, before os.FileInfo, dir string) {
	t.Helper()
	if os.SameFile(before, repoID(t, dir)) {
		t.Errorf("Sync kept %s; want a re-clone", dir)
	}
}
