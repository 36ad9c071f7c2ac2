// Package storetest is the conformance suite every store.Store backend
// passes. A backend's test calls Run with a constructor that returns a fresh,
// empty store (a new bucket, container or directory) for each subtest; the
// suite is run against real servers, never against fakes.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chartsync/chartsync/internal/publisher/store"
)

// Run runs the conformance subtests. newStore must return a store that holds
// no objects and is not shared with any other subtest; it may register its
// own cleanup with t.Cleanup.
//
// Behaviour that depends on atomic compare-and-swap (exactly one winner among
// racing writers) is asserted only when Atomic reports true; for other
// backends the suite asserts the weaker guarantees the store contract keeps:
// every racing writer gets nil or the documented error, at least one wins,
// and the stored bytes are those of a writer that was told it won.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"String", testString},
		{"CreateThenGet", testCreateThenGet},
		{"CreateTwice", testCreateTwice},
		{"GetMissing", testGetMissing},
		{"ReplaceEmptyVersion", testReplaceEmptyVersion},
		{"ReplaceCurrentVersion", testReplaceCurrentVersion},
		{"ReplaceStaleVersion", testReplaceStaleVersion},
		{"ReplaceMissing", testReplaceMissing},
		{"ConcurrentReplace", testConcurrentReplace},
		{"ConcurrentCreate", testConcurrentCreate},
		{"List", testList},
		{"NestedKeys", testNestedKeys},
		{"CancelledContext", testCancelledContext},
		{"LargeObject", testLargeObject},
		{"Open", testOpen},
		{"OpenMissing", testOpenMissing},
		{"OpenLarge", testOpenLarge},
		{"ReadLimited", testReadLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

func testString(t *testing.T, s store.Store) {
	if s.String() == "" {
		t.Error("String() is empty")
	}
}

func testCreateThenGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	data := []byte("apiVersion: v1\nname: a\n")
	if err := s.Create(ctx, "charts/a-0.1.0.tgz", data); err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, version := mustGet(t, s, "charts/a-0.1.0.tgz")
	if !bytes.Equal(got, data) {
		t.Errorf("Get = %q, want %q", got, data)
	}
	if version == "" {
		t.Error("Get returned an empty version")
	}
}

func testCreateTwice(t *testing.T, s store.Store) {
	ctx := t.Context()
	first, second := []byte("first"), []byte("second, longer")
	if err := s.Create(ctx, "a.tgz", first); err != nil {
		t.Fatalf("first Create: %v", err)
	}
	if err := s.Create(ctx, "a.tgz", second); !errors.Is(err, store.ErrExist) {
		t.Fatalf("second Create: err = %v, want ErrExist", err)
	}
	// Identical bytes: ErrExist, or nil after an unknown outcome resolved
	// by reading back (see Store.Create); never another error.
	if err := s.Create(ctx, "a.tgz", first); err != nil && !errors.Is(err, store.ErrExist) {
		t.Fatalf("Create of identical bytes: err = %v, want ErrExist (or nil)", err)
	}
	if got, _ := mustGet(t, s, "a.tgz"); !bytes.Equal(got, first) {
		t.Errorf("after second Create, Get = %q, want first bytes %q", got, first)
	}
}

func testGetMissing(t *testing.T, s store.Store) {
	for _, key := range []string{"missing.tgz", "dir/missing.tgz"} {
		data, version, err := s.Get(t.Context(), key)
		if !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Get(%q): err = %v, want ErrNotExist", key, err)
		}
		if data != nil || version != "" {
			t.Errorf("Get(%q) on error returned data %q, version %q", key, data, version)
		}
	}
}

func testReplaceEmptyVersion(t *testing.T, s store.Store) {
	ctx := t.Context()
	v1, err := s.Replace(ctx, "index.yaml", []byte("one"), "")
	if err != nil {
		t.Fatalf("Replace of a missing key with version \"\": %v", err)
	}
	if v1 == "" {
		t.Fatal("Replace returned an empty version")
	}
	got, version := mustGet(t, s, "index.yaml")
	if string(got) != "one" || version != v1 {
		t.Errorf("Get = %q, %q; want %q, %q", got, version, "one", v1)
	}
	if _, err := s.Replace(ctx, "index.yaml", []byte("two"), ""); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Replace of an existing key with version \"\": err = %v, want ErrConflict", err)
	}
	if got, _ := mustGet(t, s, "index.yaml"); string(got) != "one" {
		t.Errorf("after refused Replace, Get = %q, want %q", got, "one")
	}
}

