package packager

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"testing"
)

// strictFS is an fs.FS over a directory that refuses to follow symlinks,
// as the tree contract allows (a view of git objects may fail to Open a
// symlink): every Open, Stat, ReadFile and ReadDir of a path with a symlink
// anywhere in it fails, and so does every path through .git. ReadLink and
// Lstat work on a symlink as the last component only. Reads are counted.
type strictFS struct {
	base  fs.FS
	reads int
}

var errStrict = errors.New("strictFS: path passes through a symlink")

func (s *strictFS) check(name string, lastMayLink bool) error {
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return nil
	}
	parts := strings.Split(name, "/")
	for i := range parts {
		if isGitName(parts[i]) {
			return &fs.PathError{Op: "open", Path: name, Err: errors.New("strictFS: .git read")}
		}
		fi, err := fs.Lstat(s.base, path.Join(parts[:i+1]...))
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 && (i < len(parts)-1 || !lastMayLink) {
			return &fs.PathError{Op: "open", Path: name, Err: errStrict}
		}
	}
	return nil
}

func (s *strictFS) Open(name string) (fs.File, error) {
	if err := s.check(name, false); err != nil {
		return nil, err
	}
	s.reads++
	return s.base.Open(name)
}

func (s *strictFS) ReadFile(name string) ([]byte, error) {
	if err := s.check(name, false); err != nil {
		return nil, err
	}
	s.reads++
	return fs.ReadFile(s.base, name)
}

func (s *strictFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := s.check(name, false); err != nil {
		return nil, err
	}
	return fs.ReadDir(s.base, name)
}

func (s *strictFS) ReadLink(name string) (string, error) {
	if err := s.check(name, true); err != nil {
		return "", err
	}
	return fs.ReadLink(s.base, name)
}

func (s *strictFS) Lstat(name string) (fs.FileInfo, error) {
	if err := s.check(name, true); err != nil {
		return nil, err
	}
	return fs.Lstat(s.base, name)
}

// TestStrictFS: through a tree that never follows a symlink, Discover and
// Build give the golden digests: the packager resolves every link itself.
func TestStrictFS(t *testing.T) {
	root := t.TempDir()
	goldenTree(t, root)
	writeTree(t, root, map[string]string{".git/config": "secret"})
	fsys := &strictFS{base: os.DirFS(root)}
	charts, errs := Discover(context.Background(), fsys, []string{"charts/*"})
	if len(errs) > 0 || len(charts) != len(goldenDigests) {
		t.Fatalf("Discover = %v, %v", charts, errs)
	}
	for _, c := range charts {
		pkg, err := Build(context.Background(), fsys, c, Options{})
		if err != nil {
			t.Fatalf("Build %s: %v", c.Dir, err)
		}
		if pkg.Digest != goldenDigests[c.Dir] {
			t.Errorf("%s: digest %s, want %s", c.Dir, pkg.Digest, goldenDigests[c.Dir])
		}
	}
	if fsys.reads == 0 {
		t.Error("strictFS saw no reads")
	}
}
