package hostile

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chartsync/chartsync/internal/testenv"
)

// TestGitWindowsReservedNames (case 3): names Windows reserves (aux, con,
// nul, ...) anywhere in the repository are ordinary files: every chart is
// published, including one in a directory named aux, and the next cycle
// fetches into the same repository instead of cloning again.
func TestGitWindowsReservedNames(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"),
		testenv.Chart("charts/aux", "aux", "1.0.0"), map[string]string{"charts/aux/templates/con.yaml": "# con\n"},
		map[string]string{"docs/aux.md": "aux\n", "con.yaml": "con: 1\n", "nul/readme": "nul\n", "COM1.txt": "com1\n"},
	))
	r.Commit("reserved names")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	res := s.mustRun(0, "run", "--once")
	res.published(t, "charts/ok")
	res.published(t, "charts/aux")
	res.only(t, "charts/ok", "charts/aux")
	repo := stateRepo(t, s)

	r.Write(testenv.Chart("charts/ok", "ok", "1.0.1"))
	r.Commit("bump")
	res = s.mustRun(0, "run", "--once")
	res.published(t, "charts/ok")
	if !os.SameFile(repo, stateRepo(t, s)) {
		t.Error("the second cycle cloned the repository again")
	}
	want(t, "index", s.indexed(), "aux-1.0.0", "ok-1.0.0", "ok-1.0.1")
}

// TestGitCraftedTreeEntries (case 18): tree entries git refuses to check out
// (".git" at the top and inside a chart, its 8.3 alias "GIT~1", a symlink
// and a directory under one name) are logged naming the path, left out of
// the tree (the chart beside them is published without them), and never
// make a cycle clone again.
func TestGitCraftedTreeEntries(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"), map[string]string{"README.md": "hi\n"}))
	r.Commit("good")
	config := gitStdin(t, r, "[core]\n\tfsmonitor = touch /tmp/owned\n", "hash-object", "-w", "--stdin")
	dotgit := rawTree(t, r, "100644 config "+config)
	link := gitStdin(t, r, "README.md", "hash-object", "-w", "--stdin")
	okTree := rawTree(t, r, append(lsTree(t, r, "HEAD:charts/ok"), "40000 .git "+dotgit)...)
	charts := rawTree(t, r, "40000 ok "+okTree)
	var entries []string
	for _, e := range lsTree(t, r, "HEAD^{tree}") {
		if strings.HasPrefix(e, "40000 charts ") {
			e = "40000 charts " + charts
		}
		entries = append(entries, e)
	}
	root := rawTree(t, r, append(entries,
		"40000 .git "+dotgit, "100644 GIT~1 "+config, "120000 dup "+link, "40000 dup "+dotgit)...)
	commit := gitStdin(t, r, "", "commit-tree", root, "-p", "HEAD", "-m", "crafted")
	r.Git("update-ref", "refs/heads/main", commit)

	s := newSite(t, r, []string{"charts/*"}, "", "")
	res := s.mustRun(0, "run", "--once")
	res.published(t, "charts/ok")
	res.only(t, "charts/ok")
	for _, p := range []string{`tree entry .git:`, `tree entry GIT~1:`, `tree entry dup:`, `tree entry charts/ok/.git:`} {
		if !strings.Contains(res.stderr, p) {
			t.Errorf("no log line naming %q\n%s", p, res.stderr)
		}
	}
	for _, name := range tgzNames(t, s.stored()["ok-1.0.0.tgz"]) {
		if strings.Contains(name, ".git/") || strings.HasSuffix(name, "/config") {
			t.Errorf("package holds %s", name)
		}
	}
	repo := stateRepo(t, s)
	s.mustRun(0, "run", "--once")
	if !os.SameFile(repo, stateRepo(t, s)) {
		t.Error("a cycle cloned the repository again because of its content")
	}
}

// TestGitStateDirPrivate (case 11, the git part): what chartsync keeps of
// the repository is closed to group and others.
func TestGitStateDirPrivate(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Chart("charts/ok", "ok", "1.0.0"))
	r.Commit("one")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	s.mustRun(0, "run", "--once")
	r.Write(testenv.Chart("charts/ok", "ok", "1.0.1"))
	r.Commit("two")
	s.mustRun(0, "run", "--once")
	err := filepath.WalkDir(filepath.Join(s.stateDir, "git"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, want no group or other access", p, fi.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// stateRepo identifies the site's repository directory: a clone replaces it.
func stateRepo(t *testing.T, s *site) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(filepath.Join(s.stateDir, "git"))
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// gitStdin runs git in r with stdin and returns its trimmed stdout.
func gitStdin(t *testing.T, r *gitRepo, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.org",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.org", "GIT_CONFIG_NOSYSTEM=1", "HOME="+r.Dir)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// lsTree lists the entries of treeish as "mode name hash" lines.
func lsTree(t *testing.T, r *gitRepo, treeish string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(gitStdin(t, r, "", "ls-tree", "-z", treeish), "\x00") {
		if line == "" {
			continue
		}
		meta, name, _ := strings.Cut(line, "\t")
		f := strings.Fields(meta)
		mode := strings.TrimPrefix(f[0], "0")
		out = append(out, mode+" "+name+" "+f[2])
	}
	return out
}

// rawTree writes a tree object holding exactly entries ("mode name hash"),
// unchecked, as a crafted push could, and returns its id.
func rawTree(t *testing.T, r *gitRepo, entries ...string) string {
	t.Helper()
	var b bytes.Buffer
	for _, e := range entries {
		mode, rest, _ := strings.Cut(e, " ")
		i := strings.LastIndexByte(rest, ' ')
		h, err := hex.DecodeString(rest[i+1:])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s\x00", mode, rest[:i])
		b.Write(h)
	}
	return gitStdin(t, r, b.String(), "hash-object", "-t", "tree", "-w", "--literally", "--stdin")
}

// TestGitLargeFile (case 9): a 300 MiB file anywhere in git (here beside
// the charts) costs no memory in proportion to its size, neither in the
// first cycle's clone nor in a later cycle's fetch. Before, each cost
// about 1 GB.
func TestGitLargeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("writes two 300 MiB files")
	}
	const limit = 250 << 20 // a 300 MiB object held whole would exceed it
	r := newRepo(t)
	r.Write(testenv.Chart("charts/ok", "ok", "1.0.0"))
	writeBig(t, filepath.Join(r.Dir, "assets/big1.bin"), "one")
	r.Commit("large file")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	res := s.mustRun(0, "run", "--once")
	res.published(t, "charts/ok")
	if res.maxRSS > limit {
		t.Errorf("first cycle (clone): peak RSS %d MiB, want <= %d", res.maxRSS>>20, limit>>20)
	}
	writeBig(t, filepath.Join(r.Dir, "assets/big2.bin"), "two")
	r.Write(testenv.Chart("charts/ok", "ok", "1.0.1"))
	r.Commit("another large file")
	res = s.mustRun(0, "run", "--once")
	res.published(t, "charts/ok")
	if res.maxRSS > limit {
		t.Errorf("second cycle (fetch): peak RSS %d MiB, want <= %d", res.maxRSS>>20, limit>>20)
	}
}

// writeBig writes 300 MiB of distinct lines to p.
func writeBig(t *testing.T, p, seed string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for line, n := 0, 0; n < 300<<20; line++ {
		k, _ := fmt.Fprintf(&b, "%s line %d of a large file beside the charts\n", seed, line)
		n += k
		if b.Len() > 1<<20 {
			if _, err := f.Write(b.Bytes()); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