func testReplaceCurrentVersion(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.Create(ctx, "index.yaml", []byte("one")); err != nil {
		t.Fatalf("Create: %v", err)
	}
	_, v1 := mustGet(t, s, "index.yaml")
	v2, err := s.Replace(ctx, "index.yaml", []byte("two"), v1)
	if err != nil {
		t.Fatalf("Replace with the current version: %v", err)
	}
	if v2 == "" || v2 == v1 {
		t.Fatalf("Replace returned version %q, want a new non-empty version (old %q)", v2, v1)
	}
	got, version := mustGet(t, s, "index.yaml")
	if string(got) != "two" || version != v2 {
		t.Errorf("Get = %q, %q; want %q, %q", got, version, "two", v2)
	}
	// A third round trip proves the returned version is usable as a guard.
	v3, err := s.Replace(ctx, "index.yaml", []byte("three"), v2)
	if err != nil {
		t.Fatalf("Replace with the version Replace returned: %v", err)
	}
	if v3 == v2 {
		t.Errorf("third Replace kept version %q", v3)
	}
}

func testReplaceStaleVersion(t *testing.T, s store.Store) {
	// The stale version is known to be stale before the write starts, so
	// even a backend that checks before writing (Atomic false) must refuse.
	ctx := t.Context()
	v1, err := s.Replace(ctx, "index.yaml", []byte("one"), "")
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	v2, err := s.Replace(ctx, "index.yaml", []byte("two"), v1)
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	if _, err := s.Replace(ctx, "index.yaml", []byte("three"), v1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Replace with a stale version: err = %v, want ErrConflict", err)
	}
	got, version := mustGet(t, s, "index.yaml")
	if string(got) != "two" || version != v2 {
		t.Errorf("after refused Replace, Get = %q, %q; want %q, %q", got, version, "two", v2)
	}
}

func testReplaceMissing(t *testing.T, s store.Store) {
	ctx := t.Context()
	// A real version of another object, so the backend cannot reject the
	// version for its form alone.
	v, err := s.Replace(ctx, "other.yaml", []byte("other"), "")
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	if _, err := s.Replace(ctx, "index.yaml", []byte("data"), v); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("Replace of a missing key with a version: err = %v, want ErrNotExist", err)
	}
	if _, _, err := s.Get(ctx, "index.yaml"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("after refused Replace, Get: err = %v, want ErrNotExist", err)
	}
}

const racers = 8

func testConcurrentReplace(t *testing.T, s store.Store) {
	ctx := t.Context()
	v0, err := s.Replace(ctx, "index.yaml", []byte("base"), "")
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	errs := make([]error, racers)
	versions := make([]string, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			versions[i], errs[i] = s.Replace(ctx, "index.yaml", racerData(i), v0)
		})
	}
	wg.Wait()
	winners := checkRace(t, s, "index.yaml", errs, store.ErrConflict)
	if s.Atomic() && len(winners) == 1 {
		if _, version := mustGet(t, s, "index.yaml"); version != versions[winners[0]] {
			t.Errorf("stored version %q, winner was told %q", version, versions[winners[0]])
		}
	}
}

func testConcurrentCreate(t *testing.T, s store.Store) {
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			errs[i] = s.Create(t.Context(), "a-1.0.0.tgz", racerData(i))
		})
	}
	wg.Wait()
	checkRace(t, s, "a-1.0.0.tgz", errs, store.ErrExist)
}

// checkRace checks the outcome of racing writers of key: each error is nil
// or loser; on an atomic store exactly one writer won; on any store at least
// one won and the stored bytes are a winner's. It returns the winners.
func checkRace(t *testing.T, s store.Store, key string, errs []error, loser error) []int {
	t.Helper()
	var winners []int
	for i, err := range errs {
		switch {
		case err == nil:
			winners = append(winners, i)
		case !errors.Is(err, loser):
			t.Errorf("writer %d: err = %v, want nil or %v", i, err, loser)
		}
	}
	if len(winners) == 0 {
		t.Fatalf("no writer won: %v", errs)
	}
	if s.Atomic() && len(winners) != 1 {
		t.Errorf("atomic store: %d writers won (%v), want exactly 1", len(winners), winners)
	}
	if !s.Atomic() {
		t.Logf("non-atomic store: %d of %d racing writers were told they won", len(winners), len(errs))
	}
	got, _ := mustGet(t, s, key)
	if !slices.ContainsFunc(winners, func(i int) bool { return bytes.Equal(got, racerData(i)) }) {
		t.Errorf("stored bytes %q are not those of a winner %v", got, winners)
	}
	return winners
}

