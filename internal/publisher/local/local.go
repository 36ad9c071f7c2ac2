// Package local is a store.Store on a local directory. Objects are plain
// files, so any web server (or `chartsync serve`) can serve the directory
// as a chart repository.
//
// Writes go through temporary files in one directory at the root,
// .chartsync-tmp, which is never an object: List skips it and no key can
// name it. A temporary file is linked or renamed into place only once it is
// complete and synced, so no reader of the served directories ever sees a
// partial object or a temporary name. Leftovers of a killed run are removed
// when the store is opened. The whole directory tree must be one file
// system (link(2) and rename(2) do not cross file systems).
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

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

// TempDir is the directory under the root that holds temporary files.
const TempDir = ".chartsync-tmp"

// leftoverAge is how old a temporary file of an earlier release (next to
// the objects, never locked) must be before it is taken for a leftover.
// Files in TempDir need no age: a live writer holds its lock.
const leftoverAge = time.Minute

// New returns a Store rooted at cfg.Path, creating the directory, and
// removes the temporary files of earlier runs that were killed (best
// effort: a read-only store, as `chartsync serve` may have, is fine).
func New(_ context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("local store: path must be set")
	}
	if err := os.MkdirAll(cfg.Path, 0o755); err != nil {
		return nil, fmt.Errorf("local store: %w", err)
	}
	s := &Store{root: cfg.Path}
	s.removeLeftovers(time.Now().Add(-leftoverAge))
	return s, nil
}

func (s *Store) String() string { return "file://" + s.root }

// Atomic is true: link(2) refuses an existing name, and Replace holds a
// lock, between all processes on the host (not across NFS clients).
func (s *Store) Atomic() bool { return true }

// file returns the path of key, or an error wrapping store.ErrInvalidKey
// for a key that cannot name an object.
func (s *Store) file(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || !filepath.IsLocal(key) || strings.ContainsRune(key, 0) ||
		key == TempDir || strings.HasPrefix(key, TempDir+"/") {
		return "", fmt.Errorf("key %q: %w", key, store.ErrInvalidKey)
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// readErr maps the error of opening key for reading to the store's
// sentinels: a name too long to exist does not exist.
func readErr(op, key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENAMETOOLONG) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%s %s: %w", op, key, store.ErrNotExist)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

// writeErr marks the errors that concern only this key's name.
func writeErr(op, key string, err error) error {
	if errors.Is(err, syscall.ENAMETOOLONG) {
		return fmt.Errorf("%s %s: %w: %w", op, key, store.ErrInvalidKey, err)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, string, error) {
	f, obj, err := s.open(ctx, "get", key)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	b := make([]byte, obj.Size)
	if _, err := io.ReadFull(f, b); err != nil {
		// The file is never written in place: a short read is a fault.
		return nil, "", fmt.Errorf("get %s: %w", key, err)
	}
	return b, obj.Version, nil
}

// Open implements store.Store. The reader is the open file (an
// io.ReadSeeker): it keeps reading the same bytes even if the key is
// replaced meanwhile.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, store.Object, error) {
	f, obj, err := s.open(ctx, "open", key)
	if err != nil {
		return nil, store.Object{}, err
	}
	return f, obj, nil
}

func (s *Store) open(ctx context.Context, op, key string) (*os.File, store.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, store.Object{}, err
	}
	name, err := s.file(key)
	if err != nil {
		return nil, store.Object{}, fmt.Errorf("%s %s: %w", op, key, store.ErrNotExist)
	}
	f, fi, err := open(name)
	if err != nil {
		return nil, store.Object{}, readErr(op, key, err)
	}
	return f, store.Object{Key: key, Size: fi.Size(), Version: version(fi)}, nil
}

// open opens a regular file for reading.
func open(name string) (*os.File, fs.FileInfo, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fs.ErrNotExist // a directory of keys is not an object
	}
	return f, fi, nil
}

// version identifies one file's content: every write is a new inode (the
// bytes are renamed or linked into place), so inode, size and mtime change
// whenever the bytes do.
func version(fi fs.FileInfo) string {
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return string(appendVersion(nil, ino, fi.Size(), fi.ModTime().UnixNano()))
}

// appendVersion appends the version of a file of inode ino, size and
// modification time mtime (ns since the epoch).
func appendVersion(b []byte, ino uint64, size, mtime int64) []byte {
	b = strconv.AppendUint(b, ino, 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, size, 16)
	b = append(b, '-')
	return strconv.AppendInt(b, mtime, 16)
}

// Create implements store.Store: the bytes are written to a temporary file,
// synced, then linked to the final name, which fails if the name exists.
// A name the file system cannot hold (ENAMETOOLONG) is store.ErrInvalidKey.
func (s *Store) Create(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name, err := s.file(key)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return writeErr("create", key, err)
	}
	if err := s.place(data, name, os.Link); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", key, store.ErrExist)
		}
		return writeErr("create", key, err)
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
		return "", fmt.Errorf("replace: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return "", writeErr("replace", key, err)
	}
	unlock, err := lockDir(filepath.Dir(name))
	if err != nil {
		return "", fmt.Errorf("replace %s: %w", key, err)
	}
	defer unlock()

	var cur string
	f, fi, err := open(name)
	if err == nil {
		cur = version(fi)
		f.Close()
	}
	switch {
	case errors.Is(err, fs.ErrNotExist) && ver != "":
		return "", fmt.Errorf("replace %s: %w", key, store.ErrNotExist)
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", writeErr("replace", key, err)
	case ver == "" || cur != ver:
		return "", fmt.Errorf("replace %s: %w", key, store.ErrConflict)
	}
	if err := s.place(data, name, os.Rename); err != nil {
		return "", writeErr("replace", key, err)
	}
	fi, err = os.Stat(name)
	if err != nil {
		return "", fmt.Errorf("replace %s: %w", key, err)
	}
	return version(fi), syncDir(filepath.Dir(name))
}

