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
)

// gitBin returns the git binary or fails the test: go-git needs it for local
// and file:// URLs, and the tests build upstream repositories with it.
func gitBin(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("git binary not found on PATH (needed to build test repositories and, by go-git, to serve local URLs): %v", err)
	}
	return p
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
	u := &upstream{t: t, dir: t.TempDir()}
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

// commitTree lists what commit holds, as git ls-tree sees it.
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

// workTree lists what is on disk under root, outside .git.
func workTree(t testing.TB, root string) map[string]entry {
	t.Helper()
	m := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel == ".git" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			m[rel] = entry{mode: "120000", hash: blobHash([]byte(target))}
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			mode := "100644"
			if fi.Mode()&0o111 != 0 {
				mode = "100755"
			}
			m[rel] = entry{mode: mode, hash: blobHash(b)}
		default:
			m[rel] = entry{mode: fi.Mode().String()}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return m
}

// assertCheckout fails unless tree is commit of repoDir, root holds exactly
// the files of that commit (content, mode, symlink targets), no empty
// directories are left over, and the real git CLI agrees the checkout is
// clean and at commit.
func assertCheckout(t testing.TB, tree *Tree, root, repoDir, commit string) {
	t.Helper()
	if tree != nil {
		if tree.Commit != commit {
			t.Errorf("Tree.Commit = %s, want %s", tree.Commit, commit)
		}
		if tree.Root != root {
			t.Errorf("Tree.Root = %s, want %s", tree.Root, root)
		}
	}
	want := commitTree(t, repoDir, commit)
	got := workTree(t, root)
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
		t.Errorf("checkout differs from %s:\n%s", commit, strings.Join(diffs, "\n"))
	}
	assertNoEmptyDirs(t, root)
	if head := runGit(t, root, "rev-parse", "HEAD"); head != commit {
		t.Errorf("git rev-parse HEAD in checkout = %s, want %s", head, commit)
	}
	if st := runGit(t, root, "status", "--porcelain", "--ignored", "--untracked-files=all"); st != "" {
		t.Errorf("git status in checkout not clean:\n%s", st)
	}
}

func assertNoEmptyDirs(t testing.TB, root string) {
	t.Helper()
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if d.Name() == ".git" {
			return filepath.SkipDir
		}
		if ents, _ := os.ReadDir(p); len(ents) == 0 && p != root {
			t.Errorf("empty directory left in checkout: %s", p)
		}
		return nil
	})
}

// gitDir identifies the checkout's .git directory on disk. A re-clone
// replaces it, so comparing identities tells a fetch-and-reset from a
// re-clone (the fallback that would otherwise hide a failed reset).
func gitDir(t testing.TB, dir string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, ".git"))
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func assertNotRecloned(t testing.TB, before os.FileInfo, dir string) {
	t.Helper()
	if !os.SameFile(before, gitDir(t, dir)) {
		t.Errorf("Sync re-cloned %s; want a fetch and reset of the existing checkout", dir)
	}
}

func assertRecloned(t testing.TB, before os.FileInfo, dir string) {
	t.Helper()
	if os.SameFile(before, gitDir(t, dir)) {
		t.Errorf("Sync kept the .git of %s; want a re-clone", dir)
	}
}
