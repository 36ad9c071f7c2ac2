package publisher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/repo"
	sigsyaml "sigs.k8s.io/yaml"
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
				for _, e := range append(idx.charts["a"], idx.charts["zz-new"]...) {
					if e.added != nil {
						e.added.Created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
					}
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

			// An index cached with entries added since it was read (as
			// a cycle caches what it wrote), one holding nested untyped
			// values, and a nested serverInfo.
			deep := &chart.Metadata{APIVersion: "v2", Name: "deep", Version: "1.0.0", Dependencies: []*chart.Dependency{{
				Name: "sub", Version: "1.0.0", ImportValues: []any{map[string]any{"child": "a", "parent": []any{"b", 1.5}}}}}}
			for _, idx := range []*Index{parsed, cached} {
				if err := idx.MustAdd(deep, "deep-1.0.0.tgz", "", zeros); err != nil {
					t.Fatal(err)
				}
				idx.charts["deep"][0].added.Created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
				idx.ServerInfo = map[string]any{"contextPath": "/charts", "nested": map[string]any{"list": []any{"x", true}}}
			}
			if want, err = parsed.Marshal(); err != nil {
				t.Fatal(err)
			}
			if err := saveIndexCache(file, "here", "v2", cached); err != nil {
				t.Fatal(err)
			}
			again := loadIndexCache(file, "here", "v2")
			if again == nil {
				t.Fatal("cache with added entries not loaded")
			}
			if !reflect.DeepEqual(again.ServerInfo, parsed.ServerInfo) {
				t.Errorf("serverInfo from the cache %v, want %v", again.ServerInfo, parsed.ServerInfo)
			}
			if got, err = again.Marshal(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("written from the cache with added entries:\n%s\n---- written from the parse:\n%s", got, want)
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
			t.Fatalf("index lacks entries: %v", idx.Charts())
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

// entrySet is each entry of an index as ParseIndex reads it (as helm
// does, except that a string keeps its exact text where helm's YAML reader
// turns an unquoted all-digit digest into "0" or "+Inf"), by "name
// version".
func entrySet(t *testing.T, b []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, cvs := range readEntries(t, b).Entries {
		for _, cv := range cvs {
			j, err := json.Marshal(cv)
			if err != nil {
				t.Fatal(err)
			}
			out[name+" "+cv.Version] = string(j)
		}
	}
	return out
}

// Issue 12: yaml → json → yaml loses nothing: every entry as helm reads
// it, fields helm does not know (at the top and in entries), all-digit
// digests as strings; the JSON is read by a YAML 1.2 parser as
// ChartMuseum-style readers do, and the YAML by helm's strict reader.
func TestIndexFormatSwitchLosesNothing(t *testing.T) {
	for name, src := range map[string]string{"yaml": foreignYAML, "json": foreignJSON} {
		t.Run(name, func(t *testing.T) {
			idx, err := ParseIndex([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			addEntry(t, idx, "a", "2.0.0")
			want := entrySet(t, mustMarshal(t, idx))
			cur := idx
			for _, format := range []string{FormatJSON, FormatYAML, FormatJSON} {
				if err := cur.SetFormat(format); err != nil {
					t.Fatal(err)
				}
				out := mustMarshal(t, cur)
				if json.Valid(out) != (format == FormatJSON) {
					t.Fatalf("written as %s:\n%s", format, out)
				}
				if got := entrySet(t, out); !reflect.DeepEqual(got, want) {
					t.Fatalf("entries changed in %s:\n got %v\nwant %v", format, got, want)
				}
				for _, field := range []string{"x-top", "x-signed-by", "serverInfo", "contextPath"} {
					if !bytes.Contains(out, []byte(field)) {
						t.Errorf("%s lost field %s:\n%s", format, field, out)
					}
				}
				// A YAML 1.2 parser reads either.
				var doc struct {
					APIVersion string                      `yaml:"apiVersion"`
					Entries    map[string][]map[string]any `yaml:"entries"`
				}
				if err := yaml.Unmarshal(out, &doc); err != nil {
					t.Fatalf("YAML 1.2 reader on %s: %v", format, err)
				}
				if d, ok := doc.Entries["a"][len(doc.Entries["a"])-1]["digest"].(string); !ok || d != zeros {
					t.Errorf("YAML 1.2 reader on %s: digest of a 1.0.0 is %#v, want the string %s", format, doc.Entries["a"][len(doc.Entries["a"])-1]["digest"], zeros)
				}
				if format == FormatYAML {
					var strict repo.IndexFile
					if err := sigsyaml.Unmarshal(out, &strict); err != nil || len(strict.Entries["a"]) != 2 {
						t.Fatalf("helm's reader on the YAML: %v, %v", err, strict.Entries)
					}
					if d := strict.Entries["a"][1].Digest; d != zeros {
						t.Errorf("helm's reader on the YAML: digest of a 1.0.0 is %q, want %s", d, zeros)
					}
				}
				if cur, err = ParseIndex(out); err != nil {
					t.Fatalf("reading back %s: %v", format, err)
				}
			}
		})
	}
}

func mustMarshal(t *testing.T, idx *Index) []byte {
	t.Helper()
	b, err := idx.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Issue 12: a repository's index_format decides how index.yaml is written;
// switching it rewrites the stored index in the other format with every
// entry, even in a cycle with nothing new.
func TestPublishWritesConfiguredFormat(t *testing.T) {
	ctx := t.Context()
	s, dir := newLocal(t)
	cache := filepath.Join(t.TempDir(), "index.gob")
	publish := func(format string, pkgs ...Package) []byte {
		t.Helper()
		rep, err := New(s, Config{Format: format, IndexCache: cache}, quiet()).Publish(ctx, pkgs)
		if err != nil || len(rep.Failed) != 0 {
			t.Fatalf("publish: %v %v", err, rep.Failed)
		}
		b, err := os.ReadFile(filepath.Join(dir, "index.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := publish(FormatJSON, pkg(t, "a", "1.0.0", ""))
	if !json.Valid(b) {
		t.Fatalf("index_format json wrote:\n%s", b)
	}
	b = publish(FormatJSON, pkg(t, "b", "1.0.0", ""))
	if !json.Valid(b) || len(entrySet(t, b)) != 2 {
		t.Fatalf("second json write:\n%s", b)
	}
	b = publish(FormatYAML)
	if json.Valid(b) || len(entrySet(t, b)) != 2 {
		t.Fatalf("switch to yaml wrote:\n%s", b)
	}
	b = publish(FormatJSON)
	if !json.Valid(b) || len(entrySet(t, b)) != 2 {
		t.Fatalf("switch back to json wrote:\n%s", b)
	}
}

// Issue 12: the index a cycle writes is cached at its new store version,
// so that the following cycles read nothing; the cached index writes back
// exactly the stored bytes, and the next publish from it loses nothing.
func TestIndexCacheAfterWrite(t *testing.T) {
	for _, format := range []string{FormatYAML, FormatJSON} {
		t.Run(format, func(t *testing.T) {
			ctx := t.Context()
			ls, dir := newLocal(t)
			s := &countingStore{Store: ls, reads: map[string]int{}}
			cfg := Config{Format: format, IndexCache: filepath.Join(t.TempDir(), "index.gob")}
			for i, v := range []string{"1.0.0", "1.1.0", "2.0.0"} {
				rep, err := New(s, cfg, quiet()).Publish(ctx, []Package{pkg(t, "a", v, ""), pkg(t, fmt.Sprintf("c%d", i), "0.1.0", "")})
				if err != nil || !rep.Wrote || len(rep.Failed) != 0 {
					t.Fatalf("publish %s: %v %+v", v, err, rep)
				}
				stored, err := os.ReadFile(filepath.Join(dir, "index.yaml"))
				if err != nil {
					t.Fatal(err)
				}
				cached, _, err := New(s, cfg, quiet()).Index(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if got := mustMarshal(t, cached); !bytes.Equal(got, stored) {
					t.Fatalf("cached index writes:\n%s\n---- stored:\n%s", got, stored)
				}
				if got, want := entrySet(t, stored), 2*(i+1); len(got) != want {
					t.Fatalf("stored index has %d entries, want %d", len(got), want)
				}
			}
			// Only the first cycle's read of the missing index.
			if n := s.reads["index.yaml"]; n != 1 {
				t.Errorf("index read %d times, want 1 (before it existed)", n)
			}
		})
	}
}
