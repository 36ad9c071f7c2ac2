package publisher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/repo"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/chartsync/chartsync/internal/publisher/store"
)

const (
	zeros = "0000000000000000000000000000000000000000000000000000000000000000"
	ones  = "1111111111111111111111111111111111111111111111111111111111111111"
)

// foreignYAML is an index another tool wrote: ChartMuseum's serverInfo,
// fields helm does not know at the top and in entries, comments, an entry
// without created, unquoted all-digit digests, a chart named "on".
var foreignYAML = `# written by hand
apiVersion: v1
serverInfo:
  contextPath: /charts
x-top: {a: 1, b: [x, "y"]}
entries:
  a:
  - apiVersion: v2
    name: a
    version: 1.0.0
    digest: ` + zeros + `
    urls: [charts/a-1.0.0.tgz]
    x-signed-by: release team   # kept
  "on":
  - name: "on"
    version: 0.1.0
    digest: ` + ones + `
    urls:
    - on-0.1.0.tgz
    created: 2020-01-01T00:00:00Z
generated: 2020-01-01T00:00:00Z
`

var foreignJSON = `{
  "apiVersion": "v1",
  "x-top": {"a": 1.50, "b": ["x"]},
  "entries": {
    "a": [
      {"apiVersion": "v2", "name": "a", "version": "1.0.0", "digest": "` + zeros + `",
       "urls": ["charts/a-1.0.0.tgz"], "x-signed-by": "release team", "x-size": 1.50}
    ],
    "b": [null, {"name": "b", "version": "2.0.0", "urls": ["b-2.0.0.tgz"], "created": "2020-01-01T00:00:00Z"}]
  },
  "generated": "2020-01-01T00:00:00Z",
  "serverInfo": {"contextPath": "/charts"}
}`

