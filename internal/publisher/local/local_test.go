package local

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/publisher/store"
	"github.com/chartsync/chartsync/internal/publisher/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := New(context.Background(), Config{Path: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestTempFilesOutsideServedTree: writes leave nothing in the served
// directories, and leftovers of a killed run (in TempDir, and next to the
// objects as earlier releases wrote them) are removed at the next New,
// while a live writer's locked file is kept.
func TestTempFilesOutsideServedTree(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	s, err := New(ctx, Config{Path: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "stable/a-1.0.0.tgz", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Replace(ctx, "stable/index.yaml", []byte("i"), ""); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, filepath.Join(root, "stable")); !slices.Equal(names, []string{"a-1.0.0.tgz", "index.yaml"}) {
		t.Errorf("served directory holds %q, want only the two objects", names)
	}
	if names := dirNames(t, filepath.Join(root, TempDir)); len(names) != 0 {
		t.Errorf("%s holds %q after the writes, want nothing", TempDir, names)
	}

	// A killed run's leftovers, an old release's leftover, and a live
	// writer's temporary file (locked).
	old := time.Now().Add(-time.Hour)
	leftovers := []string{
		filepath.Join(root, TempDir, "123456"),
		filepath.Join(root, "stable", ".chartsync-tmp-789"),
	}
	for _, p := range leftovers {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	live, err := writeTemp(filepath.Join(root, TempDir), "*", []byte("in flight"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.discard()
	if err := os.Chtimes(live.name, old, old); err != nil {
		t.Fatal(err)
	}
	// A killed run's file from a moment ago: unlocked, so a leftover too
	// (a live writer locks its file before writing, and starts again with
	// a new one if removal took it first: see TestTempTakenBeforeLock).
	fresh := filepath.Join(root, TempDir, "just-created")
	if err := os.WriteFile(fresh, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	leftovers = append(leftovers, fresh)

	objs, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	if !slices.Equal(keys, []string{"stable/a-1.0.0.tgz", "stable/index.yaml"}) {
		t.Errorf("List = %q, want only the objects (no temporary files)", keys)
	}
	for _, key := range []string{TempDir + "/123456", TempDir} {
		if err := s.Create(ctx, key, []byte("x")); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Create(%q): err = %v, want ErrInvalidKey", key, err)
		}
	}

	if _, err := New(ctx, Config{Path: root}); err != nil {
		t.Fatal(err)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("leftover %s still there after New (stat: %v)", p, err)
		}
	}
	if _, err := os.Stat(live.name); err != nil {
		t.Errorf("%s was removed, but a live writer holds it: %v", live.name, err)
	}
	if got, _, err := s.Get(ctx, "stable/a-1.0.0.tgz"); err != nil || string(got) != "a" {
		t.Errorf("object after cleanup: %q, %v", got, err)
	}
}

// TestTempTakenBeforeLock: a temporary file that leftover removal took
// between its creation and its writer's lock is not used.
func TestTempTakenBeforeLock(t *testing.T) {
	dir := t.TempDir()
	f, err := os.CreateTemp(dir, "*")
	if err != nil {
		t.Fatal(err)
	}
	tmp := &temp{f: f, name: f.Name()}
	defer tmp.discard()
	os.Remove(tmp.name) // what removeUnlocked does, in the gap
	if tmp.lock() {
		t.Error("lock() took a file that was removed from its name")
	}
	again, err := writeTemp(dir, "*", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	defer again.discard()
	if !again.lock() {
		t.Error("a fresh temporary file does not hold its lock and name")
	}
}

// TestNameTooLong: a key whose file name exceeds the file system's limit
// fails alone with ErrInvalidKey; the store still takes other keys, and a
// read of such a key is ErrNotExist.
func TestNameTooLong(t *testing.T) {
	ctx := t.Context()
	s, err := New(ctx, Config{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	long := "stable/" + strings.Repeat("a", 250) + "-1.0.0.tgz"
	err = s.Create(ctx, long, []byte("x"))
	if !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("Create of a 260-byte file name: err = %v, want ErrInvalidKey", err)
	}
	if _, err := s.Replace(ctx, "stable/"+strings.Repeat("i", 256), []byte("x"), ""); !errors.Is(err, store.ErrInvalidKey) {
		t.Errorf("Replace of a 256-byte file name: err = %v, want ErrInvalidKey", err)
	}
	if _, _, err := s.Get(ctx, long); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Get: err = %v, want ErrNotExist", err)
	}
	if err := s.Create(ctx, "stable/b-1.0.0.tgz", []byte("b")); err != nil {
		t.Errorf("Create of another key after the failure: %v", err)
	}
	if _, _, err := s.Get(ctx, "stable/\x00.tgz"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Get of a key with NUL: err = %v, want ErrNotExist", err)
	}
	if err := s.Create(ctx, "stable/\x00.tgz", []byte("b")); !errors.Is(err, store.ErrInvalidKey) {
		t.Errorf("Create of a key with NUL: err = %v, want ErrInvalidKey", err)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestOtherFileSystem: a prefix directory on another file system than the
// root (here a symlink to /dev/shm) still takes Create and Replace, and
// leaves no temporary file behind.
func TestOtherFileSystem(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	other, err := os.MkdirTemp("/dev/shm", "chartsync-local-")
	if err != nil {
		t.Skip("no /dev/shm:", err)
	}
	t.Cleanup(func() { os.RemoveAll(other) })
	var rst, ost syscall.Stat_t
	if syscall.Stat(root, &rst) != nil || syscall.Stat(other, &ost) != nil || rst.Dev == ost.Dev {
		t.Skip("/dev/shm is not another file system here")
	}
	if err := os.Symlink(other, filepath.Join(root, "stable")); err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, Config{Path: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "stable/a-1.0.0.tgz", []byte("a")); err != nil {
		t.Fatalf("Create across file systems: %v", err)
	}
	if err := s.Create(ctx, "stable/a-1.0.0.tgz", []byte("b")); !errors.Is(err, store.ErrExist) {
		t.Errorf("second Create: %v, want ErrExist", err)
	}
	v, err := s.Replace(ctx, "stable/index.yaml", []byte("one"), "")
	if err != nil {
		t.Fatalf("Replace across file systems: %v", err)
	}
	if _, err := s.Replace(ctx, "stable/index.yaml", []byte("two"), v); err != nil {
		t.Fatalf("second Replace: %v", err)
	}
	if names := dirNames(t, other); !slices.Equal(names, []string{"a-1.0.0.tgz", "index.yaml"}) {
		t.Errorf("other file system holds %q, want only the objects", names)
	}
	if got, _, err := s.Get(ctx, "stable/index.yaml"); err != nil || string(got) != "two" {
		t.Errorf("Get = %q, %v", got, err)
	}
}

// TestOpenKeepsItsVersion: an object opened before a Replace reads (and
// seeks within) the bytes it was opened at, as serve's range requests need.
func TestOpenKeepsItsVersion(t *testing.T) {
	ctx := t.Context()
	s, err := New(ctx, Config{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	v1, err := s.Replace(ctx, "index.yaml", []byte("first version"), "")
	if err != nil {
		t.Fatal(err)
	}
	r, obj, err := s.Open(ctx, "index.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := s.Replace(ctx, "index.yaml", []byte("second, longer version"), v1); err != nil {
		t.Fatal(err)
	}
	rs, ok := r.(io.ReadSeeker)
	if !ok {
		t.Fatal("the local store's reader cannot seek")
	}
	if _, err := rs.Seek(6, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rs)
	if err != nil || string(b) != "version" || obj.Version != v1 || obj.Size != 13 {
		t.Errorf("read %q (%v), object %+v; want %q of version %q", b, err, obj, "version", v1)
	}
}
