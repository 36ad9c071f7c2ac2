package gitsrc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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
			assertCheckout(t, tree, dir, u.dir, want)

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
	syncOK(t, Options{URL: u.dir, Branch: "master", Dir: dir})

	links := map[string]string{
		"charts/b/templates": "../a/templates",
		"readme-link":        "README.md",
		"abs-link":           "/etc/hostname", // target kept verbatim, not rebased into Dir
	}
	for name, target := range links {
		p := filepath.Join(dir, filepath.FromSlash(name))
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s: mode %v, want a symlink", name, fi.Mode())
			continue
		}
		if got, _ := os.Readlink(p); got != target {
			t.Errorf("%s -> %q, want %q", name, got, target)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "bin/tool.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("bin/tool.sh mode %v, want executable", fi.Mode())
	}
	fi, err = os.Stat(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o111 != 0 {
		t.Errorf("README.md mode %v, want not executable", fi.Mode())
	}
}

func TestSyncFollowsUpstream(t *testing.T) {
	t.Parallel()
	u := baseUpstream(t)
	dir := filepath.Join(t.TempDir(), "co")
	opts := Options{URL: u.dir, Branch: "master", Dir: dir}
	first := syncOK(t, opts)
	gd := gitDir(t, dir)

	// No upstream change: same commit, files not rewritten.
	marker := filepath.Join(dir, "README.md")
	before, err := os.Stat(marker)
	if err != nil {
		t.Fatal(err)
	}
	again := syncOK(t, opts)
	if again.Commit != first.Commit || !again.Time.Equal(first.Time) {
		t.Errorf("no-op Sync = %+v, want %+v", again, first)
	}
	after, err := os.Stat(marker)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("no-op Sync rewrote README.md (mtime %v -> %v)", before.ModTime(), after.ModTime())
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
	assertCheckout(t, tree, dir, u.dir, second)
	assertNotRecloned(t, gd, dir)
	if !tree.Time.After(first.Time) {
		t.Errorf("Tree.Time %v not after first %v", tree.Time, first.Time)
	}
	if _, err := os.Lstat(filepath.Join(dir, "charts/b")); !os.IsNotExist(err) {
		t.Errorf("charts/b still present after upstream deleted it: %v", err)
	}
}

