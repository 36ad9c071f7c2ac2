package publisher

import (
	"bytes"
	"slices"

	"go.yaml.in/yaml/v3"
)

// parseYAMLByChart parses an index laid out as helm writes it (block
// style, one document, chart names in one column under entries) one
// chart's list at a time: it holds the YAML nodes of one chart, where
// parsing the whole document holds those of every entry at once, many
// times the size of the text. It returns nil for any other text and for
// one it cannot read this way (an alias to an anchor of another chart, a
// quoted scalar running over a chart's name...): parseYAMLDocument then
// reads it, and reports what is wrong with it. What it returns is what
// parseYAMLDocument returns for the same text.
func parseYAMLByChart(b []byte) *Index {
	ls := lineStarts(b)
	// Lines in column 1: the top-level keys, one of them entries.
	var tops []int
	entries := 0
	for n := 1; n <= ls.count(); n++ {
		l := lineText(ls.line(b, n))
		if len(l) == 0 || l[0] == ' ' || l[0] == '#' {
			continue
		}
		if !isKeyStart(l[0]) {
			return nil // a document marker, a directive, a flow or complex key...
		}
		tops = append(tops, n)
		if string(l) == "entries:" {
			if entries != 0 {
				return nil
			}
			entries = n
		}
	}
	if entries == 0 {
		return nil
	}
	end := ls.count() + 1 // the line after entries' last
	if i := slices.Index(tops, entries); i+1 < len(tops) {
		end = tops[i+1]
	}

	// Chart names: the lines in the entries' first column that are not
	// items (helm writes a chart's "- " in the column of its name).
	var names []int
	col := 0
	for n := entries + 1; n < end; n++ {
		l := lineText(ls.line(b, n))
		t := bytes.TrimLeft(l, " ")
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		ind := len(l) - len(t)
		if col == 0 {
			col = ind
		}
		switch {
		case ind < col || t[0] == '\t':
			return nil
		case ind == col && t[0] == '-' && (len(t) == 1 || t[1] == ' '):
			if len(names) == 0 {
				return nil
			}
		case ind == col:
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil
	}

	// Everything but the entries' lines, as a document of its own.
	shift := end - entries - 1 // lines of entries' value
	rest := slices.Concat(b[:ls[entries]], b[ls[end-1]:])
	var doc yaml.Node
	if yaml.Unmarshal(rest, &doc) != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 ||
		doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	top := doc.Content[0]
	// Every line in column 1 must be a key of it: none is inside a
	// scalar. Lines are renumbered as in b.
	var keys []int
	var entriesVal *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		key, val := top.Content[i], top.Content[i+1]
		for _, n := range []*yaml.Node{key, val} {
			if n.Line > entries {
				n.Line += shift
			}
		}
		if key.Column != 1 {
			return nil
		}
		keys = append(keys, key.Line)
		if key.Line == entries {
			entriesVal = val
		}
	}
	if !slices.Equal(keys, tops) || entriesVal == nil || entriesVal.ShortTag() != "!!null" {
		return nil
	}

	c := &converter{budget: 2*len(b) + 1024}
	idx := &Index{src: region{b: b}, charts: map[string][]*Entry{}}
	if err := idx.readTop(c, top); err != nil {
		return nil
	}
	// Each chart's lines, as a document of its own. What layoutOf needs
	// of each is kept: its name and the first item's position.
	*entriesVal = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	seen := map[string]bool{}
	k := 0
	for i, n := range names {
		next := end
		if i+1 < len(names) {
			next = names[i+1]
		}
		var doc yaml.Node
		if yaml.Unmarshal(b[ls[n-1]:ls[next-1]], &doc) != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
			return nil
		}
		m := doc.Content[0]
		if m.Kind != yaml.MappingNode || len(m.Content) != 2 {
			return nil
		}
		key, list := m.Content[0], m.Content[1]
		if key.Kind != yaml.ScalarNode || key.Line != 1 || seen[key.Value] ||
			list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
			return nil
		}
		seen[key.Value] = true
		for _, item := range list.Content {
			if deref(item).ShortTag() != "!!null" {
				if idx.readItem(c, key.Value, k, item) != nil {
					return nil
				}
			}
			k++
		}
		first := list.Content[0]
		key.Line += n - 1
		stub := &yaml.Node{Kind: yaml.SequenceNode, Style: list.Style,
			Content: []*yaml.Node{{Line: first.Line + n - 1, Column: first.Column}}}
		entriesVal.Content = append(entriesVal.Content, key, stub)
	}
	idx.layout = layoutOf(b, top)
	if idx.layout == nil {
		return nil
	}
	return idx
}

// isKeyStart reports whether a line starting with c in column 1 can start
// a plain or quoted key of a block mapping.
func isKeyStart(c byte) bool {
	return c == '"' || c == '\'' || c == '_' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}
