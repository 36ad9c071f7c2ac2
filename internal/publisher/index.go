package publisher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/chart"
	sigsyaml "sigs.k8s.io/yaml"
)

// Size limits, chosen so that one repository cannot exhaust the memory of
// the host that publishes it, while no real repository comes near them.
const (
	// DefaultMaxIndexSize bounds index.yaml: 64 MiB is three times the
	// largest public indexes (15 to 20 MB) and about 230,000 entries at
	// helm's ~290 bytes each. An index is read whole and parsed, so its
	// size bounds the memory a cycle needs.
	DefaultMaxIndexSize = 64 << 20
	// DefaultMaxPackageSize bounds one package (.tgz): helm keeps every
	// installed release, chart included, in a Kubernetes Secret of at most
	// 1 MiB, so installable charts are far smaller; 20 MiB leaves room for
	// charts that vendor large files, and bounds the memory spent on each
	// package read whole for its digest and Chart.yaml.
	DefaultMaxPackageSize = 20 << 20
)

func (c Config) maxIndexSize() int64 {
	if c.MaxIndexSize > 0 {
		return c.MaxIndexSize
	}
	return DefaultMaxIndexSize
}

func (c Config) maxPackageSize() int64 {
	if c.MaxPackageSize > 0 {
		return c.MaxPackageSize
	}
	return DefaultMaxPackageSize
}

// Index is a repository's index.yaml: its top-level fields and entries,
// plus the document it was read from, so that writing it back loses
// nothing.
//
// The promise: Marshal writes every entry that was read exactly as it was
// read (fields helm does not know, comments, and the text of every scalar
// included: an unquoted all-digit digest stays as it was), every top-level
// field other than generated and entries as it was, and the entries added
// since (MustAdd) as helm writes them. The format is kept: an index read
// as JSON is written as JSON, one read as YAML (or a new one) as YAML.
//
// Of an entry read, an Index keeps only what chartsync decides with (an
// Entry) and where its text is, so that a large index costs little more
// than its text. Marshal writes the entries Index holds: one removed from
// it (as tests do, to play a lost update) is not written. Each chart's
// entries added go first, newest first, then the ones read, in the order
// read.
//
// A YAML index laid out as helm writes it (block style, one document) is
// written by putting the new entries and the generated time into its text:
// every other byte stays. Any other YAML, or one some entries were removed
// from, is parsed again at write time and re-encoded node by node, its
// aliases expanded.
type Index struct {
	IndexHeader
	charts map[string][]*Entry
	read   int // entries read from a YAML source

	json bool // read from JSON: write JSON
	// YAML: the source; JSON: the compact texts of the entries read. In
	// memory, or in the index cache file it was loaded from.
	src region
	// YAML: where new entries go (nil: the source is not laid out as helm
	// writes).
	layout *yamlLayout
	// JSON source: the top-level members in order.
	jsonTop []jsonMember
	// format to write ("yaml", "json"); "": the format read.
	format string
}

