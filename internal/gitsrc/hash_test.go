package gitsrc

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
)

// TestTreeHash: a directory's id is its git tree id: unchanged when only
// other paths change, changed with its content; a path through a symlink
// gives the target's id; a missing path is fs.ErrNotExist.
func TestTreeHash(t *testing.T) {
	t.Parallel()
	u := baseUpstream(t)
	c1 := u.head("master")
	u.write("README.md", "changed\n", 0o644)
	c2 := u.commit("readme")
	u.write("charts/a/templates/cm.yaml", "kind: Secret\n", 0o644)
	c3 := u.commit("chart a")
	dir := filepath.Join(t.TempDir(), "repo")
	syncOK(t, Options{URL: u.dir, Branch: "master", Dir: dir})
	repo, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	hash := func(rev, name string) string {
		t.Helper()
		tree, err := repo.Tree(rev)
		if err != nil {
			t.Fatal(err)
		}
		h, err := tree.Hash(name)
		if err != nil {
			t.Fatalf("Hash(%s) at %s: %v", name, rev, err)
		}
		return h
	}
	if hash(c1, "charts/a") != hash(c2, "charts/a") {
		t.Error("charts/a: id changed with README only")
	}
	if hash(c1, ".") == hash(c2, ".") {
		t.Error("root: same id after README changed")
	}
	if hash(c2, "charts/a") == hash(c3, "charts/a") {
		t.Error("charts/a: same id after its template changed")
	}
	want := runGit(t, u.dir, "rev-parse", c3+":charts/a/templates")
	if got := hash(c3, "charts/b/templates"); got != want {
		t.Errorf("charts/b/templates (a link to charts/a/templates) = %s, want git's %s", got, want)
	}
	tree, err := repo.Tree(c3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.Hash("charts/none"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Hash of a missing path: %v, want fs.ErrNotExist", err)
	}
}