func racerData(i int) []byte {
	return fmt.Appendf(nil, "writer %d wrote this", i)
}

func testList(t *testing.T, s store.Store) {
	ctx := t.Context()
	objects := map[string]string{
		"repo/index.yaml":       "index",
		"repo/a-0.1.0.tgz":      "a",
		"repo/b/b-1.0.0.tgz":    "bb",
		"repo/a-0.1.0.tgz.prov": "prov",
		"repo2/c-1.0.0.tgz":     "ccc",
		"rep":                   "rep",
		"other/repo/x":          "x",
	}
	for key, data := range objects {
		if err := s.Create(ctx, key, []byte(data)); err != nil {
			t.Fatalf("Create(%q): %v", key, err)
		}
	}
	want := []string{"repo/a-0.1.0.tgz", "repo/a-0.1.0.tgz.prov", "repo/b/b-1.0.0.tgz", "repo/index.yaml"}
	listed := mustList(t, s, "repo/")
	if keys := objectKeys(listed); !slices.Equal(keys, want) {
		t.Fatalf("List(%q) keys = %q, want %q", "repo/", keys, want)
	}
	for _, o := range listed {
		_, version := mustGet(t, s, o.Key)
		if o.Size != int64(len(objects[o.Key])) || o.Version == "" || o.Version != version {
			t.Errorf("List entry %+v: want size %d and version %q (from Get)", o, len(objects[o.Key]), version)
		}
	}

	all := objectKeys(mustList(t, s, ""))
	if len(all) != len(objects) || !slices.IsSorted(all) {
		t.Errorf("List(\"\") = %q, want all %d keys sorted", all, len(objects))
	}
	if got := mustList(t, s, "nothing/"); len(got) != 0 {
		t.Errorf("List(%q) = %+v, want empty", "nothing/", got)
	}
	if got := objectKeys(mustList(t, s, "repo")); len(got) != 5 {
		t.Errorf("List(%q) = %q, want the 5 keys starting with repo", "repo", got)
	}

	// The listed version follows a Replace.
	old := listed[3]
	newVersion, err := s.Replace(ctx, "repo/index.yaml", []byte("index, longer"), old.Version)
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	after := mustList(t, s, "repo/index.yaml")
	if len(after) != 1 || after[0].Version != newVersion || after[0].Version == old.Version || after[0].Size != 13 {
		t.Errorf("after Replace, List = %+v; want version %q (was %q), size 13", after, newVersion, old.Version)
	}
}

func testNestedKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	key := "a/b/c/d-1.0.0.tgz"
	if err := s.Create(ctx, key, []byte("deep")); err != nil {
		t.Fatalf("Create(%q): %v", key, err)
	}
	if got, _ := mustGet(t, s, key); string(got) != "deep" {
		t.Errorf("Get(%q) = %q", key, got)
	}
	for _, dir := range []string{"a", "a/b", "a/b/c"} {
		if _, _, err := s.Get(ctx, dir); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Get(%q) of a key's parent: err = %v, want ErrNotExist", dir, err)
		}
	}
	if keys := objectKeys(mustList(t, s, "a/b/")); !slices.Equal(keys, []string{key}) {
		t.Errorf("List(%q) = %q, want [%q]", "a/b/", keys, key)
	}
}

func testCancelledContext(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Create(ctx, "a.tgz", []byte("a")); !errors.Is(err, context.Canceled) {
		t.Errorf("Create: err = %v, want context.Canceled", err)
	}
	if _, err := s.Replace(ctx, "index.yaml", []byte("i"), ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Replace: err = %v, want context.Canceled", err)
	}
	if _, _, err := s.Get(ctx, "a.tgz"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get: err = %v, want context.Canceled", err)
	}
	if _, err := s.List(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("List: err = %v, want context.Canceled", err)
	}
	if r, _, err := s.Open(ctx, "a.tgz"); !errors.Is(err, context.Canceled) {
		t.Errorf("Open: err = %v, want context.Canceled", err)
		if err == nil {
			r.Close()
		}
	}
	if got := mustList(t, s, ""); len(got) != 0 {
		t.Errorf("after cancelled writes, List = %+v, want nothing written", got)
	}
}

