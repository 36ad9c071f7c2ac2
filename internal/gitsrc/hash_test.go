package gitsrc

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// Hash gives git's own object ids (git rev-parse <commit>:<path>), follows
// symlinks to the id of their target, and fails like Stat for a missing
// name or an escaping link.
func TestTreeFSHash(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	u.write("charts/a/Chart.yaml", "name: a\nversion: 1.0.0\n", 0o644)
	u.write("charts/a/templates/cm.yaml", "kind: ConfigMap\n", 0o644)
	u.symlink("../a/templates", "charts/b/templates")
	u.symlink("../../outside", "charts/b/escape")
	commit := u.commit("hash")
	tree := syncOK(t, Options{URL: u.dir, Branch: "master", Dir: filepath.Join(t.TempDir(), "repo")})
	h, ok := tree.FS.(interface{ Hash(string) (string, error) })
	if !ok {
		t.Fatal("Tree.FS has no Hash method")
	}
	for name, target := range map[string]string{
		".":                   "",
		"charts/a":            "charts/a",
		"charts/a/Chart.yaml": "charts/a/Chart.yaml",
		"charts/b/templates":  "charts/a/templates",
	} {
		want := strings.TrimSpace(runGit(t, u.dir, "rev-parse", commit+":"+target))
		got, err := h.Hash(name)
		if err != nil || got != want {
			t.Errorf("Hash(%q) = %q, %v; want %q (git's id of %s)", name, got, err, want, target)
		}
	}
	if _, err := h.Hash("charts/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Hash(missing) error = %v, want fs.ErrNotExist", err)
	}
	if _, err := h.Hash("charts/b/escape"); err == nil {
		t.Error("Hash of an escaping symlink succeeded")
	}
}