func TestSyncResetsDirtyCheckout(t *testing.T) {
	t.Parallel()
	u := baseUpstream(t)
	dir := filepath.Join(t.TempDir(), "co")
	opts := Options{URL: u.dir, Branch: "master", Dir: dir}
	syncOK(t, opts)
	want := u.head("master")
	gd := gitDir(t, dir)

	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("charts/a/Chart.yaml", "name: a\nversion: 9.9.9\n") // modified tracked file
	write("untracked.txt", "x")                               // untracked file
	write("newdir/deep/file", "x")                            // untracked directory tree
	write("charts/a/a-1.0.0.tgz", "x")                        // ignored by .gitignore
	if err := os.MkdirAll(filepath.Join(dir, "emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "charts/a/templates/cm.yaml")); err != nil { // deleted
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "bin/tool.sh"), 0o644); err != nil { // mode change
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "readme-link")); err != nil { // symlink replaced by a file
		t.Fatal(err)
	}
	write("readme-link", "not a link")
	if err := os.Remove(filepath.Join(dir, "README.md")); err != nil { // file replaced by a directory
		t.Fatal(err)
	}
	write("README.md/inner", "x")
	// A staged change and a local commit on the branch.
	write("staged.txt", "x")
	runGit(t, dir, "add", "staged.txt")
	write("committed.txt", "x")
	runGit(t, dir, "add", "committed.txt")
	runGit(t, dir, "commit", "-q", "-m", "local commit")

	tree := syncOK(t, opts)
	assertCheckout(t, tree, dir, u.dir, want)
	assertNotRecloned(t, gd, dir)
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
	gd := gitDir(t, dir)

	// Rewrite history: drop the last commit and commit something else.
	runGit(t, u.dir, "reset", "-q", "--hard", base)
	u.write("charts/d/Chart.yaml", "name: d\nversion: 0.0.1\n", 0o644)
	diverged := u.commit("diverged")
	tree := syncOK(t, opts)
	assertCheckout(t, tree, dir, u.dir, diverged)

	// Rewind to an ancestor (a force-push backwards).
	runGit(t, u.dir, "reset", "-q", "--hard", base)
	tree = syncOK(t, opts)
	assertCheckout(t, tree, dir, u.dir, base)
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
		{name: "dir without .git", damage: func(t *testing.T, dir string) {
			mustRemoveAll(t, filepath.Join(dir, ".git"))
		}},
		{name: ".git is a file", damage: func(t *testing.T, dir string) {
			mustRemoveAll(t, filepath.Join(dir, ".git"))
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
			runGit(t, filepath.Dir(dir), "init", "-q", "-b", "master", dir)
			runGit(t, dir, "remote", "add", "origin", "/nowhere")
		}},
		{name: "HEAD garbage", damage: func(t *testing.T, dir string) {
			mustWrite(t, filepath.Join(dir, ".git/HEAD"), "garbage\n")
		}},
		{name: "objects gone", damage: func(t *testing.T, dir string) {
			mustRemoveAll(t, filepath.Join(dir, ".git/objects"))
			if err := os.Mkdir(filepath.Join(dir, ".git/objects"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "config garbage", damage: func(t *testing.T, dir string) {
			mustWrite(t, filepath.Join(dir, ".git/config"), "[[[ not a config\n")
		}},
		{name: "index garbage", damage: func(t *testing.T, dir string) {
			mustWrite(t, filepath.Join(dir, ".git/index"), "DIRC garbage")
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
			assertCheckout(t, tree, dir, wantRepo, want)
			if tt.other {
				// Re-cloned, not fetched into: the old history is gone.
				if err := exec.Command(gitBin(t), "-C", dir, "cat-file", "-e", u.head("master")+"^{commit}").Run(); err == nil {
					t.Errorf("commit of the old URL still in the checkout's object store")
				}
			}
			if tt.br != "" {
				if b := runGit(t, dir, "symbolic-ref", "HEAD"); b != "refs/heads/"+tt.br {
					t.Errorf("HEAD = %s, want refs/heads/%s", b, tt.br)
				}
			}
			// And the checkout is healthy: the next Sync is a plain fetch.
			gd := gitDir(t, dir)
			tree = syncOK(t, opts)
			assertCheckout(t, tree, dir, wantRepo, want)
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
			gd := gitDir(t, dir)
			u.write("new.txt", "x", 0o644)
			u.commit("new")

			restore := tt.damage(t, u)
			_, err := Sync(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Sync error = %v, want one containing %q", err, tt.wantErr)
			}
			restore()
			assertCheckout(t, nil, dir, u.dir, old.Commit)

			tree := syncOK(t, opts)
			assertCheckout(t, tree, dir, u.dir, u.head("master"))
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

// A local repository that opens fine but cannot be fetched into (here: an
// unreadable packed-refs file) while the remote answers is re-cloned.
func TestSyncRecoversFromBrokenFetch(t *testing.T) {
	t.Parallel()
	u := baseUpstream(t)
	dir := filepath.Join(t.TempDir(), "co")
	opts := Options{URL: u.dir, Branch: "master", Dir: dir}
	syncOK(t, opts)
	u.write("new.txt", "x", 0o644)
	want := u.commit("new")

	repo, err := openCheckout(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer closeRepo(repo)
	gd := gitDir(t, dir)
	mustWrite(t, filepath.Join(dir, ".git/packed-refs"), "this is not a packed-refs file\n")
	if _, err := fetch(context.Background(), repo, "master", nil); err == nil {
		t.Fatal("fetch with broken packed-refs succeeded; the test no longer exercises the re-clone path")
	}
	tree := syncOK(t, opts)
	assertCheckout(t, tree, dir, u.dir, want)
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
		assertCheckout(t, nil, dir, u.dir, old.Commit)

		// Past Sync's own early check: the transfer itself honours ctx.
		repo, err := openCheckout(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer closeRepo(repo)
		_, err = fetch(ctx, repo, "master", nil)
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "fetch origin master: ") {
			t.Fatalf("fetch error = %v, want context.Canceled from fetch origin master", err)
		}
		assertCheckout(t, nil, dir, u.dir, old.Commit)
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
		{name: "no dir", opts: Options{URL: "u", Branch: "master"}, wantErr: "empty checkout dir"},
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
