package gitsrc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
)

// worktreeFS is the work tree filesystem go-git writes the checkout through:
// billy's BoundOS, which writes symlink targets verbatim and keeps every write
// inside root, with Remove fixed. BoundOS resolves symlinks in the whole path
// before removing, so removing a symlink removes its target instead (go-git
// removes a tracked symlink that changed or disappeared upstream). Remove here
// resolves only the parent directories and removes the last element itself.
type worktreeFS struct {
	billy.Filesystem
	root string
}

func newWorktreeFS(root string) billy.Filesystem {
	return &worktreeFS{Filesystem: osfs.New(root, osfs.WithBoundOS()), root: root}
}

// Remove removes the file, empty directory or symlink name (never what a
// symlink points to). The parent directory must resolve to a place inside root.
func (f *worktreeFS) Remove(name string) error {
	rel := filepath.Clean(filepath.FromSlash(name))
	if filepath.IsAbs(rel) {
		r, err := filepath.Rel(f.root, rel)
		if err != nil {
			return fmt.Errorf("remove %s: %w", name, err)
		}
		rel = r
	}
	if rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("remove %s: outside the work tree", name)
	}
	root, err := filepath.EvalSymlinks(f.root)
	if err != nil {
		return err
	}
	parent, err := filepath.EvalSymlinks(filepath.Join(f.root, filepath.Dir(rel)))
	if err != nil {
		return err
	}
	if parent != root && !strings.HasPrefix(parent, root+string(filepath.Separator)) {
		return fmt.Errorf("remove %s: parent resolves outside the work tree", name)
	}
	return os.Remove(filepath.Join(parent, filepath.Base(rel)))
}