func testLargeObject(t *testing.T, s store.Store) {
	ctx := t.Context()
	data := make([]byte, 5<<20+123)
	rand.Read(data)
	if err := s.Create(ctx, "big.tgz", data); err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, version := mustGet(t, s, "big.tgz")
	if !bytes.Equal(got, data) {
		t.Fatalf("Get returned %d bytes, not the %d written", len(got), len(data))
	}
	data[0] ^= 0xff
	if _, err := s.Replace(ctx, "big.tgz", data, version); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	if got, _ := mustGet(t, s, "big.tgz"); !bytes.Equal(got, data) {
		t.Fatal("Get after Replace returned other bytes")
	}
	listed := mustList(t, s, "big")
	if len(listed) != 1 || listed[0].Size != int64(len(data)) {
		t.Errorf("List = %+v, want one object of size %d", listed, len(data))
	}
}

func testOpen(t *testing.T, s store.Store) {
	ctx := t.Context()
	data := []byte("apiVersion: v1\nentries: {}\n")
	if err := s.Create(ctx, "repo/index.yaml", data); err != nil {
		t.Fatalf("Create: %v", err)
	}
	_, version := mustGet(t, s, "repo/index.yaml")
	r, obj, err := s.Open(ctx, "repo/index.yaml")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("Open read %q, want %q", got, data)
	}
	if obj.Key != "repo/index.yaml" || obj.Size != int64(len(data)) || obj.Version != version {
		t.Errorf("Open object = %+v, want key repo/index.yaml, size %d, version %q (from Get)", obj, len(data), version)
	}
	// An object opened but not read is closed cleanly.
	r, _, err = s.Open(ctx, "repo/index.yaml")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("Close of an unread object: %v", err)
	}
}

func testOpenMissing(t *testing.T, s store.Store) {
	if err := s.Create(t.Context(), "dir/a.tgz", []byte("a")); err != nil {
		t.Fatalf("Create: %v", err)
	}
	for _, key := range []string{"missing.tgz", "dir/missing.tgz", "dir"} {
		r, _, err := s.Open(t.Context(), key)
		if !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Open(%q): err = %v, want ErrNotExist", key, err)
		}
		if r != nil {
			t.Errorf("Open(%q) on error returned a reader", key)
			r.Close()
		}
	}
}

// testOpenLarge streams an object larger than any buffer in the way, in
// small reads, and checks every byte.
func testOpenLarge(t *testing.T, s store.Store) {
	ctx := t.Context()
	data := make([]byte, 9<<20+7)
	rand.Read(data)
	if err := s.Create(ctx, "big.tgz", data); err != nil {
		t.Fatalf("Create: %v", err)
	}
	r, obj, err := s.Open(ctx, "big.tgz")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	if obj.Size != int64(len(data)) {
		t.Errorf("Open size = %d, want %d", obj.Size, len(data))
	}
	h := sha256.New()
	buf := make([]byte, 4093)
	n, err := io.CopyBuffer(h, struct{ io.Reader }{r}, buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := sha256.Sum256(data)
	if n != int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Errorf("streamed %d bytes with another digest; want the %d bytes written", n, len(data))
	}
}

func testReadLimited(t *testing.T, s store.Store) {
	ctx := t.Context()
	data := bytes.Repeat([]byte("x"), 1000)
	if err := s.Create(ctx, "index.yaml", data); err != nil {
		t.Fatalf("Create: %v", err)
	}
	_, version := mustGet(t, s, "index.yaml")
	for _, limit := range []int64{1000, 0, 1 << 20} {
		got, v, err := store.ReadLimited(ctx, s, "index.yaml", limit)
		if err != nil || !bytes.Equal(got, data) || v != version {
			t.Errorf("ReadLimited(limit %d) = %d bytes, %q, %v; want the 1000 bytes, %q", limit, len(got), v, err, version)
		}
	}
	_, _, err := store.ReadLimited(ctx, s, "index.yaml", 999)
	if !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("ReadLimited(limit 999): err = %v, want ErrTooLarge", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "index.yaml") || !strings.Contains(msg, "999 B") || !strings.Contains(msg, "1000 B") {
		t.Errorf("error %q should name the object, its size and the limit", msg)
	}
	if _, _, err := store.ReadLimited(ctx, s, "missing.yaml", 10); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("ReadLimited of a missing key: err = %v, want ErrNotExist", err)
	}
}

func mustGet(t *testing.T, s store.Store, key string) ([]byte, string) {
	t.Helper()
	data, version, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return data, version
}

func mustList(t *testing.T, s store.Store, prefix string) []store.Object {
	t.Helper()
	objects, err := s.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return objects
}

func objectKeys(objects []store.Object) []string {
	keys := make([]string, len(objects))
	for i, o := range objects {
		keys[i] = o.Key
	}
	return keys
}
