package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func syncOK(t *testing.T, opts Options) *Tree {
	t.Helper()
	tree, err := Sync(context.Background(), opts)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return tree
}

func TestSyncClone(t *testing.T) {
	t.Parallel()
	u := baseUpstream(t)
	tests := []struct {
		name string
		url  string
	}{
		{name: "local path", url: u.dir},
		{name: "file URL", url: "file://" + u.dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A parent that does not exist yet: Dir is created.
			dir := filepath.Join(t.TempDir(), "state", "checkout")
			tree := syncOK(t, Options{URL: tt.url, Branch: "master", Dir: dir})
			want := u.head("master")
			assertTree(t, tree, dir, u.dir, want)
			assertPrivate(t, dir)

			ct, err := strconv.ParseInt(runGit(t, u.dir, "log", "-1", "--format=%ct", want), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if !tree.Time.Equal(time.Unix(ct, 0)) {
				t.Errorf("Tree.Time = %v, want %v", tree.Time, time.Unix(ct, 0))
			}
			if _, off := tree.Time.Zone(); off != 2*3600 {
				t.Errorf("Tree.Time zone offset = %d, want the committer's +02:00", off)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dir), ".checkout.clone")); !os.IsNotExist(err) {
				t.Errorf("scratch clone dir left behind: %v", err)
			}
		})
	}
}

func TestSyncSymlinksAndModes(t *testing.T) {
	t.Parallel()
	u := baseUpstream(t)
	dir := filepath.Join(t.TempDir(), "co")
	tree := syncOK(t, Options{URL: u.dir, Branch: "master", Dir: dir})

	links := map[string]string{
		"charts/b/templates": "../a/templates",
		"readme-link":        "README.md",
		"abs-link":           "/etc/hostname", // target kept verbatim
	}
	for name, target := range links {
		fi, err := fs.Lstat(tree.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("%s: mode %v, want a symlink", name, fi.Mode())
			continue
		}
		if got, err := fs.ReadLink(tree.FS, name); got != target || err != nil {
			t.Errorf("%s -> %q, %v, want %q", name, got, err, target)
		}
	}
	for name, want := range map[string]fs.FileMode{"bin/tool.sh": 0o755, "README.md": 0o644, "charts": fs.ModeDir | 0o755} {
		fi, err := fs.Stat(tree.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s mode %v, want %v", name, fi.Mode(), want)
		}
	}
	// Open and Stat follow links inside the tree, as os.DirFS does.
	if b, err := fs.ReadFile(tree.FS, "charts/b/templates/cm.yaml"); err != nil || string(b) != "kind: ConfigMap\n" {
		t.Errorf("ReadFile through a symlinked directory = %q, %v", b, err)
	}
	if _, err := fs.Stat(tree.FS, ".git"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(.git) = %v, want not exist", err)
	}
}

func TestSyncFollowsUpstream(t *testing.T) {
	t.Parallel()
	u := baseUpstream(t)
	dir := filepath.Join(t.TempDir(), "co")
	opts := Options{URL: u.dir, Branch: "master", Dir: dir}
	first := syncOK(t, opts)
	gd := repoID(t, dir)

	// No upstream change: same commit, nothing written.
	before := listFiles(t, dir)
	again := syncOK(t, opts)
	if again.Commit != first.Commit || !again.Time.Equal(first.Time) {
		t.Errorf("no-op Sync = %s %v, want %s %v", again.Commit, again.Time, first.Commit, first.Time)
	}
	if after := listFiles(t, dir); !slices.Equal(before, after) {
		t.Errorf("no-op Sync changed the repository:\nbefore %v\nafter  %v", before, after)
	}

	// New commit: edits, a deletion (its directory goes too), a new chart,
	// a mode change, a symlink retargeted and a file replaced by a symlink.
	u.write("charts/a/Chart.yaml", "name: a\nversion: 1.1.0\n", 0o644)
	u.remove("charts/b")
	u.write("charts/c/Chart.yaml", "name: c\nversion: 0.1.0\n", 0o644)
	u.write("README.md", "hello\n", 0o755)
	u.symlink("bin/tool.sh", "readme-link")
	u.remove("bin/tool.sh")
	u.write("bin/tool.sh", "#!/bin/sh\necho bye\n", 0o644)
	u.remove("abs-link") // a symlink to a file outside the tree
	second := u.commit("second")
	tree := syncOK(t, opts)
	assertTree(t, tree, dir, u.dir, second)
	assertNotRecloned(t, gd, dir)
	assertPrivate(t, dir)
	if !tree.Time.After(first.Time) {
		t.Errorf("Tree.Time %v not after first %v", tree.Time, first.Time)
	}
	if _, err := fs.Lstat(tree.FS, "charts/b"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("charts/b still present after upstream deleted it: %v", err)
	}
	// The first commit's tree is still readable, unchanged.
	assertFS(t, first.FS, u.dir, first.Commit)
}