// List implements store.Store. The temporary directory, and the temporary
// files that earlier releases kept next to the objects, are not objects.
func (s *Store) List(ctx context.Context, prefix string) ([]store.Object, error) {
	var objs []store.Object
	var st unix.Stat_t
	var v []byte
	err := s.walk(ctx, "", func(key string) bool {
		return strings.HasPrefix(key, prefix) || strings.HasPrefix(prefix, key+"/")
	}, func(dir int, key string, d fs.DirEntry) error {
		if isOldScratch(d.Name()) || !strings.HasPrefix(key, prefix) {
			return nil
		}
		err := unix.Fstatat(dir, d.Name(), &st, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed since its directory was read
		}
		if err != nil {
			return &fs.PathError{Op: "stat", Path: filepath.Join(s.root, filepath.FromSlash(key)), Err: err}
		}
		v = appendVersion(v[:0], st.Ino, st.Size, time.Unix(st.Mtim.Unix()).UnixNano())
		objs = append(objs, store.Object{Key: key, Size: st.Size, Version: string(v)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	slices.SortFunc(objs, func(a, b store.Object) int { return strings.Compare(a.Key, b.Key) })
	return objs, nil
}

// walk calls visit for each regular file under directory dir (a key
// prefix, "" for the root; TempDir excepted) with its open directory's
// descriptor and its key, and descends into the directories whose key enter accepts. It
// reads each directory once and builds no path but the keys: a store of
// many files costs little more than reading its directories.
func (s *Store) walk(ctx context.Context, dir string, enter func(key string) bool,
	visit func(dir int, key string, d fs.DirEntry) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(s.root, filepath.FromSlash(dir)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return err
	}
	fd := int(f.Fd())
	for i, d := range ents {
		if i%1024 == 1023 && ctx.Err() != nil {
			return ctx.Err()
		}
		key := d.Name()
		if dir != "" {
			key = dir + "/" + key
		}
		switch {
		case d.IsDir() && key != TempDir && enter(key):
			err = s.walk(ctx, key, enter, visit)
		case d.Type().IsRegular():
			err = visit(fd, key, d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// oldScratchPrefix starts the temporary files written next to the objects:
// by releases before TempDir, and where an object's directory is on
// another file system than the root.
const oldScratchPrefix = ".chartsync-tmp-"

func isOldScratch(base string) bool {
	return strings.HasPrefix(base, oldScratchPrefix)
}

// temp is a complete, synced temporary file, locked (flock) for as long as
// its writer may still link or rename it.
type temp struct {
	f    *os.File
	name string
}

// discard removes the temporary name (the object keeps its own link) and
// releases the lock.
func (t *temp) discard() {
	os.Remove(t.name)
	t.f.Close()
}

// place writes data to a temporary file and puts it at name with put
// (link or rename). Where name's directory is another file system than
// the root's (EXDEV: a mount point, or a symlinked prefix), the temporary
// file goes next to the object instead, under a hidden name that List
// skips and leftover removal knows.
func (s *Store) place(data []byte, name string, put func(oldname, newname string) error) error {
	tmp, err := writeTemp(filepath.Join(s.root, TempDir), "*", data)
	if err != nil {
		return err
	}
	defer tmp.discard()
	err = put(tmp.name, name)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	near, err := writeTemp(filepath.Dir(name), oldScratchPrefix+"*", data)
	if err != nil {
		return err
	}
	defer near.discard()
	return put(near.name, name)
}

// writeTemp writes data to a new file in dir, synced and locked. A file
// that leftover removal took between its creation and its lock (it found
// it unlocked) is given up for a new one.
func writeTemp(dir, pattern string, data []byte) (*temp, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for range 3 {
		f, err := os.CreateTemp(dir, pattern)
		if err != nil {
			return nil, err
		}
		t := &temp{f: f, name: f.Name()}
		if !t.lock() {
			t.f.Close()
			continue
		}
		_, err = f.Write(data)
		if err == nil {
			err = f.Chmod(0o644)
		}
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			t.discard()
			return nil, err
		}
		return t, nil
	}
	return nil, fmt.Errorf("create a temporary file in %s: removed before it could be locked, three times", dir)
}

// lock takes the file's lock and reports whether the file is still the
// one at its name (leftover removal did not take it first).
func (t *temp) lock() bool {
	if syscall.Flock(int(t.f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return false
	}
	held, err := t.f.Stat()
	if err != nil {
		return false
	}
	named, err := os.Stat(t.name)
	return err == nil && os.SameFile(held, named)
}

// removeLeftovers removes what killed runs left behind: files in TempDir
// that no live writer holds locked, and temporary files of earlier
// releases next to the objects last written before cutoff. Errors
// are ignored: leftovers are never objects, only clutter.
func (s *Store) removeLeftovers(cutoff time.Time) {
	dir := filepath.Join(s.root, TempDir)
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if e.Type().IsRegular() {
				removeUnlocked(filepath.Join(dir, e.Name()))
			}
		}
	}
	s.walk(context.Background(), "", func(string) bool { return true }, func(_ int, key string, d fs.DirEntry) error {
		if isOldScratch(d.Name()) {
			if info, err := d.Info(); err == nil && info.ModTime().Before(cutoff) {
				os.Remove(filepath.Join(s.root, filepath.FromSlash(key)))
			}
		}
		return nil
	})
}

// removeUnlocked removes name unless a live writer holds its lock.
func removeUnlocked(name string) {
	f, err := os.Open(name)
	if err != nil {
		return
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		os.Remove(name)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
