package gitsrc

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

func TestRepoHistory(t *testing.T) {
	t.Parallel()
	u := baseUpstream(t)
	c1 := u.head("master")
	u.write("charts/a/Chart.yaml", "name: a\nversion: 1.1.0\n", 0o644)
	c2 := u.commit("c2")
	runGit(t, u.dir, "checkout", "-q", "-b", "side")
	u.write("side.txt", "side\n", 0o644)
	u.commit("s1")
	s1 := u.head("side")
	runGit(t, u.dir, "checkout", "-q", "master")
	runGit(t, u.dir, "merge", "-q", "--no-ff", "-m", "merge side", "side")
	m := u.head("master")
	u.write("charts/a/Chart.yaml", "name: a\nversion: 1.2.0\n", 0o644)
	c3 := u.commit("c3\n\nbody")

	dir := filepath.Join(t.TempDir(), "repo")
	syncOK(t, Options{URL: u.dir, Branch: "master", Dir: dir})
	repo, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	hashes := func(cs []Commit) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Hash)
		}
		return out
	}
	ctx := context.Background()
	all, err := repo.FirstParents(ctx, "", "master")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{c3, m, c2, c1}; !slices.Equal(hashes(all), want) {
		t.Errorf("FirstParents(\"\", master) = %v, want %v", hashes(all), want)
	}
	if all[0].Subject != "c3" {
		t.Errorf("subject = %q, want c3", all[0].Subject)
	}
	some, err := repo.FirstParents(ctx, c1, c3)
	if err != nil || !slices.Equal(hashes(some), []string{c3, m, c2}) {
		t.Errorf("FirstParents(c1, c3) = %v, %v", hashes(some), err)
	}
	if none, err := repo.FirstParents(ctx, c3, "HEAD"); err != nil || len(none) != 0 {
		t.Errorf("FirstParents(c3, HEAD) = %v, %v; want none", hashes(none), err)
	}
	if _, err := repo.FirstParents(ctx, s1, c3); !errors.Is(err, ErrNotFirstParent) {
		t.Errorf("FirstParents(side commit, c3) error = %v, want ErrNotFirstParent", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := repo.FirstParents(cctx, "", c3); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled FirstParents error = %v", err)
	}

	for _, c := range []string{c1, c2, s1, m, c3} {
		tree, err := repo.Tree(c)
		if err != nil {
			t.Fatal(err)
		}
		if tree.Commit != c {
			t.Errorf("Tree(%s).Commit = %s", c, tree.Commit)
		}
		assertFS(t, tree.FS, u.dir, c)
	}
	if _, err := repo.Tree("no-such-branch"); err == nil {
		t.Error("Tree of a missing branch succeeded")
	}
}