func TestSyncFollowsForcePush(t *testing.T) {
	t.Parallel()
	u := baseUpstream(t)
	base := u.head("master")
	u.write("charts/a/Chart.yaml", "name: a\nversion: 2.0.0\n", 0o644)
	u.commit("to be dropped")
	dir := filepath.Join(t.TempDir(), "co")
	opts := Options{URL: u.dir, Branch: "master", Dir: dir}
	syncOK(t, opts)
	gd := repoID(t, dir)

	// Rewrite history: drop the last commit and commit something else.
	runGit(t, u.dir, "reset", "-q", "--hard", base)
	u.write("charts/d/Chart.yaml", "name: d\nversion: 0.0.1\n", 0o644)
	diverged := u.commit("diverged")
	tree := syncOK(t, opts)
	assertTree(t, tree, dir, u.dir, diverged)

	// Rewind to an ancestor (a force-push backwards).
	runGit(t, u.dir, "reset", "-q", "--hard", base)
	tree = syncOK(t, opts)
	assertTree(t, tree, dir, u.dir, base)
	assertNotRecloned(t, gd, dir)
}

func TestSyncReclones(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string) // damage a good checkout of u
		other  bool                           // sync other instead of u
		br     string
	}{
		{name: "URL changed", other: true},
		{name: "branch changed", br: "release"},
		{name: "dir is a file", damage: func(t *testing.T, dir string) {
			mustRemoveAll(t, dir)
			mustWrite(t, dir, "garbage")
		}},
		{name: "dir without objects", damage: func(t *testing.T, dir string) {
			mustRemoveAll(t, filepath.Join(dir, "objects"))
		}},
		{name: ".git is a file", damage: func(t *testing.T, dir string) {
			mustWrite(t, filepath.Join(dir, ".git"), "gitdir: /nowhere\n")
		}},
		{name: "empty dir", damage: func(t *testing.T, dir string) {
			mustRemoveAll(t, dir)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "half-finished clone", damage: func(t *testing.T, dir string) {
			// An init'd repository whose fetch never completed.
			mustRemoveAll(t, dir)
			runGit(t, filepath.Dir(dir), "init", "-q", "--bare", "-b", "master", dir)
			runGit(t, dir, "remote", "add", "origin", "/nowhere")
		}},
		{name: "HEAD garbage", damage: func(t *testing.T, dir string) {
			mustWrite(t, filepath.Join(dir, "HEAD"), "garbage\n")
		}},
		{name: "HEAD detached", damage: func(t *testing.T, dir string) {
			mustWrite(t, filepath.Join(dir, "HEAD"), runGit(t, dir, "rev-parse", "HEAD")+"\n")
		}},
		{name: "objects gone", damage: func(t *testing.T, dir string) {
			mustRemoveAll(t, filepath.Join(dir, "objects"))
			if err := os.Mkdir(filepath.Join(dir, "objects"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "config garbage", damage: func(t *testing.T, dir string) {
			mustWrite(t, filepath.Join(dir, "config"), "[[[ not a config\n")
		}},
		{name: "not bare", damage: func(t *testing.T, dir string) {
			runGit(t, dir, "config", "core.bare", "false")
		}},
		{name: "stale scratch dir", damage: func(t *testing.T, dir string) {
			scratch := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".clone")
			mustWrite(t, filepath.Join(scratch, "leftover"), "x")
			mustRemoveAll(t, dir)
		}},
	}
	u := baseUpstream(t)
	runGit(t, u.dir, "branch", "release")
	u.write("only-on-master", "x", 0o644)
	u.commit("master only")
	other := newUpstream(t)
	other.write("other.txt", "other history\n", 0o644)
	other.commit("other")

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "co")
			syncOK(t, Options{URL: u.dir, Branch: "master", Dir: dir})
			if tt.damage != nil {
				tt.damage(t, dir)
			}
			opts := Options{URL: u.dir, Branch: "master", Dir: dir}
			wantRepo, want := u.dir, u.head("master")
			switch {
			case tt.other:
				opts.URL = other.dir
				wantRepo, want = other.dir, other.head("master")
			case tt.br != "":
				opts.Branch = tt.br
				want = u.head(tt.br)
			}
			tree := syncOK(t, opts)
			assertTree(t, tree, dir, wantRepo, want)
			if tt.other {
				// Re-cloned, not fetched into: the old history is gone.
				if err := exec.Command(gitBin(t), "-C", dir, "cat-file", "-e", u.head("master")+"^{commit}").Run(); err == nil {
					t.Errorf("commit of the old URL still in the repository")
				}
			}
			if tt.br != "" {
				if b := runGit(t, dir, "symbolic-ref", "HEAD"); b != "refs/heads/"+tt.br {
					t.Errorf("HEAD = %s, want refs/heads/%s", b, tt.br)
				}
			}
			// And the repository is healthy: the next Sync is a plain fetch.
			gd := repoID(t, dir)
			tree = syncOK(t, opts)
			assertTree(t, tree, dir, wantRepo, want)
			assertNotRecloned(t, gd, dir)
		})
	}
}

