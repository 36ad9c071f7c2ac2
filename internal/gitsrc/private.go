package gitsrc

import (
	"os"
	"path"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
)

// privateFS is the filesystem the repository in the state dir is written
// through: billy's BoundOS (every path stays inside the root), with every
// directory it creates made 0700 and every file 0600 or less, whatever mode
// go-git asks for (it asks 0755 for directories, 0666 for files and 0444 for
// objects). The state dir holds nothing anyone else needs to read.
type privateFS struct {
	billy.Filesystem
}

const (
	privateDirMode  = 0o700
	privateFileMode = 0o600
)

func newPrivateFS(root string) billy.Filesystem {
	return &privateFS{Filesystem: osfs.New(root, osfs.WithBoundOS())}
}

// mkParent creates the parent directories of name with privateDirMode, so
// that the BoundOS call that follows finds them and creates none with its
// own default mode.
func (f *privateFS) mkParent(name string) error {
	dir := path.Dir(path.Clean("/" + f.Filesystem.Join(name)))
	if dir == "/" {
		return nil
	}
	return f.Filesystem.MkdirAll(dir[1:], privateDirMode)
}

func (f *privateFS) Create(name string) (billy.File, error) {
	return f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, privateFileMode)
}

func (f *privateFS) OpenFile(name string, flag int, perm os.FileMode) (billy.File, error) {
	if flag&os.O_CREATE != 0 {
		if err := f.mkParent(name); err != nil {
			return nil, err
		}
	}
	return f.Filesystem.OpenFile(name, flag, perm&privateFileMode)
}

func (f *privateFS) MkdirAll(name string, _ os.FileMode) error {
	return f.Filesystem.MkdirAll(name, privateDirMode)
}

func (f *privateFS) TempFile(dir, prefix string) (billy.File, error) {
	if dir != "" {
		if err := f.Filesystem.MkdirAll(dir, privateDirMode); err != nil {
			return nil, err
		}
	}
	return f.Filesystem.TempFile(dir, prefix) // os.CreateTemp: 0600
}

func (f *privateFS) Rename(from, to string) error {
	if err := f.mkParent(to); err != nil {
		return err
	}
	return f.Filesystem.Rename(from, to)
}

// Chmod keeps the owner's bits of mode only: go-git makes objects
// read-only (0444), which becomes 0400 here.
func (f *privateFS) Chmod(name string, mode os.FileMode) error {
	if c, ok := f.Filesystem.(billy.Chmod); ok {
		return c.Chmod(name, mode&privateDirMode)
	}
	return nil
}