// TestIndexPreservesForeignYAML is issue 9 case 12 for a YAML index:
// rewriting it after adding an entry keeps every entry that was there
// exactly as it was written, and every top-level field.
func TestIndexPreservesForeignYAML(t *testing.T) {
	idx, err := ParseIndex([]byte(foreignYAML))
	if err != nil {
		t.Fatal(err)
	}
	if got := Lookup(idx, "a", "1.0.0").Digest; got != zeros {
		t.Errorf("digest read as %q, want the 64 zeros as written", got)
	}
	if got := Lookup(idx, "on", "0.1.0").Digest; got != ones {
		t.Errorf("digest read as %q, want the 64 ones as written", got)
	}
	addEntry(t, idx, "y", "1.0.0")
	idx.Generated = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	out, err := idx.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{
		"# written by hand\n",
		"serverInfo:\n  contextPath: /charts\n",
		`x-top: {a: 1, b: [x, "y"]}` + "\n",
		"    digest: " + zeros + "\n",
		"    digest: " + ones + "\n",
		"    x-signed-by: release team   # kept\n",
		"    created: 2020-01-01T00:00:00Z\n",
		`generated: "2026-01-02T03:04:05Z"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("rewritten index lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "created:"); n != 2 {
		t.Errorf("rewritten index has %d created fields, want 2 (the entry without one stays so):\n%s", n, text)
	}
	// Every entry that was read is written node for node as it was.
	before, after := entryNodes(t, []byte(foreignYAML)), entryNodes(t, out)
	for key, node := range before {
		if after[key] != node {
			t.Errorf("entry %s changed:\n%s\nbecame\n%s", key, node, after[key])
		}
	}
	// helm reads it, with the new entry under the name "y" (not "true").
	var h repo.IndexFile
	if err := sigsyaml.Unmarshal(out, &h); err != nil {
		t.Fatalf("helm's reader: %v\n%s", err, text)
	}
	if len(h.Entries["y"]) != 1 || len(h.Entries["on"]) != 1 || len(h.Entries["a"]) != 1 || len(h.Entries) != 3 {
		t.Errorf("helm reads entries %v, want a, on and y", h.Entries)
	}
}

// TestIndexPreservesForeignJSON is issue 9 case 12 for a JSON index: it is
// written back as JSON with every field, number texts included.
func TestIndexPreservesForeignJSON(t *testing.T) {
	idx, err := ParseIndex([]byte(foreignJSON))
	if err != nil {
		t.Fatal(err)
	}
	if Entries(idx) != 2 || Lookup(idx, "a", "1.0.0").Digest != zeros {
		t.Fatalf("read %d entries, digest %q", Entries(idx), Lookup(idx, "a", "1.0.0").Digest)
	}
	addEntry(t, idx, "c", "1.0.0")
	idx.Generated = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	out, err := idx.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(out) {
		t.Fatalf("a JSON index was not written as JSON:\n%s", out)
	}
	wantIndented(t, out)
	var got map[string]any
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got["x-top"]) != "map[a:1.50 b:[x]]" || fmt.Sprint(got["serverInfo"]) != "map[contextPath:/charts]" {
		t.Errorf("top-level fields not kept: x-top %v, serverInfo %v", got["x-top"], got["serverInfo"])
	}
	if got["generated"] != "2026-01-02T03:04:05Z" {
		t.Errorf("generated = %v", got["generated"])
	}
	entries := got["entries"].(map[string]any)
	a := entries["a"].([]any)[0].(map[string]any)
	if a["x-signed-by"] != "release team" || a["x-size"] != json.Number("1.50") || a["digest"] != zeros {
		t.Errorf("entry a lost fields: %v", a)
	}
	if _, ok := a["created"]; ok {
		t.Errorf("entry a gained created: %v", a["created"])
	}
	if n := len(entries["b"].([]any)); n != 1 {
		t.Errorf("b has %d entries, want 1 (the null one carries nothing)", n)
	}
	c := entries["c"].([]any)[0].(map[string]any)
	if c["digest"] != "sha-c" || c["created"] == nil {
		t.Errorf("new entry c = %v", c)
	}
	// helm's loader reads JSON with encoding/json.
	var h repo.IndexFile
	if err := json.Unmarshal(out, &h); err != nil || len(h.Entries) != 3 {
		t.Errorf("helm's reader: %v, %d charts", err, len(h.Entries))
	}
}

// TestIndexRoundTripIsStable: reading and writing again changes nothing,
// in either format, and a new index is one helm's strict reader takes.
func TestIndexRoundTripIsStable(t *testing.T) {
	fresh := NewIndex()
	addEntry(t, fresh, "a", "1.0.0")
	addEntry(t, fresh, "a", "1.1.0")
	addEntry(t, fresh, "true", "1.0.0")
	first, err := fresh.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var strict repo.IndexFile
	if err := sigsyaml.UnmarshalStrict(first, &strict); err != nil || len(strict.Entries["a"]) != 2 || len(strict.Entries["true"]) != 1 {
		t.Fatalf("helm's strict reader on a new index: %v, %v\n%s", err, strict.Entries, first)
	}
	for name, in := range map[string][]byte{"new": first, "yaml": []byte(foreignYAML), "json": []byte(foreignJSON)} {
		idx, err := ParseIndex(in)
		if err != nil {
			t.Fatal(err)
		}
		once, err := idx.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseIndex(once)
		if err != nil {
			t.Fatalf("%s: reading what was written: %v", name, err)
		}
		twice, err := again.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(once, twice) {
			t.Errorf("%s: a second round trip changed the index:\n%s\n----\n%s", name, once, twice)
		}
	}
}

// TestIndexWriteChangesOnlyWhatIsNew: writing an index laid out as helm
// writes it puts the new entries in and changes the generated time; every
// other line stays byte for byte, in order. Other layouts are re-encoded;
// either way the result reads back with every entry.
func TestIndexWriteChangesOnlyWhatIsNew(t *testing.T) {
	helmIndex := repo.NewIndexFile()
	for _, nv := range [][2]string{{"b", "1.0.0"}, {"b", "1.1.0"}, {"d", "0.1.0"}} {
		helmIndex.MustAdd(&chart.Metadata{APIVersion: "v2", Name: nv[0], Version: nv[1], Description: "multi\nline: text"},
			Filename(nv[0], nv[1]), "https://charts.example.org", "sha-"+nv[0])
	}
	helmText, err := sigsyaml.Marshal(helmIndex)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		src     string
		spliced bool
	}{
		"helm":                               {string(helmText), true},
		"foreign":                            {foreignYAML, true},
		"crlf, no final nl":                  {strings.TrimSuffix(strings.ReplaceAll(foreignYAML, "\n", "\r\n"), "\r\n"), true},
		"entries last":                       {"apiVersion: v1\nentries:\n  b:\n    - name: b\n      version: 1.0.0\n", true},
		"entries last, no final nl":          {"apiVersion: v1\nentries:\n  b:\n    - name: b\n      version: 1.0.0\n# foot", true},
		"four spaces, comments, blank lines": {"# head\napiVersion: v1\n\nentries:\n    # about b\n    b:\n        -   name: b\n            version: 1.0.0\n            description: |\n                literal\n\n                text\n\n    d:   # trailing\n    -   name: d\n        version: 0.1.0\n# foot\ngenerated:   \"2020-01-01T00:00:00Z\"\nx-after: 1\n", true},
		"flow":                               {`{apiVersion: v1, entries: {b: [{name: b, version: 1.0.0}]}, generated: "2020-01-01T00:00:00Z"}`, false},
		"empty entries":                      {"apiVersion: v1\nentries: {}\ngenerated: 2020-01-01T00:00:00Z\n", false},
		"generated comment":                  {"apiVersion: v1\nentries:\n  b:\n  - {name: b, version: 1.0.0}\ngenerated: 2020-01-01T00:00:00Z # no\n", false},
		"end marker":                         {"apiVersion: v1\nentries:\n  b:\n  - {name: b, version: 1.0.0}\n...\n", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			idx, err := ParseIndex([]byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if (idx.layout != nil) != tc.spliced {
				t.Fatalf("spliced = %v, want %v", idx.layout != nil, tc.spliced)
			}
			n := Entries(idx)
			for _, nv := range [][2]string{{"a", "1.0.0"}, {"b", "2.0.0"}, {"c", "1.0.0"}, {"z", "1.0.0"}, {"z", "1.1.0"}} {
				addEntry(t, idx, nv[0], nv[1])
			}
			idx.Generated = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			out, err := idx.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseIndex(out)
			if err != nil {
				t.Fatalf("reading what was written: %v\n%s", err, out)
			}
			if Entries(again) != n+5 || !again.Generated.Equal(idx.Generated) {
				t.Errorf("read back %d entries (want %d), generated %v:\n%s", Entries(again), n+5, again.Generated, out)
			}
			for _, nv := range [][2]string{{"a", "1.0.0"}, {"b", "2.0.0"}, {"c", "1.0.0"}, {"z", "1.1.0"}} {
				if cv := Lookup(again, nv[0], nv[1]); cv == nil || cv.Digest != "sha-"+nv[0] {
					t.Errorf("new entry %s %s read back as %+v", nv[0], nv[1], cv)
				}
			}
			if name == "helm" {
				var h repo.IndexFile
				if err := sigsyaml.UnmarshalStrict(out, &h); err != nil {
					t.Errorf("helm's strict reader: %v", err)
				}
			}
			if !tc.spliced {
				return
			}
			// Every line of the source but generated's is in the output,
			// unchanged and in order.
			outLines := strings.SplitAfter(string(out), "\n")
			j := 0
			for _, l := range strings.SplitAfter(tc.src, "\n") {
				if strings.HasPrefix(l, "generated:") || l == "" {
					continue
				}
				for j < len(outLines) && outLines[j] != l && outLines[j] != l+"\n" {
					j++
				}
				if j == len(outLines) {
					t.Fatalf("source line %q is not in the output (in order):\n%s", l, out)
				}
			}
		})
	}
}

// TestIndexRemovedEntryNotWritten: an entry removed from the Index is not
// written (the rest still is), in both formats.
func TestIndexRemovedEntryNotWritten(t *testing.T) {
	for name, in := range map[string]string{"yaml": foreignYAML, "json": foreignJSON} {
		idx, err := ParseIndex([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		n := Entries(idx)
		delete(idx.charts, "a")
		out, err := idx.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseIndex(out)
		if err != nil {
			t.Fatal(err)
		}
		if Lookup(again, "a", "1.0.0") != nil || Entries(again) != n-1 {
			t.Errorf("%s: after removing a, read back %d entries (want %d):\n%s", name, Entries(again), n-1, out)
		}
	}
}

// TestIndexRefusesWhatItCannotKeep: an index that cannot be read whole is
// an error, never a partial read.
func TestIndexRefusesWhatItCannotKeep(t *testing.T) {
	// An alias bomb where chartsync must read: in an entry.
	bomb := "apiVersion: v1\nx: &a [y, y, y, y, y, y, y, y, y, y]\n"
	prev := "a"
	for i := range 12 {
		name := fmt.Sprintf("a%d", i)
		bomb += fmt.Sprintf("%s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", name, name, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = name
	}
	bomb += "entries:\n  a:\n  - name: a\n    keywords: *" + prev + "\n"
	for name, in := range map[string]string{
		"empty":         "  \n",
		"no apiVersion": "entries: {}\n",
		"not a mapping": "- a\n",
		"entry a list":  "apiVersion: v1\nentries:\n  a: {name: a}\n",
		"digest a list": "apiVersion: v1\nentries:\n  a:\n  - name: a\n    digest: [1]\n",
		"alias bomb":    bomb,
		"bad json":      `{"apiVersion": "v1", "entries": {"a": [{"digest": 0}]}}`,
	} {
		if _, err := ParseIndex([]byte(in)); err == nil {
			t.Errorf("%s: read without error", name)
		}
	}
	// Aliases that stay small are read; written as they were when the
	// source is block style, expanded when it is re-encoded (flow style).
	for _, in := range []string{
		"apiVersion: v1\nentries:\n  a:\n  - &e {name: a, version: 1.0.0, urls: [a.tgz]}\n  b:\n  - <<: *e\n    name: b\n",
		"{apiVersion: v1, entries: {a: [&e {name: a, version: 1.0.0, urls: [a.tgz]}], b: [{<<: *e, name: b}]}}",
	} {
		idx, err := ParseIndex([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if cv := Lookup(idx, "b", "1.0.0"); cv == nil || cv.URL != "a.tgz" {
			t.Errorf("merged entry b = %+v", cv)
		}
		addEntry(t, idx, "0first", "1.0.0") // sorts before a: the anchor must stay before its alias
		out, err := idx.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseIndex(out)
		if err != nil {
			t.Fatalf("reading what was written: %v\n%s", err, out)
		}
		if Entries(again) != 3 || Lookup(again, "b", "1.0.0").URL != "a.tgz" {
			t.Errorf("written:\n%s", out)
		}
	}
}

// TestPublishKeepsForeignIndex: publishing into a repository whose index
// another tool wrote keeps all of it.
func TestPublishKeepsForeignIndex(t *testing.T) {
	ctx := t.Context()
	s, _ := newLocal(t)
	if err := s.Create(ctx, "stable/index.yaml", []byte(foreignYAML)); err != nil {
		t.Fatal(err)
	}
	p := New(s, Config{Prefix: "stable"}, quiet())
	rep, err := p.Publish(ctx, []Package{pkg(t, "n", "1.0.0", "")})
	if err != nil || !rep.Wrote {
		t.Fatalf("Publish: %v, wrote %v", err, rep.Wrote)
	}
	b, _, err := s.Get(ctx, "stable/index.yaml")
	if err != nil {
		t.Fatal(err)
	}
	before, after := entryNodes(t, []byte(foreignYAML)), entryNodes(t, b)
	for key, node := range before {
		if after[key] != node {
			t.Errorf("entry %s changed:\n%s\nbecame\n%s", key, node, after[key])
		}
	}
	if _, ok := after["n[0]"]; !ok || !strings.Contains(string(b), "serverInfo:") || !strings.Contains(string(b), "x-top:") {
		t.Errorf("index after publishing:\n%s", b)
	}
}

// TestIndexSizeLimit is issue 9 case 8 for the index: an index above the
// limit is refused before it is read, as unreadable, naming it and the
// limit; nothing is written.
func TestIndexSizeLimit(t *testing.T) {
	ctx := t.Context()
	s, _ := newLocal(t)
	idx := NewIndex()
	for i := range 50 {
		addEntry(t, idx, fmt.Sprintf("chart%d", i), "1.0.0")
	}
	b, err := idx.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "stable/index.yaml", b); err != nil {
		t.Fatal(err)
	}
	p := New(s, Config{Prefix: "stable", MaxIndexSize: int64(len(b) - 1)}, quiet())
	_, err = p.Publish(ctx, []Package{pkg(t, "n", "1.0.0", "")})
	if !errors.Is(err, ErrIndexUnreadable) || !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("Publish: err = %v, want ErrIndexUnreadable and ErrTooLarge", err)
	}
	for _, want := range []string{"stable/index.yaml", store.FormatSize(int64(len(b))), store.FormatSize(int64(len(b) - 1)), "max_index_size"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if got, _, _ := s.Get(ctx, "stable/index.yaml"); !bytes.Equal(got, b) {
		t.Error("the index was rewritten")
	}
	if _, err := New(s, Config{Prefix: "stable", MaxIndexSize: int64(len(b))}, quiet()).Publish(ctx, nil); err != nil {
		t.Errorf("at exactly the limit: %v", err)
	}
}

// TestPackageSizeLimit: a package above the limit fails alone, naming it
// and the limit; a stored one above it is not read.
func TestPackageSizeLimit(t *testing.T) {
	ctx := t.Context()
	s, _ := newLocal(t)
	small, big := pkg(t, "small", "1.0.0", ""), pkg(t, "big", "1.0.0", strings.Repeat("x", 4000))
	limit := int64(len(big.Data) - 1)
	if int64(len(small.Data)) > limit {
		t.Fatal("test packages: small is not smaller than big")
	}
	p := New(s, Config{Prefix: "stable", MaxPackageSize: limit}, quiet())
	rep, err := p.Publish(ctx, []Package{big, small})
	if err != nil {
		t.Fatal(err)
	}
	ferr := rep.Failed["big-1.0.0.tgz"]
	if !errors.Is(ferr, store.ErrTooLarge) || !strings.Contains(ferr.Error(), "big-1.0.0.tgz") || !strings.Contains(ferr.Error(), "max_package_size") {
		t.Errorf("big: %v, want ErrTooLarge naming it and max_package_size", ferr)
	}
	if len(rep.Published) != 1 || rep.Published[0] != "small-1.0.0.tgz" {
		t.Errorf("published %v, want small alone", rep.Published)
	}
	// A package above the limit that is in the store already (put there
	// by hand) is neither read nor indexed.
	if err := s.Create(ctx, "stable/big-1.0.0.tgz", big.Data); err != nil {
		t.Fatal(err)
	}
	rep, err = p.Publish(ctx, nil)
	if err != nil || rep.Wrote || len(rep.Repaired) != 0 {
		t.Errorf("cycle with a large stored package: %v, wrote %v, repaired %v", err, rep.Wrote, rep.Repaired)
	}
}

// TestNameTooLongFailsAlone is issue 9 case 4 (the local store's part): a
// package whose file name the file system cannot hold fails alone, signed
// or not; the other packages are published and indexed.
func TestNameTooLongFailsAlone(t *testing.T) {
	ctx := t.Context()
	s, dir := newLocal(t)
	long := strings.Repeat("a", 250)
	signed := pkg(t, strings.Repeat("s", 248), "1.0.0", "") // .tgz fits in 255 bytes, .tgz.prov does not
	signed.Provenance = []byte("signature")
	p := New(s, Config{Prefix: "stable"}, quiet())
	rep, err := p.Publish(ctx, []Package{pkg(t, long, "1.0.0", ""), signed, pkg(t, "b", "1.0.0", "")})
	if err != nil {
		t.Fatalf("Publish: %v (the repository failed, not the chart)", err)
	}
	for _, name := range []string{Filename(long, "1.0.0"), Filename(signed.Metadata.Name, "1.0.0")} {
		if err := rep.Failed[name]; !errors.Is(err, store.ErrInvalidKey) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want ErrInvalidKey naming it", name[:20]+"...", err)
		}
	}
	if len(rep.Published) != 1 || rep.Published[0] != "b-1.0.0.tgz" || !rep.Wrote || rep.Entries != 1 {
		t.Errorf("published %v (wrote %v, %d entries), want b alone", rep.Published, rep.Wrote, rep.Entries)
	}
	if names := storedNames(t, dir+"/stable"); strings.Join(names, " ") != "b-1.0.0.tgz index.yaml" {
		t.Errorf("store holds %v", names)
	}
}

func storedNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestDigestCacheUnsavable is issue 9 case 17: a digest cache that cannot
// be saved is a warning naming it; the cycle succeeds.
func TestDigestCacheUnsavable(t *testing.T) {
	ctx := t.Context()
	s, _ := newLocal(t)
	// A file where the cache's directory should be: saving must fail, as
	// on a read-only or full state dir, even for root.
	stateDir := t.TempDir()
	blocker := stateDir + "/digests"
	if err := writeFile(blocker, "not a directory"); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	p := New(s, Config{Prefix: "stable", Digests: LoadDigestCache(blocker + "/stable.json")}, newTextLogger(&logs))
	rep, err := p.Publish(ctx, []Package{pkg(t, "a", "1.0.0", "")})
	if err != nil || !rep.Wrote || len(rep.Published) != 1 {
		t.Fatalf("Publish: %v, wrote %v, published %v", err, rep.Wrote, rep.Published)
	}
	out := logs.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "digest cache not saved") || !strings.Contains(out, blocker+"/stable.json") {
		t.Errorf("want a warning naming the cache file, got:\n%s", out)
	}
}

func addEntry(t *testing.T, idx *Index, name, version string) {
	t.Helper()
	file := Filename(name, version)
	if err := idx.MustAdd(&chart.Metadata{APIVersion: "v2", Name: name, Version: version}, file, "", "sha-"+name); err != nil {
		t.Fatal(err)
	}
}

// readEntries reads every field of every entry of an index as ParseIndex
// reads it (a string keeps its exact text), which keeps of them only their
// Entry.
func readEntries(t *testing.T, b []byte) *IndexFile {
	t.Helper()
	if _, err := ParseIndex(b); err != nil {
		t.Fatalf("read index: %v\n%s", err, b)
	}
	f := &IndexFile{Entries: map[string]ChartVersions{}}
	if json.Valid(b) {
		if err := json.Unmarshal(b, f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	c := &converter{budget: 2*len(b) + 1024}
	err := walkEntries(doc.Content[0], func(name string, _ int, item *yaml.Node) error {
		js, err := c.json(nil, item, typeChartVersion)
		if err != nil {
			return err
		}
		cv := &ChartVersion{}
		f.Entries[name] = append(f.Entries[name], cv)
		return json.Unmarshal(js, cv)
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// entryNodes returns each entry of a YAML index, re-encoded alone, by
// "name[i]" in document order.
func entryNodes(t *testing.T, b []byte) map[string]string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	n := map[string]int{}
	err := walkEntries(doc.Content[0], func(name string, _ int, item *yaml.Node) error {
		out, err := yaml.Marshal(item)
		if err != nil {
			return err
		}
		m[fmt.Sprintf("%s[%d]", name, n[name])] = string(out)
		n[name]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func writeFile(name, content string) error { return os.WriteFile(name, []byte(content), 0o644) }

func newTextLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// bigIndex returns a helm-written index of charts x versions entries.
func bigIndex(b testing.TB, charts, versions int) []byte {
	b.Helper()
	idx := repo.NewIndexFile()
	for c := range charts {
		for v := range versions {
			md := &chart.Metadata{APIVersion: "v2", Name: fmt.Sprintf("chart-%03d", c), Version: fmt.Sprintf("1.%d.0", v),
				Description: "A Helm chart for Kubernetes", AppVersion: "1.16.0", Type: "application"}
			if err := idx.MustAdd(md, Filename(md.Name, md.Version), "https://charts.example.org", zeros); err != nil {
				b.Fatal(err)
			}
		}
	}
	out, err := sigsyaml.Marshal(idx)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkIndex reads and writes a 20,000-entry index (400 charts x 50
// versions), as YAML and as JSON; helm's reader is the reference.
func BenchmarkIndex(b *testing.B) {
	y := bigIndex(b, 400, 50)
	idx, err := ParseIndex(y)
	if err != nil {
		b.Fatal(err)
	}
	idx.json = true
	j, err := idx.marshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	for _, in := range []struct {
		name string
		data []byte
	}{{"yaml", y}, {"json", j}} {
		b.Run("parse-"+in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				if _, err := ParseIndex(in.data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("helm-"+in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				var h repo.IndexFile
				var err error
				if in.name == "json" {
					err = json.Unmarshal(in.data, &h)
				} else {
					err = sigsyaml.UnmarshalStrict(in.data, &h)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("helm-write-"+in.name, func(b *testing.B) {
			var h repo.IndexFile
			if err := sigsyaml.Unmarshal(in.data, &h); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				h.SortEntries()
				var err error
				if in.name == "json" {
					_, err = json.MarshalIndent(&h, "", "  ")
				} else {
					_, err = sigsyaml.Marshal(&h)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("write-"+in.name, func(b *testing.B) {
			idx, err := ParseIndex(in.data)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				if _, err := idx.Marshal(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// countingStore counts the reads of each key of a real store.
type countingStore struct {
	store.Store
	mu    sync.Mutex
	reads map[string]int
}

func (c *countingStore) count(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads[key]++
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, string, error) {
	c.count(key)
	return c.Store.Get(ctx, key)
}

func (c *countingStore) Open(ctx context.Context, key string) (io.ReadCloser, store.Object, error) {
	c.count(key)
	return c.Store.Open(ctx, key)
}

// TestStoredNonChartReadOnce is issue 9 case 8 (re-reading): an object in
// the store that is not a chart is read once, and not again while its
// version is unchanged, also after a restart (the verdict is in the cache
// file).
func TestStoredNonChartReadOnce(t *testing.T) {
	ctx := t.Context()
	s, _ := newLocal(t)
	if err := s.Create(ctx, "stable/junk-1.0.0.tgz", []byte("not a chart archive")); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: s, reads: map[string]int{}}
	cacheFile := t.TempDir() + "/digests.json"
	for cycle := range 3 {
		p := New(cs, Config{Prefix: "stable", Digests: LoadDigestCache(cacheFile)}, quiet())
		rep, err := p.Publish(ctx, []Package{pkg(t, "a", fmt.Sprintf("1.%d.0", cycle), "")})
		if err != nil || len(rep.Published) != 1 {
			t.Fatalf("cycle %d: %v, published %v", cycle, err, rep.Published)
		}
	}
	if n := cs.reads["stable/junk-1.0.0.tgz"]; n != 1 {
		t.Errorf("the stored non-chart was read %d times in 3 cycles, want 1", n)
	}
}

// wantIndented fails unless out is laid out exactly as json.Indent (two
// spaces) lays out its content, with a final newline, as helm's
// json.MarshalIndent does.
func wantIndented(t *testing.T, out []byte) {
	t.Helper()
	var compact, want bytes.Buffer
	if err := json.Compact(&compact, out); err != nil {
		t.Fatal(err)
	}
	if err := json.Indent(&want, compact.Bytes(), "", "  "); err != nil {
		t.Fatal(err)
	}
	want.WriteByte('\n')
	if !bytes.Equal(out, want.Bytes()) {
		t.Errorf("not laid out as json.Indent lays it out:\n%s\n---- want:\n%s", out, want.Bytes())
	}
}

// A JSON index is written in json.Indent's layout whatever the layout it
// was read in, with empty lists, empty entries and nested top-level values.
func TestJSONIndexLayout(t *testing.T) {
	for name, src := range map[string]string{
		"compact":      `{"apiVersion":"v1","x":{"a":[1,{"b":[]}],"c":{}},"entries":{"a":[{"name":"a","version":"1.0.0","urls":["a-1.0.0.tgz"],"x":{"y":[true,null]}}],"e":[]},"generated":"2026-01-01T00:00:00Z"}`,
		"no entries":   `{"apiVersion":"v1","entries":{}}`,
		"null entries": `{"apiVersion":"v1","entries":null}`,
		"odd layout":   "{ \"apiVersion\" :\t\"v1\",\n\n \"entries\": { \"a\" : [ { \"name\" : \"a\" , \"version\": \"1.0.0\" } ] } }",
	} {
		t.Run(name, func(t *testing.T) {
			idx, err := ParseIndex([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				out, err := idx.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				wantIndented(t, out)
				addEntry(t, idx, "new", "1.0.0")
			}
		})
	}
}
