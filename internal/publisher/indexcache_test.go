package publisher

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"
)

// Issue 12: an index loaded from the cache writes back exactly what the
// index parsed from the store writes, for every kind of source the
// preservation tests use.
func TestIndexCacheIsLossless(t *testing.T) {
	helmNew := NewIndex()
	addEntry(t, helmNew, "a", "1.0.0")
	addEntry(t, helmNew, "true", "1.0.0")
	helmText, err := helmNew.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "cache", "r.gob")
	for name, src := range map[string][]byte{
		"foreign-yaml": []byte(foreignYAML),
		"foreign-json": []byte(foreignJSON),
		"helm":         helmText,
		"big":          bigIndex(t, 20, 5),
	} {
		t.Run(name, func(t *testing.T) {
			parsed, err := ParseIndex(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := saveIndexCache(file, "here", "v1", parsed); err != nil {
				t.Fatal(err)
			}
			if loadIndexCache(file, "here", "v2") != nil || loadIndexCache(file, "there", "v1") != nil {
				t.Fatal("cache used for another version or another repository")
			}
			cached := loadIndexCache(file, "here", "v1")
			if cached == nil {
				t.Fatal("cache not loaded")
			}
			if Entries(cached) != Entries(parsed) {
				t.Fatalf("cache holds %d entries, the source %d", Entries(cached), Entries(parsed))
			}
			for _, idx := range []*Index{parsed, cached} {
				addEntry(t, idx, "a", "9.0.0")
				addEntry(t, idx, "zz-new", "0.1.0")
				for _, cv := range append(idx.Entries["a"], idx.Entries["zz-new"]...) {
					cv.Created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
				}
				idx.Generated = time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
			}
			want, err := parsed.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := cached.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("written from the cache:\n%s\n---- written from the parse:\n%s", got, want)
			}
		})
	}
}

// Issue 12: with an index cache, an unchanged index is neither read nor
// parsed again, also by a new Publisher (a new process); a changed one is
// read again.
func TestIndexCacheSkipsUnchangedIndex(t *testing.T) {
	ctx := t.Context()
	ls, _ := newLocal(t)
	s := &countingStore{Store: ls, reads: map[string]int{}}
	if _, err := s.Replace(ctx, "stable/index.yaml", []byte(foreignYAML), ""); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Prefix: "stable", IndexCache: filepath.Join(t.TempDir(), "index.gob")}
	var vers []string
	for range 3 {
		idx, ver, err := New(s, cfg, quiet()).Index(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if Lookup(idx, "a", "1.0.0") == nil || Lookup(idx, "on", "0.1.0") == nil {
			t.Fatalf("index lacks entries: %v", idx.Entries)
		}
		vers = append(vers, ver)
	}
	if n := s.reads["stable/index.yaml"]; n != 1 {
		t.Errorf("index read %d times in three unchanged cycles, want 1", n)
	}
	if vers[0] == "" || vers[1] != vers[0] || vers[2] != vers[0] {
		t.Errorf("versions %q: want the store's version every time", vers)
	}

	// Another writer changes the index: it is read again.
	next, err := ParseIndex([]byte(foreignYAML))
	if err != nil {
		t.Fatal(err)
	}
	addEntry(t, next, "b", "2.0.0")
	b, err := next.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Replace(ctx, "stable/index.yaml", b, vers[0]); err != nil {
		t.Fatal(err)
	}
	idx, _, err := New(s, cfg, quiet()).Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if Lookup(idx, "b", "2.0.0") == nil {
		t.Error("a changed index was served from the cache")
	}
	if n := s.reads["stable/index.yaml"]; n != 2 {
		t.Errorf("index read %d times, want 2", n)
	}
}
