package gitsrc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

// TestTreeFSConformance runs the standard library's file system checks on a
// tree with nested directories, an executable, an empty file, symlinks to a
// file and to a directory, a submodule and Windows-reserved names.
func TestTreeFSConformance(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	u.write("charts/a/Chart.yaml", "name: a\nversion: 1.0.0\n", 0o644)
	u.write("charts/a/templates/cm.yaml", "kind: ConfigMap\n", 0o644)
	u.write("charts/a/empty", "", 0o644)
	u.write("bin/tool.sh", "#!/bin/sh\n", 0o755)
	u.write("docs/aux.md", "aux\n", 0o644)
	u.write("con.yaml", "con: 1\n", 0o644)
	u.write("nul/x.yaml", "x: 1\n", 0o644)
	u.symlink("../a/templates", "charts/b/templates")
	u.symlink("a/Chart.yaml", "charts/chart-link")
	runGit(t, u.dir, "add", "-A")
	runGit(t, u.dir, "update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("ab", 20)+",vendor/sub")
	runGit(t, u.dir, "commit", "-q", "-m", "conformance")
	want := u.head("master")

	tree := syncOK(t, Options{URL: u.dir, Branch: "master", Dir: filepath.Join(t.TempDir(), "repo")})
	if err := fstest.TestFS(tree.FS, "charts/a/Chart.yaml", "charts/a/templates/cm.yaml", "charts/a/empty",
		"bin/tool.sh", "docs/aux.md", "con.yaml", "nul/x.yaml", "charts/b/templates", "charts/chart-link"); err != nil {
		t.Fatal(err)
	}
	assertFS(t, tree.FS, u.dir, want)
	fi, err := fs.Stat(tree.FS, "vendor/sub")
	if err != nil || !fi.IsDir() {
		t.Fatalf("submodule: Stat = %v, %v; want a directory", fi, err)
	}
	if ents, err := fs.ReadDir(tree.FS, "vendor/sub"); len(ents) != 0 || err != nil {
		t.Errorf("submodule: ReadDir = %v, %v; want an empty directory", ents, err)
	}
	if p := tree.Problems(); p != nil {
		t.Errorf("Problems() = %v, want none", p)
	}
}

// Windows-reserved names (issue 9, case 3) are ordinary names: a Sync
// succeeds, the files read back, and nothing is reported.
func TestTreeFSWindowsReservedNames(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	names := []string{"docs/aux.md", "con.yaml", "nul/x.yaml", "charts/aux/Chart.yaml", "COM1.txt", "prn", "charts/lpt1/templates/con.yaml"}
	for _, n := range names {
		u.write(n, "content of "+n+"\n", 0o644)
	}
	u.commit("reserved names")
	dir := filepath.Join(t.TempDir(), "repo")
	tree := syncOK(t, Options{URL: u.dir, Branch: "master", Dir: dir})
	for _, n := range names {
		b, err := fs.ReadFile(tree.FS, n)
		if err != nil || string(b) != "content of "+n+"\n" {
			t.Errorf("ReadFile(%s) = %q, %v", n, b, err)
		}
	}
	if p := tree.Problems(); p != nil {
		t.Errorf("Problems() = %v, want none", p)
	}
	gd := repoID(t, dir)
	syncOK(t, Options{URL: u.dir, Branch: "master", Dir: dir})
	assertNotRecloned(t, gd, dir)
}

func TestTreeFSSymlinks(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	u.write("charts/a/Chart.yaml", "name: a\n", 0o644)
	u.write("charts/a/templates/cm.yaml", "kind: ConfigMap\n", 0o644)
	links := map[string]string{
		"charts/a/esc":      "../../..",
		"charts/a/abs":      "/etc/passwd",
		"charts/a/up":       "..",
		"charts/a/via":      "up/../../x", // escapes through another link
		"charts/a/loop1":    "loop2",
		"charts/a/loop2":    "loop1",
		"charts/a/self":     "self",
		"charts/a/dangling": "nothere",
		"charts/a/dotgit":   "../../.git/config",
		"charts/c":          "a", // a symlinked chart directory
		"charts/a/tpl":      "./templates//cm.yaml",
	}
	for name, target := range links {
		u.symlink(target, name)
	}
	u.commit("links")
	tree := syncOK(t, Options{URL: u.dir, Branch: "master", Dir: filepath.Join(t.TempDir(), "repo")})

	tests := []struct {
		name    string
		wantErr error  // from ReadFile
		want    string // content
	}{
		{name: "charts/a/esc", wantErr: errSymlinkEscapes},
		{name: "charts/a/esc/etc/passwd", wantErr: errSymlinkEscapes},
		{name: "charts/a/abs", wantErr: errSymlinkEscapes},
		{name: "charts/a/via", wantErr: errSymlinkEscapes},
		{name: "charts/a/loop1", wantErr: errSymlinkLoop},
		{name: "charts/a/self", wantErr: errSymlinkLoop},
		{name: "charts/a/dangling", wantErr: fs.ErrNotExist},
		{name: "charts/a/dotgit", wantErr: fs.ErrNotExist},
		{name: "charts/a/up/a/Chart.yaml", want: "name: a\n"},
		{name: "charts/c/Chart.yaml", want: "name: a\n"},
		{name: "charts/c/templates/cm.yaml", want: "kind: ConfigMap\n"},
		{name: "charts/a/tpl", want: "kind: ConfigMap\n"},
	}
	for _, tt := range tests {
		b, err := fs.ReadFile(tree.FS, tt.name)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ReadFile(%s) = %q, %v; want %v", tt.name, b, err, tt.wantErr)
			}
			continue
		}
		if err != nil || string(b) != tt.want {
			t.Errorf("ReadFile(%s) = %q, %v; want %q", tt.name, b, err, tt.want)
		}
	}
	// Every link is itself an entry: Lstat and ReadLink never follow it.
	for name, target := range links {
		fi, err := fs.Lstat(tree.FS, name)
		if err != nil || fi.Mode().Type() != fs.ModeSymlink {
			t.Errorf("Lstat(%s) = %v, %v; want a symlink", name, fi, err)
		}
		if got, err := fs.ReadLink(tree.FS, name); got != target || err != nil {
			t.Errorf("ReadLink(%s) = %q, %v; want %q", name, got, err, target)
		}
	}
	if _, err := fs.ReadLink(tree.FS, "charts/a/Chart.yaml"); !errors.Is(err, errNotLink) {
		t.Errorf("ReadLink of a file = %v, want %v", err, errNotLink)
	}
	// A directory reached through a link lists like the directory itself.
	got, err := fs.ReadDir(tree.FS, "charts/c")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 2 || got[0].Name() != "Chart.yaml" {
		t.Errorf("ReadDir(charts/c) = %v", got)
	}
}

