package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	live, err := s.writeTemp([]byte("in flight"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.discard()
	if err := os.Chtimes(live.name, old, old); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(root, TempDir, "just-created")
	if err := os.WriteFile(fresh, nil, 0o644); err != nil {
		t.Fatal(err)
	}

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
	for _, p := range []string{live.name, fresh} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed, but a live writer may hold it: %v", p, err)
		}
	}
	if got, _, err := s.Get(ctx, "stable/a-1.0.0.tgz"); err != nil || string(got) != "a" {
		t.Errorf("object after cleanup: %q, %v", got, err)
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