func TestSyncFetchFailureKeepsCheckout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		damage  func(t *testing.T, u *upstream) (restore func())
		wantErr string
	}{
		{name: "upstream gone", wantErr: "fetch origin master: ", damage: func(t *testing.T, u *upstream) func() {
			moved := u.dir + ".moved"
			if err := os.Rename(u.dir, moved); err != nil {
				t.Fatal(err)
			}
			return func() {
				if err := os.Rename(moved, u.dir); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{name: "branch deleted", wantErr: "fetch origin master: ", damage: func(t *testing.T, u *upstream) func() {
			head := u.head("master")
			runGit(t, u.dir, "checkout", "-q", "--detach")
			runGit(t, u.dir, "branch", "-q", "-D", "master")
			return func() {
				runGit(t, u.dir, "branch", "-q", "master", head)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := baseUpstream(t)
			dir := filepath.Join(t.TempDir(), "co")
			opts := Options{URL: u.dir, Branch: "master", Dir: dir}
			old := syncOK(t, opts)
			gd := repoID(t, dir)
			u.write("new.txt", "x", 0o644)
			u.commit("new")

			restore := tt.damage(t, u)
			_, err := Sync(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Sync error = %v, want one containing %q", err, tt.wantErr)
			}
			restore()
			assertTree(t, nil, dir, u.dir, old.Commit)
			assertFS(t, old.FS, u.dir, old.Commit)

			tree := syncOK(t, opts)
			assertTree(t, tree, dir, u.dir, u.head("master"))
			assertNotRecloned(t, gd, dir)
		})
	}
}

func TestSyncFirstCloneFailure(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "co")
	_, err := Sync(context.Background(), Options{URL: filepath.Join(t.TempDir(), "missing"), Branch: "master", Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "fetch origin master: ") {
		t.Fatalf("Sync error = %v, want a fetch error", err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("failed clone left %s behind: %v", dir, err)
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(dir), ".co.clone")); !os.IsNotExist(err) {
		t.Errorf("failed clone left its scratch dir behind: %v", err)
	}
}

// A local repository that opens fine but cannot be fetched into (here: the
// directory a new object must go to is a file) while the remote answers is
// re-cloned.
func TestSyncRecoversFromBrokenFetch(t *testing.T) {
	t.Parallel()
	u := baseUpstream(t)
	dir := filepath.Join(t.TempDir(), "co")
	opts := Options{URL: u.dir, Branch: "master", Dir: dir}
	syncOK(t, opts)
	have := map[string]bool{}
	for _, line := range strings.Split(runGit(t, dir, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)"), "\n") {
		have[line[:2]] = true
	}
	var want string
	for i := 0; want == ""; i++ {
		if i == 50 {
			t.Fatal("every new commit id starts like an object the repository has")
		}
		u.write("new.txt", strconv.Itoa(i), 0o644)
		if c := u.commit("new"); !have[c[:2]] {
			want = c
		}
	}
	gd := repoID(t, dir)
	mustWrite(t, filepath.Join(dir, "objects", want[:2]), "not a directory\n")
	src, err := newSource(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.fetch(context.Background(), newRepo(dir).st, "master", false); err == nil {
		t.Fatal("fetch into a broken object store succeeded; the test no longer exercises the re-clone path")
	}
	tree := syncOK(t, opts)
	assertTree(t, tree, dir, u.dir, want)
	assertRecloned(t, gd, dir)
}

func TestSyncCancelled(t *testing.T) {
	t.Parallel()
	u := baseUpstream(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	t.Run("first clone", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "co")
		_, err := Sync(ctx, Options{URL: u.dir, Branch: "master", Dir: dir})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Sync error = %v, want context.Canceled", err)
		}
		if _, err := os.Lstat(dir); !os.IsNotExist(err) {
			t.Errorf("cancelled clone created %s: %v", dir, err)
		}
	})
	t.Run("fetch", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "co")
		opts := Options{URL: u.dir, Branch: "master", Dir: dir}
		old := syncOK(t, opts)
		u.write("new.txt", "x", 0o644)
		u.commit("new")
		_, err := Sync(ctx, opts)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Sync error = %v, want context.Canceled", err)
		}
		assertTree(t, nil, dir, u.dir, old.Commit)

		// Past Sync's own early check: the transfer itself honours ctx.
		src, err := newSource(opts)
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.fetch(ctx, newRepo(dir).st, "master", false)
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "fetch origin master: ") {
			t.Fatalf("fetch error = %v, want context.Canceled from fetch origin master", err)
		}
		assertTree(t, nil, dir, u.dir, old.Commit)
	})
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "ok", opts: Options{URL: "/srv/git/charts", Branch: "master", Dir: "/var/lib/chartsync/git"}},
		{name: "ok https with user", opts: Options{URL: "https://bot@git.example.org/charts.git", Branch: "main", Dir: "d"}},
		{name: "no URL", opts: Options{Branch: "master", Dir: "d"}, wantErr: "empty URL"},
		{name: "no branch", opts: Options{URL: "u", Dir: "d"}, wantErr: "empty branch"},
		{name: "no dir", opts: Options{URL: "u", Branch: "master"}, wantErr: "empty repository dir"},
		{name: "full ref", opts: Options{URL: "u", Branch: "refs/heads/master", Dir: "d"}, wantErr: "invalid branch"},
		{name: "bad branch", opts: Options{URL: "u", Branch: "a..b", Dir: "d"}, wantErr: "invalid branch"},
		{name: "password in URL", opts: Options{URL: "https://bot:s3cret@git.example.org/c.git", Branch: "master", Dir: "d"}, wantErr: "contains a password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("validate error = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error leaks the password: %v", err)
			}
			if _, err := Sync(context.Background(), tt.opts); err == nil {
				t.Errorf("Sync accepted invalid options")
			}
		})
	}
}

func mustRemoveAll(t *testing.T, p string) {
	t.Helper()
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// listFiles lists every file under dir with its size and modification time.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d %s", p, fi.Size(), fi.ModTime().Format(time.RFC3339Nano)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertPrivate fails unless everything under dir is closed to group and
// others.
func assertPrivate(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no group or other permissions", p, fi.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStoredURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ url, want string }{
		{"https://tok3n@git.example.org/charts.git", "https://git.example.org/charts.git"},
		{"http://bot@127.0.0.1:8080/r", "http://127.0.0.1:8080/r"},
		{"https://git.example.org/charts.git", "https://git.example.org/charts.git"},
		{"ssh://git@git.example.org:29418/charts", "ssh://git@git.example.org:29418/charts"},
		{"git@git.example.org:charts.git", "git@git.example.org:charts.git"},
		{"/srv/deployment-charts", "/srv/deployment-charts"},
		{"file:///srv/deployment-charts", "file:///srv/deployment-charts"},
	}
	for _, tt := range tests {
		if got := storedURL(tt.url); got != tt.want {
			t.Errorf("storedURL(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
}
