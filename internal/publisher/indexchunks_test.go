package publisher

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// Issue 12: parsing a helm-laid-out YAML index one chart at a time gives
// exactly what parsing the whole document gives (fields, entries, the
// entries' ordinals and the layout), and any text it cannot read that way
// is left to the whole-document parse.
func TestParseYAMLByChart(t *testing.T) {
	written := NewIndex()
	addEntry(t, written, "b", "1.0.0")
	addEntry(t, written, "b", "2.0.0")
	addEntry(t, written, "on", "1.0.0")
	written.Generated = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	chartsync, err := written.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	item := func(name, version string) string {
		return "  - name: " + name + "\n    version: " + version + "\n    urls:\n    - " + name + "-" + version + ".tgz\n"
	}
	for _, tc := range []struct {
		name    string
		src     string
		chunked bool // read one chart at a time
	}{
		{"helm", string(bigIndex(t, 30, 4)), true},
		{"chartsync", string(chartsync), true},
		{"foreign", foreignYAML, true},
		{"comments and blank lines", "# head\napiVersion: v1\nentries:\n# a comment in column 1\n  a:\n" + item("a", "1.0.0") +
			"\n  # about b\n  b:\n" + item("b", "1.0.0") + item("b", "0.9.0") + "generated: \"2020-01-01T00:00:00Z\"\n", true},
		{"keys after entries", "apiVersion: v1\nentries:\n  a:\n" + item("a", "1.0.0") + "serverInfo:\n  contextPath: /x\ngenerated: 2020-01-01T00:00:00Z\n", true},
		{"indented items", "apiVersion: v1\nentries:\n  a:\n    - name: a\n      version: 1.0.0\n  b:\n    - name: b\n      version: 1.0.0\n", true},
		{"CRLF", strings.ReplaceAll("apiVersion: v1\nentries:\n  a:\n"+item("a", "1.0.0")+"generated: 2020-01-01T00:00:00Z\n", "\n", "\r\n"), true},
		{"null item", "apiVersion: v1\nentries:\n  a:\n  -\n" + item("a", "1.0.0") + "  b:\n" + item("b", "1.0.0"), true},
		{"block scalar", "apiVersion: v1\nentries:\n  a:\n  - name: a\n    version: 1.0.0\n    description: |\n      b:\n      - not an item\n  b:\n" + item("b", "1.0.0"), true},
		{"anchor in one chart", "apiVersion: v1\nentries:\n  a:\n  - &x\n    name: a\n    version: 1.0.0\n  - <<: *x\n    version: 2.0.0\n", true},
		{"no trailing newline", "apiVersion: v1\nentries:\n  a:\n" + strings.TrimSuffix(item("a", "1.0.0"), "\n"), true},

		{"anchor across charts", "apiVersion: v1\nentries:\n  a:\n  - &x\n    name: a\n    version: 1.0.0\n  b:\n  - <<: *x\n    name: b\n", false},
		{"quoted scalar over a name", "apiVersion: v1\nentries:\n  a:\n  - name: a\n    description: \"x\n  b: y\"\n    version: 1.0.0\n", false},
		{"quoted scalar over a top key", "apiVersion: v1\nx: \"a\nentries:\nb\"\nentries:\n  a:\n" + item("a", "1.0.0"), false},
		{"flow entries", "apiVersion: v1\nentries: {a: [{name: a, version: 1.0.0}]}\n", false},
		{"duplicate chart", "apiVersion: v1\nentries:\n  a:\n" + item("a", "1.0.0") + "  a:\n" + item("a", "2.0.0"), false},
		{"two documents", "apiVersion: v1\nentries:\n  a:\n" + item("a", "1.0.0") + "---\napiVersion: v2\n", false},
		{"generated with a comment", "apiVersion: v1\nentries:\n  a:\n" + item("a", "1.0.0") + "generated: 2020-01-01T00:00:00Z # c\n", false},
		{"empty entries", "apiVersion: v1\nentries:\ngenerated: 2020-01-01T00:00:00Z\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := []byte(tc.src)
			got := parseYAMLByChart(src)
			if (got != nil) != tc.chunked {
				t.Fatalf("read one chart at a time: %v, want %v", got != nil, tc.chunked)
			}
			want, err := parseYAMLDocument(src)
			if got == nil {
				return
			}
			if err != nil {
				t.Fatalf("read one chart at a time, but the document does not parse: %v", err)
			}
			if !reflect.DeepEqual(got.IndexHeader, want.IndexHeader) {
				t.Errorf("index %+v, want %+v", got.IndexHeader, want.IndexHeader)
			}
			if !reflect.DeepEqual(got.charts, want.charts) || got.read != want.read {
				t.Errorf("entries %v (%d read), want %v (%d)", got.charts, got.read, want.charts, want.read)
			}
			if !reflect.DeepEqual(got.layout, want.layout) {
				t.Errorf("layout %+v, want %+v", got.layout, want.layout)
			}
		})
	}
}
