// Package local is a store.Store on a local directory. Objects are plain
// files, so any web server (or `chartsync serve`) can serve the directory
// as a chart repository.
package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/chartsync/chartsync/internal/publisher/store"
)

var _ store.Store = (*Store)(nil)

// Config says where the repository lives.
type Config struct {
	Path string // root directory; created if missing
}

// Store keeps objects as files below a directory. Create and Replace are
// atomic between the processes of one host: Create through link(2),
// Replace through flock(2) on the object's directory.
type Store struct {
	root string
	mu   sync.Mutex // serialises Replace within the process
}

// New returns a Store rooted at cfg.Path, creating the directory.
func New(_ context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("local store: path must be set")
	}
	if err := os.MkdirAll(cfg.Path, 0o755); err != nil {
		return nil, fmt.Errorf("local store: %w", err)
	}
	return &Store{root: cfg.Path}, nil
}

func (s *Store) String() string { return "file://" + s.root }

// Atomic is true: link(2) refuses an existing name, and Replace holds a
// lock, between all processes on the host (not across NFS clients).
func (s *Store) Atomic() bool { return true }

func (s *Store) file(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || !filepath.IsLocal(key) {
		return "", fmt.Errorf("invalid key %q", key)
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	name, err := s.file(key)
	if err != nil {
		return nil, "", err
	}
	b, ver, err := read(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("get %s: %w", key, store.ErrNotExist)
	}
	if err != nil {
		return nil, "", fmt.Errorf("get %s: %w", key, err)
	}
	return b, ver, nil
}

// read returns a file's bytes and its version, both from one open file.
func read(name string) ([]byte, string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, "", err
	}
	if !fi.Mode().IsRegular() {
		return nil, "", fs.ErrNotExist // a directory of keys is not an object
	}
	b, err := io.ReadAll(f)
	return b, version(fi), err
}

// version identifies one file's content: every write is a new inode (the
// bytes are renamed or linked into place), so inode, size and mtime change
// whenever the bytes do.
func version(fi fs.FileInfo) string {
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("%x-%x-%x", ino, fi.Size(), fi.ModTime().UnixNano())
}

// Create implements store.Store: the bytes are written to a temporary file,
// synced, then linked to the final name, which fails if the name exists.
func (s *Store) Create(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name, err := s.file(key)
	if err != nil {
		return err
	}
	tmp, err := s.writeTemp(name, data)
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, name); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", key, store.ErrExist)
		}
		return fmt.Errorf("create %s: %w", key, err)
	}
	return syncDir(filepath.Dir(name))
}

// Replace implements store.Store. A lock on the object's directory makes
// the compare and the rename one step for every process on the host.
func (s *Store) Replace(ctx context.Context, key string, data []byte, ver string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	name, err := s.file(key)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return "", fmt.Errorf("replace %s: %w", key, err)
	}
	unlock, err := lockDir(filepath.Dir(name))
	if err != nil {
		return "", fmt.Errorf("replace %s: %w", key, err)
	}
	defer unlock()

	_, cur, err := read(name)
	switch {
	case errors.Is(err, fs.ErrNotExist) && ver != "":
		return "", fmt.Errorf("replace %s: %w", key, store.ErrNotExist)
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", fmt.Errorf("replace %s: %w", key, err)
	case ver == "" || cur != ver:
		return "", fmt.Errorf("replace %s: %w", key, store.ErrConflict)
	}
	tmp, err := s.writeTemp(name, data)
	if err != nil {
		return "", fmt.Errorf("replace %s: %w", key, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("replace %s: %w", key, err)
	}
	fi, err := os.Stat(name)
	if err != nil {
		return "", fmt.Errorf("replace %s: %w", key, err)
	}
	return version(fi), syncDir(filepath.Dir(name))
}

// List implements store.Store. Temporary and lock files are not objects.
func (s *Store) List(ctx context.Context, prefix string) ([]store.Object, error) {
	var objs []store.Object
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() || isScratch(d.Name()) {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		objs = append(objs, store.Object{Key: key, Size: info.Size(), Version: version(info)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	return objs, nil
}

const scratchPrefix = ".chartsync-tmp-"

func isScratch(base string) bool {
	return strings.HasPrefix(base, scratchPrefix)
}

func (s *Store) writeTemp(name string, data []byte) (string, error) {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, scratchPrefix+"*")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, bytes.NewReader(data))
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