// IndexHeader is an index's top-level fields but entries, as IndexFile
// has them.
type IndexHeader struct {
	ServerInfo  map[string]any    `json:"serverInfo,omitempty"`
	APIVersion  string            `json:"apiVersion"`
	Generated   time.Time         `json:"generated"`
	PublicKeys  []string          `json:"publicKeys,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// An Entry is one chart version of an index as chartsync decides with it.
type Entry struct {
	Name, Version, Digest string
	URL                   string // the first of its urls; "" if none

	// Where its text is: its ordinal among the items of the YAML source
	// (-1: not read from YAML), n bytes at at in the Index's src (read
	// from JSON), or, for an entry added, the whole entry. An Entry's
	// fields are a copy: changing them does not change what Marshal
	// writes.
	ord   int32
	n     int32
	at    int64
	added *ChartVersion
}

// entryOf returns the Entry of cv.
func entryOf(cv *ChartVersion) *Entry {
	e := &Entry{Digest: cv.Digest, ord: -1}
	if cv.Metadata != nil {
		e.Name, e.Version = cv.Name, cv.Version
	}
	if len(cv.URLs) > 0 {
		e.URL = cv.URLs[0]
	}
	return e
}

// Charts returns the names of idx's charts, sorted.
func (idx *Index) Charts() []string {
	return slices.Sorted(maps.Keys(idx.charts))
}

// Versions returns chart name's entries: those read, in the order read,
// then those added.
func (idx *Index) Versions(name string) []*Entry { return idx.charts[name] }

// written returns chart name's entries in the order Marshal writes them:
// those added, newest first (as IndexFile.SortEntries sorts), then those
// read.
func (idx *Index) written(name string) []*Entry {
	es := idx.charts[name]
	i := slices.IndexFunc(es, func(e *Entry) bool { return e.added != nil })
	if i < 0 {
		return es
	}
	added := slices.Clone(es[i:])
	sortNewestFirst(len(added), func(k int) string { return added[k].Version },
		func(a, b int) { added[a], added[b] = added[b], added[a] })
	return append(added, es[:i]...)
}

// MustAdd adds an entry for md as IndexFile.MustAdd does (created now, with
// digest and the url of filename under baseURL), or fails, adding nothing.
func (idx *Index) MustAdd(md *chart.Metadata, filename, baseURL, digest string) error {
	f := &IndexFile{Entries: map[string]ChartVersions{}}
	if err := f.MustAdd(md, filename, baseURL, digest); err != nil {
		return err
	}
	cv := f.Entries[md.Name][0]
	e := entryOf(cv)
	e.added = cv
	idx.charts[md.Name] = append(idx.charts[md.Name], e)
	return nil
}

// Index formats (Config.Format): helm reads both from index.yaml.
const (
	FormatYAML = "yaml"
	FormatJSON = "json"
)

// Format returns the format idx was read in: FormatJSON or FormatYAML (also
// for a new index).
func (idx *Index) Format() string {
	if idx.json {
		return FormatJSON
	}
	return FormatYAML
}

// SetFormat makes Marshal write format (FormatYAML or FormatJSON) whatever
// format idx was read in; "" keeps the format read. Converting keeps every
// entry and every field, helm's or not, with its value: what changes is
// only how it is written (YAML comments and anchors do not survive JSON;
// JSON numbers are written as YAML numbers).
func (idx *Index) SetFormat(format string) error {
	switch format {
	case "", FormatYAML, FormatJSON:
	default:
		return fmt.Errorf("index format %q: must be %q or %q", format, FormatYAML, FormatJSON)
	}
	if !idx.src.present() && idx.jsonTop == nil {
		// Nothing read: write the format natively.
		idx.json = format == FormatJSON
		format = ""
	}
	idx.format = format
	return nil
}

// jsonMember is a top-level member of a JSON index (exported fields for
// the index cache).
type jsonMember struct {
	Key string
	Val json.RawMessage
}

// NewIndex returns an empty index, written as YAML.
func NewIndex() *Index {
	f := NewIndexFile()
	return &Index{IndexHeader: IndexHeader{APIVersion: f.APIVersion, Generated: f.Generated, PublicKeys: f.PublicKeys},
		charts: map[string][]*Entry{}}
}

// ErrNoAPIVersion is returned by ParseIndex for an index without an
// apiVersion, with helm's message for it.
var ErrNoAPIVersion = errors.New("no API version specified")

// ParseIndex reads an index.yaml the way helm does (JSON or YAML,
// apiVersion required) and keeps its source for Marshal. It drops only
// empty entries ("- " with nothing in it), as helm does; fields helm does
// not know are kept, not refused. A document it cannot read completely is
// an error: the caller must not rewrite it.
func ParseIndex(b []byte) (*Index, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("index is empty")
	}
	var idx *Index
	var err error
	if json.Valid(b) {
		idx, err = parseJSONIndex(b)
	} else {
		idx, err = parseYAMLIndex(b)
	}
	if err != nil {
		return nil, err
	}
	if idx.APIVersion == "" {
		return nil, ErrNoAPIVersion
	}
	return idx, nil
}

func parseJSONIndex(b []byte) (*Index, error) {
	// The entries' compact texts are at most the source's size: one
	// allocation, not one per doubling.
	idx := &Index{json: true, charts: map[string][]*Entry{}, src: region{b: make([]byte, 0, len(b))}}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("index is not a JSON object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := t.(string)
		if key == "entries" {
			// Only its place is kept: Marshal writes the entries from
			// their texts, and the whole text would be held twice.
			idx.jsonTop = append(idx.jsonTop, jsonMember{Key: key})
			if err := idx.decodeJSONEntries(dec); err != nil {
				return nil, fmt.Errorf("entries: %w", err)
			}
			continue
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, err
		}
		idx.jsonTop = append(idx.jsonTop, jsonMember{key, val})
	}
	// Every other top-level field, as helm reads it.
	var rest bytes.Buffer
	rest.WriteByte('{')
	for _, m := range idx.jsonTop {
		if m.Key == "entries" {
			continue
		}
		if rest.Len() > 1 {
			rest.WriteByte(',')
		}
		k, _ := json.Marshal(m.Key)
		rest.Write(k)
		rest.WriteByte(':')
		rest.Write(m.Val)
	}
	rest.WriteByte('}')
	if err := json.Unmarshal(rest.Bytes(), &idx.IndexHeader); err != nil {
		return nil, err
	}
	return idx, nil
}

// decodeJSONEntries decodes the value of entries one item at a time, so
// that only the items' texts are held, not a copy of the whole value too.
// As with encoding/json, a chart named twice keeps its last list.
func (idx *Index) decodeJSONEntries(dec *json.Decoder) error {
	t, err := dec.Token()
	if err != nil || t == nil {
		return err
	}
	if t != json.Delim('{') {
		return errors.New("not an object")
	}
	var compact bytes.Buffer
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name := t.(string) // an object's keys are strings
		delete(idx.charts, name)
		if t, err = dec.Token(); err != nil || t == nil {
			if err != nil {
				return err
			}
			continue
		}
		if t != json.Delim('[') {
			return fmt.Errorf("%s: not a list", name)
		}
		for i := 0; dec.More(); i++ {
			var item json.RawMessage
			if err := dec.Decode(&item); err != nil {
				return fmt.Errorf("%s[%d]: %w", name, i, err)
			}
			if string(item) == "null" {
				continue
			}
			cv := &ChartVersion{}
			if err := json.Unmarshal(item, cv); err != nil {
				return fmt.Errorf("%s[%d]: %w", name, i, err)
			}
			// Kept without its layout: Marshal indents the whole index.
			compact.Reset()
			if err := json.Compact(&compact, item); err != nil {
				return fmt.Errorf("%s[%d]: %w", name, i, err)
			}
			e := entryOf(cv)
			e.at, e.n = int64(len(idx.src.b)), int32(compact.Len())
			idx.src.b = append(idx.src.b, compact.Bytes()...)
			idx.charts[name] = append(idx.charts[name], e)
		}
		if _, err := dec.Token(); err != nil { // ]
			return err
		}
	}
	_, err = dec.Token() // }
	return err
}

func parseYAMLIndex(b []byte) (*Index, error) {
	if idx := parseYAMLByChart(b); idx != nil {
		return idx, nil
	}
	return parseYAMLDocument(b)
}

// parseYAMLDocument parses any YAML index as one document.
func parseYAMLDocument(b []byte) (*Index, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("index is not a YAML mapping")
	}
	top := doc.Content[0]
	c := &converter{budget: 2*len(b) + 1024}
	idx := &Index{src: region{b: b}, charts: map[string][]*Entry{}}
	if err := idx.readTop(c, top); err != nil {
		return nil, err
	}
	err := walkEntries(top, func(name string, k int, item *yaml.Node) error {
		return idx.readItem(c, name, k, item)
	})
	if err != nil {
		return nil, err
	}
	idx.layout = layoutOf(b, top)
	return idx, nil
}

// readTop reads every top-level field of mapping top but entries,
// converted to JSON as helm's reader (sigs.k8s.io/yaml) does, except that
// a scalar bound for a string keeps its exact text.
func (idx *Index) readTop(c *converter, top *yaml.Node) error {
	rest := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != "entries" {
			rest.Content = append(rest.Content, top.Content[i], top.Content[i+1])
		}
	}
	js, err := c.json(nil, rest, typeIndexFile)
	if err != nil {
		return err
	}
	return json.Unmarshal(js, &idx.IndexHeader)
}

// readItem reads the k-th item of the entries, one of chart name's.
func (idx *Index) readItem(c *converter, name string, k int, item *yaml.Node) error {
	js, err := c.json(nil, item, typeChartVersion)
	if err != nil {
		return fmt.Errorf("entries: %s: %w", name, err)
	}
	cv := &ChartVersion{}
	if err := json.Unmarshal(js, cv); err != nil {
		return fmt.Errorf("entries: %s: %w", name, err)
	}
	e := entryOf(cv)
	e.ord = int32(k)
	idx.charts[name] = append(idx.charts[name], e)
	idx.read++
	return nil
}

// walkEntries calls fn for each item of each chart's list under entries,
// in document order, with its ordinal k; null items are skipped (helm
// drops them) but counted.
func walkEntries(top *yaml.Node, fn func(name string, k int, item *yaml.Node) error) error {
	var entries *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value == "entries" {
			entries = deref(top.Content[i+1])
		}
	}
	if entries == nil || entries.ShortTag() == "!!null" {
		return nil
	}
	if entries.Kind != yaml.MappingNode {
		return errors.New("entries: not a mapping")
	}
	k := 0
	for i := 0; i+1 < len(entries.Content); i += 2 {
		name, list := entries.Content[i].Value, deref(entries.Content[i+1])
		if list.ShortTag() == "!!null" {
			continue
		}
		if list.Kind != yaml.SequenceNode {
			return fmt.Errorf("entries: %s: not a list", name)
		}
		for _, item := range list.Content {
			if deref(item).ShortTag() != "!!null" {
				if err := fn(name, k, item); err != nil {
					return err
				}
			}
			k++
		}
	}
	return nil
}

// deref follows an alias to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// yamlLayout says where in a YAML source new entries and the generated
// time go, as byte offsets, so that writing the index changes nothing else
// in the text and needs none of it but what it copies. Its fields are
// exported for the index cache (gob).
type yamlLayout struct {
	GenAt, GenEnd int // generated's value; GenEnd 0: no generated key
	Charts        []chartLayout
	EntriesCol    int  // column of the chart names
	DashOffset    int  // column of a chart's "- " minus that of its name
	EndAt         int  // where charts after the last one go: before the next top-level key, or at the end
	Newline       bool // the source ends with a line break (or is empty)
}

// chartLayout is where one chart's list is: where a new chart that sorts
// before it goes, where its new items go, and the column of their "-".
// Both places are line starts above the comment lines right before the
// chart's name and first item, which belong to them.
type chartLayout struct {
	Name          string
	KeyAt, ItemAt int
	DashCol       int
}

// layoutOf returns the layout of a block-style index (what helm and
// chartsync write), or nil for anything else (flow style, several
// documents, an empty entries, a generated time with a comment...): such
// an index is written by encoding its nodes instead.
func layoutOf(src []byte, top *yaml.Node) *yamlLayout {
	lines := lineStarts(src)
	if top.Style&yaml.FlowStyle != 0 || top.Column != 1 {
		return nil
	}
	for n := top.Line + 1; n < len(lines); n++ {
		if l := lines.line(src, n); bytes.HasPrefix(l, []byte("---")) || bytes.HasPrefix(l, []byte("...")) {
			return nil // another document, or an end marker: nothing can follow
		}
	}
	lay := &yamlLayout{Newline: len(src) == 0 || src[len(src)-1] == '\n'}
	var entries *yaml.Node
	entriesLine, entriesEnd := 0, lines.count()+1
	for i := 0; i+1 < len(top.Content); i += 2 {
		key, val := top.Content[i], top.Content[i+1]
		if entries != nil && entriesEnd == lines.count()+1 {
			entriesEnd = key.Line
		}
		switch key.Value {
		case "entries":
			entries, entriesLine = val, key.Line
		case "generated":
			if val.Kind != yaml.ScalarNode || val.Line != key.Line || val.LineComment != "" {
				return nil
			}
			// The value must be all that is left of its line.
			var v string
			text := string(lineText(lines.line(src, val.Line)))
			if val.Column-1 > len(text) || yaml.Unmarshal([]byte(text[val.Column-1:]), &v) != nil || v != val.Value {
				return nil
			}
			at := lines[val.Line-1]
			lay.GenAt, lay.GenEnd = at+val.Column-1, at+len(text)
		}
	}
	if entries == nil || entries.Kind != yaml.MappingNode || entries.Style&yaml.FlowStyle != 0 || len(entries.Content) == 0 {
		return nil
	}
	lay.EntriesCol = entries.Content[0].Column
	lay.EndAt = lines[hoist(src, lines, entriesEnd, entriesLine)-1]
	seen := map[int]bool{}
	for i := 0; i+1 < len(entries.Content); i += 2 {
		key, list := entries.Content[i], entries.Content[i+1]
		if key.Kind != yaml.ScalarNode || key.Column != lay.EntriesCol || seen[key.Line] ||
			list.Kind != yaml.SequenceNode || list.Style&yaml.FlowStyle != 0 || len(list.Content) == 0 {
			return nil
		}
		seen[key.Line] = true
		first := list.Content[0]
		if first.Line <= key.Line {
			return nil
		}
		// The item's "-" is the first thing on its line.
		line := lines.line(src, first.Line)
		before := bytes.TrimRight(line[:min(first.Column-1, len(line))], " ")
		dash := len(before)
		if dash == 0 || before[dash-1] != '-' || len(bytes.TrimLeft(before[:dash-1], " ")) != 0 {
			return nil
		}
		lay.Charts = append(lay.Charts, chartLayout{Name: key.Value, DashCol: dash,
			KeyAt:  lines[hoist(src, lines, key.Line, entriesLine)-1],
			ItemAt: lines[hoist(src, lines, first.Line, key.Line)-1]})
		if i == 0 {
			lay.DashOffset = dash - lay.EntriesCol
		}
	}
	return lay
}

// lines holds where each line of a text starts, and its length last: an
// int per line, where a slice per line would take three.
type lines []int

func lineStarts(b []byte) lines {
	starts := make(lines, 0, bytes.Count(b, []byte("\n"))+2)
	for i := 0; i < len(b); {
		starts = append(starts, i)
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
	}
	return append(starts, len(b))
}

// count is the number of lines.
func (ls lines) count() int { return len(ls) - 1 }

// line returns line n (1-based) of b with its line break.
func (ls lines) line(b []byte, n int) []byte { return b[ls[n-1]:ls[n]] }

// lineText is a line without its line break and trailing spaces.
func lineText(l []byte) []byte {
	return bytes.TrimRight(l, " \t\r\n")
}

// Marshal renders the index, keeping what was read (see Index). New
// entries of a chart go before the ones read (helm lists newest first),
// new charts in name order among the ones read.
func (idx *Index) Marshal() ([]byte, error) {
	var b []byte
	var err error
	switch {
	case idx.json:
		b, err = idx.marshalJSON()
	case idx.layout != nil && idx.keepsAllRead():
		b, err = idx.spliceYAML()
	default:
		b, err = idx.encodeYAML()
	}
	if err != nil {
		return nil, fmt.Errorf("marshal index: %w", err)
	}
	switch {
	case idx.format == FormatJSON && !idx.json:
		b, err = yamlToJSON(b)
	case idx.format == FormatYAML && idx.json:
		// yaml.v2 as helm writes: every string a YAML 1.1 reader would
		// take for something else is quoted.
		b, err = sigsyaml.JSONToYAML(b)
	}
	if err != nil {
		return nil, fmt.Errorf("convert index to %s: %w", idx.format, err)
	}
	return b, nil
}

// yamlToJSON converts a YAML index to indented JSON: the fields helm knows
// as helm reads them (a string keeps its exact text: an unquoted all-digit
// digest stays a string), every other field as a YAML 1.2 reader reads it.
func yamlToJSON(b []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 {
		return nil, errors.New("index is not one YAML document")
	}
	c := &converter{budget: 2*len(b) + 1024, keep: true}
	js, err := c.json(nil, doc.Content[0], typeIndexFile)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(len(js) * 3 / 2)
	if err := json.Indent(&out, js, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// keepsAllRead reports whether every entry read from the YAML source is
// still in the index: splicing writes them all.
func (idx *Index) keepsAllRead() bool {
	n := 0
	for _, es := range idx.charts {
		for _, e := range es {
			if e.ord >= 0 {
				n++
			}
		}
	}
	return n == idx.read
}

// added returns the entries of chart name that were not read, newest
// first.
func (idx *Index) added(name string) []*ChartVersion {
	var out []*ChartVersion
	for _, e := range idx.written(name) {
		if e.added == nil {
			break
		}
		out = append(out, e.added)
	}
	return out
}

// spliceYAML writes the source with the new entries and the generated
// time put in: every other byte stays as it was. Of the source, it reads
// only what it copies, into the output.
func (idx *Index) spliceYAML() ([]byte, error) {
	lay := idx.layout
	type insert struct {
		at, skip int // where, and how many bytes of the source it replaces
		text     []byte
	}
	var inserts []insert // in the order they are written at one place
	byName := map[string]chartLayout{}
	for _, cl := range lay.Charts {
		byName[cl.Name] = cl
	}
	for _, name := range idx.Charts() {
		added := idx.added(name)
		if len(added) == 0 {
			continue
		}
		if cl, ok := byName[name]; ok {
			text, err := helmItems(added, cl.DashCol)
			if err != nil {
				return nil, err
			}
			inserts = append(inserts, insert{at: cl.ItemAt, text: text})
			continue
		}
		at := lay.EndAt
		for _, cl := range lay.Charts {
			if cl.Name > name {
				at = cl.KeyAt
				break
			}
		}
		key, err := helmScalar(name)
		if err != nil {
			return nil, err
		}
		text := fmt.Appendf(nil, "%s%s:\n", strings.Repeat(" ", lay.EntriesCol-1), key)
		items, err := helmItems(added, lay.EntriesCol+lay.DashOffset)
		if err != nil {
			return nil, err
		}
		inserts = append(inserts, insert{at: at, text: append(text, items...)})
	}
	size := int(idx.src.size())
	generated := []byte(`"` + idx.Generated.Format(time.RFC3339Nano) + `"`)
	if lay.GenEnd == 0 {
		inserts = append(inserts, insert{at: size, text: fmt.Appendf(nil, "generated: %s\n", generated)})
	} else {
		inserts = append(inserts, insert{at: lay.GenAt, skip: lay.GenEnd - lay.GenAt, text: generated})
	}
	slices.SortStableFunc(inserts, func(a, b insert) int { return a.at - b.at })

	n := size + 1
	for _, in := range inserts {
		n += len(in.text)
	}
	out := make([]byte, 0, n)
	pos, newline := 0, lay.Newline
	var err error
	for _, in := range inserts {
		if out, err = idx.src.appendTo(out, pos, in.at-pos); err != nil {
			return nil, err
		}
		if in.at == size && !newline {
			out, newline = append(out, '\n'), true
		}
		out, pos = append(out, in.text...), in.at+in.skip
	}
	return idx.src.appendTo(out, pos, size-pos)
}

// hoist moves an insertion point (a 1-based line of src) up over the
// comment lines right above it, which belong to what follows, but not up to
// floor.
func hoist(src []byte, lines lines, at, floor int) int {
	for at-1 > floor && at-1 <= lines.count() && bytes.HasPrefix(bytes.TrimLeft(lines.line(src, at-1), " "), []byte("#")) {
		at--
	}
	return at
}

// helmItems writes entries as helm does, as items of a block sequence
// whose "-" is at column dashCol.
func helmItems(cvs []*ChartVersion, dashCol int) ([]byte, error) {
	var out []byte
	indent := strings.Repeat(" ", dashCol-1)
	for _, cv := range cvs {
		b, err := sigsyaml.Marshal(cv)
		if err != nil {
			return nil, err
		}
		lines := lineStarts(b)
		for n := 1; n <= lines.count(); n++ {
			l := lines.line(b, n)
			switch {
			case n == 1:
				out = append(out, indent+"- "...)
			case len(lineText(l)) > 0:
				out = append(out, indent+"  "...)
			}
			out = append(out, l...)
		}
		if !bytes.HasSuffix(out, []byte("\n")) {
			out = append(out, '\n')
		}
	}
	return out, nil
}

// helmScalar writes s as helm writes a string: quoted when a YAML 1.1
// reader would take it for something else (y, on, 1.0).
func helmScalar(s string) (string, error) {
	b, err := sigsyaml.Marshal(s)
	if err != nil {
		return "", err
	}
	text := strings.TrimSuffix(string(b), "\n")
	if strings.Contains(text, "\n") {
		return "", fmt.Errorf("chart name %q does not fit on one line", s)
	}
	return text, nil
}

// encodeYAML writes the index by encoding YAML nodes: those of the source
// (parsed again, aliases expanded) for what was read, helm's for what was
// added. It serves new indexes and sources whose layout is not helm's.
func (idx *Index) encodeYAML() ([]byte, error) {
	top := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "apiVersion"},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: idx.APIVersion},
	}}
	items := map[int]*yaml.Node{}
	names := map[string]*yaml.Node{}
	if idx.src.present() {
		b, err := idx.src.appendTo(nil, 0, int(idx.src.size()))
		if err != nil {
			return nil, err
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return nil, err
		}
		src := doc.Content[0]
		c := &converter{budget: 2*len(b) + 1024}
		if err := c.expandAliases(src); err != nil {
			return nil, err
		}
		err = walkEntries(src, func(_ string, k int, item *yaml.Node) error {
			items[k] = item
			return nil
		})
		if err != nil {
			return nil, err
		}
		for i := 0; i+1 < len(src.Content); i += 2 {
			if src.Content[i].Value == "entries" && src.Content[i+1].Kind == yaml.MappingNode {
				e := src.Content[i+1].Content
				for j := 0; j+1 < len(e); j += 2 {
					names[e[j].Value] = e[j]
				}
			}
		}
		top.Style, top.HeadComment, top.LineComment, top.FootComment = src.Style&^yaml.FlowStyle, src.HeadComment, src.LineComment, src.FootComment
		top.Content = src.Content
	}

	entries := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, name := range idx.Charts() {
		key := names[name]
		if key == nil {
			var err error
			if key, err = helmNode(name); err != nil {
				return nil, err
			}
		}
		list := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range idx.written(name) {
			item := items[int(e.ord)]
			if e.added != nil || item == nil {
				var err error
				if item, err = helmNode(e.added); err != nil {
					return nil, err
				}
			}
			list.Content = append(list.Content, item)
		}
		entries.Content = append(entries.Content, key, list)
	}
	generated := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle,
		Value: idx.Generated.Format(time.RFC3339Nano)}
	set := func(key string, val *yaml.Node) {
		for i := 0; i+1 < len(top.Content); i += 2 {
			if top.Content[i].Value == key {
				top.Content[i+1] = val
				return
			}
		}
		top.Content = append(top.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, val)
	}
	set("entries", entries)
	set("generated", generated)

	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	enc.CompactSeqIndent()
	if err := enc.Encode(top); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func (idx *Index) marshalJSON() ([]byte, error) {
	generated, err := json.Marshal(idx.Generated)
	if err != nil {
		return nil, err
	}
	members := slices.Clone(idx.jsonTop)
	if len(members) == 0 {
		apiVersion, _ := json.Marshal(idx.APIVersion)
		members = []jsonMember{{"apiVersion", apiVersion}}
	}
	set := func(key string, val []byte) {
		for i := range members {
			if members[i].Key == key {
				members[i].Val = val
				return
			}
		}
		members = append(members, jsonMember{key, val})
	}
	set("entries", nil) // written from the entries below
	set("generated", generated)

	// Written as json.Indent writes the whole document, one value at a
	// time: no second copy of the index is built.
	var out bytes.Buffer
	size := len(generated) + 64*len(idx.jsonTop)
	for _, es := range idx.charts {
		for _, e := range es {
			size += int(e.n) * 3 / 2
		}
	}
	out.Grow(size)
	indent := func(val []byte, depth int) error {
		return json.Indent(&out, val, strings.Repeat("  ", depth), "  ")
	}
	key := func(k string, depth int) {
		q, _ := json.Marshal(k)
		out.WriteString("\n" + strings.Repeat("  ", depth))
		out.Write(q)
		out.WriteString(": ")
	}
	var text []byte // an entry's text, read
	out.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			out.WriteByte(',')
		}
		key(m.Key, 1)
		if m.Key != "entries" {
			if err := indent(m.Val, 1); err != nil {
				return nil, err
			}
			continue
		}
		names := idx.Charts()
		if len(names) == 0 {
			out.WriteString("{}")
			continue
		}
		out.WriteByte('{')
		for i, name := range names {
			if i > 0 {
				out.WriteByte(',')
			}
			key(name, 2)
			es := idx.written(name)
			if len(es) == 0 {
				out.WriteString("[]")
				continue
			}
			out.WriteByte('[')
			for j, e := range es {
				if j > 0 {
					out.WriteByte(',')
				}
				var raw []byte
				if e.added != nil {
					raw, err = json.Marshal(e.added)
				} else {
					raw, err = idx.src.appendTo(text[:0], int(e.at), int(e.n))
					text = raw
				}
				if err != nil {
					return nil, err
				}
				out.WriteString("\n      ")
				if err := indent(raw, 3); err != nil {
					return nil, err
				}
			}
			out.WriteString("\n    ]")
		}
		out.WriteString("\n  }")
	}
	out.WriteString("\n}\n")
	return out.Bytes(), nil
}

// helmNode returns v as helm writes it (sigs.k8s.io/yaml, whose emitter
// quotes every string a YAML 1.1 reader would take for something else,
// such as y or on), as a node.
func helmNode(v any) (*yaml.Node, error) {
	b, err := sigsyaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	return doc.Content[0], nil
}

// Lookup returns idx's entry for exactly (name, version), or nil. (helm's
// IndexFile.Has takes version as a semver constraint.)
func Lookup(idx *Index, name, version string) *Entry {
	for _, e := range idx.charts[name] {
		if e.Version == version {
			return e
		}
	}
	return nil
}

// Entries returns the number of chart versions in idx.
func Entries(idx *Index) int {
	n := 0
	for _, es := range idx.charts {
		n += len(es)
	}
	return n
}

var (
	typeIndexFile    = reflect.TypeFor[IndexFile]()
	typeChartVersion = reflect.TypeFor[ChartVersion]()
	typeTime         = reflect.TypeFor[time.Time]()
)

// converter turns YAML nodes into the JSON that encoding/json decodes into
// a Go type, as helm's reader (sigs.k8s.io/yaml) does, with one difference:
// a scalar bound for a string keeps its exact text, where sigs.k8s.io/yaml
// first parses it (an unquoted 000 becomes the integer 0 and then "0").
type converter struct {
	budget int  // nodes left to visit: bounds the expansion of aliases
	keep   bool // convert fields helm does not know too (as untyped values)
	fields map[reflect.Type]map[string]reflect.Type
}

var errTooManyNodes = errors.New("document too large once its aliases are expanded")

// json appends the JSON form of n, for a Go value of type t (nil: any).
func (c *converter) json(b []byte, n *yaml.Node, t reflect.Type) ([]byte, error) {
	if c.budget--; c.budget < 0 {
		return nil, errTooManyNodes
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && t.Kind() == reflect.Interface {
		t = nil
	}
	switch n.Kind {
	case yaml.AliasNode:
		return c.json(b, n.Alias, t)
	case yaml.ScalarNode:
		return c.scalar(b, n, t)
	case yaml.SequenceNode:
		var elem reflect.Type
		if t != nil {
			if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
				return nil, fmt.Errorf("line %d: a list where %s belongs", n.Line, t)
			}
			elem = t.Elem()
		}
		b = append(b, '[')
		for i, e := range n.Content {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = c.json(b, e, elem); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case yaml.MappingNode:
		if t != nil && t.Kind() != reflect.Struct && t.Kind() != reflect.Map {
			return nil, fmt.Errorf("line %d: a mapping where %s belongs", n.Line, t)
		}
		b = append(b, '{')
		first := true
		b, err := c.members(b, n, t, &first)
		if err != nil {
			return nil, err
		}
		return append(b, '}'), nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

// members appends the members of mapping n. Merged mappings (<<) come
// first, so that the mapping's own keys win: encoding/json keeps the last
// of duplicate keys.
func (c *converter) members(b []byte, n *yaml.Node, t reflect.Type, first *bool) ([]byte, error) {
	var err error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() != "!!merge" {
			continue
		}
		for v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		merged := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			merged = v.Content
		}
		for _, m := range merged {
			for m.Kind == yaml.AliasNode {
				m = m.Alias
			}
			if m.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("line %d: merge of a value that is not a mapping", m.Line)
			}
			if b, err = c.members(b, m, t, first); err != nil {
				return nil, err
			}
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: a key that is not a scalar", k.Line)
		}
		var vt reflect.Type
		switch {
		case t == nil:
		case t.Kind() == reflect.Map:
			vt = t.Elem()
		default:
			var ok bool
			if vt, ok = c.field(t, k.Value); !ok && !c.keep {
				continue // a field helm does not know: kept in the source
			}
		}
		if !*first {
			b = append(b, ',')
		}
		*first = false
		b = appendString(b, k.Value)
		b = append(b, ':')
		if b, err = c.json(b, v, vt); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (c *converter) scalar(b []byte, n *yaml.Node, t reflect.Type) ([]byte, error) {
	if n.ShortTag() == "!!null" {
		return append(b, "null"...), nil
	}
	switch {
	case t == nil:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		j, err := json.Marshal(v)
		if err != nil { // .inf, .nan: no JSON number
			return appendString(b, n.Value), nil
		}
		return append(b, j...), nil
	case t == typeTime:
		ts, err := time.Parse(time.RFC3339Nano, n.Value)
		if err != nil {
			if err := n.Decode(&ts); err != nil {
				return nil, err
			}
		}
		j, err := json.Marshal(ts)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return append(b, j...), nil
	case t.Kind() == reflect.String:
		return appendString(b, n.Value), nil
	case t.Kind() == reflect.Bool, t.Kind() >= reflect.Int && t.Kind() <= reflect.Float64:
		v := reflect.New(t)
		if err := n.Decode(v.Interface()); err != nil {
			return nil, err
		}
		j, err := json.Marshal(v.Interface())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return append(b, j...), nil
	}
	return nil, fmt.Errorf("line %d: a scalar where %s belongs", n.Line, t)
}

// field returns the type of struct t's field that encoding/json would fill
// from key: exact name first, then any case.
func (c *converter) field(t reflect.Type, key string) (reflect.Type, bool) {
	if c.fields == nil {
		c.fields = map[reflect.Type]map[string]reflect.Type{}
	}
	m, ok := c.fields[t]
	if !ok {
		m = jsonFields(t)
		c.fields[t] = m
	}
	if ft, ok := m[key]; ok {
		return ft, true
	}
	for name, ft := range m {
		if strings.EqualFold(name, key) {
			return ft, true
		}
	}
	return nil, false
}

// jsonFields maps the JSON names of struct t's fields to their types,
// with the fields of embedded structs promoted, as encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			embedded = append(embedded, ft)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	for _, et := range embedded {
		for name, ft := range jsonFields(et) {
			if _, ok := m[name]; !ok {
				m[name] = ft
			}
		}
	}
	return m
}

// expandAliases replaces every alias below n by a copy of what it refers
// to, so that entries can be written in any order and alone; an index
// whose aliases expand beyond the budget is refused (a YAML bomb).
func (c *converter) expandAliases(n *yaml.Node) error {
	for i, child := range n.Content {
		if child.Kind == yaml.AliasNode {
			cp, err := c.copyNode(child.Alias)
			if err != nil {
				return err
			}
			n.Content[i] = cp
			continue
		}
		if err := c.expandAliases(child); err != nil {
			return err
		}
	}
	return nil
}

func (c *converter) copyNode(n *yaml.Node) (*yaml.Node, error) {
	if c.budget--; c.budget < 0 {
		return nil, errTooManyNodes
	}
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	cp := *n
	cp.Anchor = ""
	cp.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		var err error
		if cp.Content[i], err = c.copyNode(child); err != nil {
			return nil, err
		}
	}
	return &cp, nil
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