// rawEntry is one entry of a tree object written byte by byte, as a
// crafted push could.
type rawEntry struct {
	mode, name, hash string
}

// gitStdin runs git with stdin and returns stdout, trimmed.
func gitStdin(t *testing.T, dir string, stdin []byte, args ...string) string {
	t.Helper()
	return strings.TrimSpace(gitStdinRaw(t, dir, stdin, args...))
}

// gitStdinRaw runs git with stdin and returns stdout.
func gitStdinRaw(t testing.TB, dir string, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command(gitBin(t), args...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.org",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.org")
	cmd.Stdin = bytes.NewReader(stdin)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, stderr.String())
	}
	return out.String()
}

// rawTree writes a tree object with exactly entries, unchecked.
func rawTree(t *testing.T, dir string, entries ...rawEntry) string {
	t.Helper()
	var b bytes.Buffer
	for _, e := range entries {
		h, err := hex.DecodeString(e.hash)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s\x00", e.mode, e.name)
		b.Write(h)
	}
	return gitStdin(t, dir, b.Bytes(), "hash-object", "-t", "tree", "-w", "--literally", "--stdin")
}

// Crafted tree entries (issue 9, case 18) are reported by path and reason,
// are absent from the FS, and never cause a re-clone.
func TestTreeFSCraftedEntries(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	u.commit("empty")
	blob := func(s string) string { return gitStdin(t, u.dir, []byte(s), "hash-object", "-w", "--stdin") }
	evil := blob("[core]\n\tfsmonitor = touch /tmp/pwned\n")
	good := blob("good\n")
	gitTree := rawTree(t, u.dir, rawEntry{"100644", "config", evil})
	chart := rawTree(t, u.dir,
		rawEntry{"100644", "Chart.yaml", blob("name: ok\nversion: 1.0.0\n")},
		rawEntry{"40000", ".git", gitTree},
	)
	charts := rawTree(t, u.dir, rawEntry{"40000", "ok", chart})
	root := rawTree(t, u.dir,
		rawEntry{"40000", ".git", gitTree},
		rawEntry{"100644", ".GIT", evil},
		rawEntry{"40000", "git~1", gitTree},
		rawEntry{"100644", "GIT~1", evil},
		rawEntry{"100644", ".git.", evil},
		rawEntry{"100644", ".git ", evil},
		rawEntry{"100644", ".git::$INDEX_ALLOCATION", evil},
		rawEntry{"100644", ".g\u200cit", evil},
		rawEntry{"100644", "..", evil},
		rawEntry{"100644", ".", evil},
		rawEntry{"100644", "a/b", evil},
		rawEntry{"120000", "dup", blob("good")},
		rawEntry{"40000", "dup", gitTree},
		rawEntry{"100644", "aux.md", good},
		rawEntry{"40000", "charts", charts},
		rawEntry{"100644", "con.yaml", good},
		rawEntry{"100644", "good", good},
		rawEntry{"100644", ".gitignore", good}, // an ordinary name that starts like .git
	)
	commit := gitStdin(t, u.dir, nil, "commit-tree", root, "-p", u.head("master"), "-m", "crafted")
	runGit(t, u.dir, "update-ref", "refs/heads/master", commit)

	dir := filepath.Join(t.TempDir(), "repo")
	opts := Options{URL: u.dir, Branch: "master", Dir: dir}
	tree := syncOK(t, opts)
	if tree.Commit != commit {
		t.Fatalf("Tree.Commit = %s, want %s", tree.Commit, commit)
	}
	var names []string
	ents, err := fs.ReadDir(tree.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{".gitignore", "aux.md", "charts", "con.yaml", "good"}; !slices.Equal(names, want) {
		t.Errorf("ReadDir(.) = %q, want %q", names, want)
	}

	wantBad := map[string]string{
		".git":                    `a ".git" entry`,
		".GIT":                    `a ".git" entry`,
		"git~1":                   `8.3 short name`,
		"GIT~1":                   `8.3 short name`,
		".git.":                   `a ".git" entry`,
		".git ":                   `a ".git" entry`,
		".git::$INDEX_ALLOCATION": `a ".git" entry`,
		".g\u200cit":              `a ".git" entry`,
		`".."`:                    `a ".." entry`,
		`"."`:                     `a "." entry`,
		`"a/b"`:                   `contains a slash`,
		"dup":                     `2 entries share this name`,
		"charts/ok/.git":          `a ".git" entry`,
	}
	gotBad := map[string]string{}
	for _, p := range tree.Problems() {
		var ee *EntryError
		if !errors.As(p, &ee) {
			t.Errorf("problem %v is not an *EntryError", p)
			continue
		}
		if !strings.Contains(p.Error(), ee.Path) {
			t.Errorf("error %q does not name the path %q", p, ee.Path)
		}
		gotBad[ee.Path] = ee.Reason
	}
	for p, reason := range wantBad {
		if got, ok := gotBad[p]; !ok || !strings.Contains(got, reason) {
			t.Errorf("problem for %q = %q, want one containing %q", p, got, reason)
		}
	}
	for p := range gotBad {
		if _, ok := wantBad[p]; !ok {
			t.Errorf("unexpected problem %q: %s", p, gotBad[p])
		}
	}

	// Opening a path through a refused entry names it, and is "not exist".
	for name, want := range map[string]string{".git/config": ".git", "charts/ok/.git/config": "charts/ok/.git", "dup": "dup", "git~1/config": "git~1"} {
		_, err := tree.FS.Open(name)
		var ee *EntryError
		if !errors.As(err, &ee) || ee.Path != want || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(%s) = %v, want an EntryError for %s that is fs.ErrNotExist", name, err, want)
		}
	}
	if b, err := fs.ReadFile(tree.FS, "charts/ok/Chart.yaml"); err != nil || !strings.Contains(string(b), "name: ok") {
		t.Errorf("the good chart beside a crafted entry: %q, %v", b, err)
	}

	// Content never causes a re-clone.
	gd := repoID(t, dir)
	again := syncOK(t, opts)
	assertNotRecloned(t, gd, dir)
	if again.Commit != commit {
		t.Errorf("second Sync at %s, want %s", again.Commit, commit)
	}
}

// Many goroutines read one tree at once (the syncer packages charts in
// parallel); run with -race.
func TestTreeFSConcurrentReaders(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	for c := range 8 {
		for f := range 10 {
			u.write(fmt.Sprintf("charts/c%d/templates/f%d.yaml", c, f), fmt.Sprintf("chart %d file %d\n", c, f), 0o644)
		}
		u.symlink(fmt.Sprintf("c%d", c), fmt.Sprintf("charts/link%d", c))
	}
	want := u.commit("many")
	tree := syncOK(t, Options{URL: u.dir, Branch: "master", Dir: filepath.Join(t.TempDir(), "repo")})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for f := range 10 {
				c := (g + f) % 8
				name := fmt.Sprintf("charts/link%d/templates/f%d.yaml", c, f)
				b, err := fs.ReadFile(tree.FS, name)
				if err != nil || string(b) != fmt.Sprintf("chart %d file %d\n", c, f) {
					t.Errorf("ReadFile(%s) = %q, %v", name, b, err)
				}
			}
			if _, err := fs.ReadDir(tree.FS, fmt.Sprintf("charts/c%d/templates", g%8)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	assertFS(t, tree.FS, u.dir, want)
}
