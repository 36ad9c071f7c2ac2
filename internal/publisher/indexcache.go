package publisher

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/repo"

	"github.com/chartsync/chartsync/internal/publisher/store"
	"github.com/chartsync/chartsync/internal/statefile"
)

// indexSnapshot is a parsed index as the index cache keeps it: what
// ParseIndex built from one stored version of index.yaml, in a form gob
// writes and reads back fast. Entries read from the source are matched to
// their source text by position (Ord, JSONEntry parallel to Entries), since
// pointers do not survive encoding.
type indexSnapshot struct {
	Where   string // store and key: a cache is never used for another repository
	Version string // store version of the index it was parsed from

	APIVersion  string
	Generated   time.Time
	PublicKeys  []string
	Annotations map[string]string
	ServerInfo  map[string]any
	Entries     map[string][]*repo.ChartVersion

	JSON bool
	// YAML: the source, each entry's ordinal in it, and its layout.
	Src    []byte
	Ord    map[string][]int
	Layout *snapLayout
	// JSON: the top-level members, and each entry's source text.
	JSONTop   []snapMember
	JSONEntry map[string][][]byte
	// Charts is the number of chartSnaps that follow the snapshot in the
	// file: Entries, Ord and JSONEntry are written one chart at a time,
	// so that encoding never buffers the whole index.
	Charts int
}

// chartSnap is one chart's part of Entries, Ord and JSONEntry.
type chartSnap struct {
	Name    string
	Entries []*repo.ChartVersion
	Ord     []int
	JSON    [][]byte
}

type snapMember struct {
	Key string
	Val []byte
}

type snapLayout struct {
	Generated, GenCol                               int
	Charts                                          []snapChart
	EntriesLine, EntriesCol, DashOffset, EntriesEnd int
}

type snapChart struct {
	Name                       string
	KeyLine, ItemLine, DashCol int
}

// snapshot returns idx as the cache keeps it.
func (idx *Index) snapshot(where, version string) *indexSnapshot {
	s := &indexSnapshot{Where: where, Version: version,
		APIVersion: idx.APIVersion, Generated: idx.Generated, PublicKeys: idx.PublicKeys,
		Annotations: idx.Annotations, ServerInfo: idx.ServerInfo,
		Entries: map[string][]*repo.ChartVersion{}, JSON: idx.json, Src: idx.src}
	for name, cvs := range idx.Entries {
		s.Entries[name] = cvs
	}
	if idx.json {
		s.JSONEntry = map[string][][]byte{}
		for name, cvs := range idx.Entries {
			raws := make([][]byte, len(cvs))
			for i, cv := range cvs {
				raws[i] = idx.jsonEntry[cv]
			}
			s.JSONEntry[name] = raws
		}
		for _, m := range idx.jsonTop {
			s.JSONTop = append(s.JSONTop, snapMember{m.key, m.val})
		}
		return s
	}
	s.Ord = map[string][]int{}
	for name, cvs := range idx.Entries {
		ords := make([]int, len(cvs))
		for i, cv := range cvs {
			k, ok := idx.ord[cv]
			if !ok {
				k = -1
			}
			ords[i] = k
		}
		s.Ord[name] = ords
	}
	if l := idx.layout; l != nil {
		s.Layout = &snapLayout{Generated: l.generated, GenCol: l.genCol, EntriesLine: l.entriesLine,
			EntriesCol: l.entriesCol, DashOffset: l.dashOffset, EntriesEnd: l.entriesEnd}
		for _, c := range l.charts {
			s.Layout.Charts = append(s.Layout.Charts, snapChart{c.name, c.keyLine, c.itemLine, c.dashCol})
		}
	}
	return s
}

// index rebuilds the Index the snapshot was taken of.
func (s *indexSnapshot) index() *Index {
	idx := &Index{IndexFile: &repo.IndexFile{APIVersion: s.APIVersion, Generated: s.Generated,
		PublicKeys: s.PublicKeys, Annotations: s.Annotations, ServerInfo: s.ServerInfo,
		Entries: make(map[string]repo.ChartVersions, len(s.Entries))}, json: s.JSON, src: s.Src}
	for name, cvs := range s.Entries {
		for _, cv := range cvs {
			if cv.Metadata == nil {
				cv.Metadata = &chart.Metadata{}
			}
		}
		idx.Entries[name] = cvs
	}
	if s.JSON {
		idx.jsonEntry = map[*repo.ChartVersion]json.RawMessage{}
		for name, cvs := range idx.Entries {
			for i, cv := range cvs {
				if i < len(s.JSONEntry[name]) && s.JSONEntry[name][i] != nil {
					idx.jsonEntry[cv] = s.JSONEntry[name][i]
				}
			}
		}
		for _, m := range s.JSONTop {
			idx.jsonTop = append(idx.jsonTop, jsonMember{m.Key, m.Val})
		}
		return idx
	}
	idx.ord = map[*repo.ChartVersion]int{}
	for name, cvs := range idx.Entries {
		for i, cv := range cvs {
			if i < len(s.Ord[name]) && s.Ord[name][i] >= 0 {
				idx.ord[cv] = s.Ord[name][i]
			}
		}
	}
	if l := s.Layout; l != nil {
		idx.layout = &yamlLayout{generated: l.Generated, genCol: l.GenCol, entriesLine: l.EntriesLine,
			entriesCol: l.EntriesCol, dashOffset: l.DashOffset, entriesEnd: l.EntriesEnd}
		for _, c := range l.Charts {
			idx.layout.charts = append(idx.layout.charts, chartLayout{c.Name, c.KeyLine, c.ItemLine, c.DashCol})
		}
	}
	return idx
}

// loadIndexCache returns the index cached in file if it was parsed from
// version of the index at where; nil otherwise (no file, another version,
// an unreadable file: the cache only saves work).
func loadIndexCache(file, where, version string) *Index {
	if file == "" || version == "" {
		return nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	dec := gob.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	var s indexSnapshot
	if err := dec.Decode(&s); err != nil || s.Where != where || s.Version != version {
		return nil
	}
	s.Entries, s.Ord, s.JSONEntry = map[string][]*repo.ChartVersion{}, map[string][]int{}, map[string][][]byte{}
	for range s.Charts {
		var c chartSnap
		if err := dec.Decode(&c); err != nil {
			return nil
		}
		s.Entries[c.Name], s.Ord[c.Name], s.JSONEntry[c.Name] = c.Entries, c.Ord, c.JSON
	}
	return s.index()
}

// saveIndexCache writes idx, as parsed from version of the index at where,
// to file, atomically.
func saveIndexCache(file, where, version string, idx *Index) error {
	snap := idx.snapshot(where, version)
	err := statefile.Write(file, func(w io.Writer) error {
		enc := gob.NewEncoder(w)
		head := *snap
		head.Entries, head.Ord, head.JSONEntry, head.Charts = nil, nil, nil, len(snap.Entries)
		if err := enc.Encode(&head); err != nil {
			return err
		}
		for name, cvs := range snap.Entries {
			if err := enc.Encode(&chartSnap{Name: name, Entries: cvs, Ord: snap.Ord[name], JSON: snap.JSONEntry[name]}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save index cache: %w", err)
	}
	return nil
}

// Survey lists the repository's prefix once and returns the store version
// of index.yaml ("" if there is none) and a digest of the package files
// listed, their names, sizes and versions (as Report.Listing): with the
// commit, the two say whether anything a cycle reads changed since. The
// listing is kept for the Index and the reconciliation that follow (see
// packages).
func (p *Publisher) Survey(ctx context.Context) (index, packages string, err error) {
	objs, err := p.store.List(ctx, p.key(""))
	if err != nil {
		return "", "", fmt.Errorf("list index: %w", err)
	}
	if objs == nil {
		objs = []store.Object{}
	}
	p.listed, p.created = objs, nil
	key := p.key("index.yaml")
	for _, o := range objs {
		if o.Key == key {
			index = o.Version
		}
	}
	p.surveyed = &index
	return index, listingDigest(p.packageObjects(objs)), nil
}

// listingDigest digests the names, sizes and versions of objs.
func listingDigest(objs map[string]store.Object) string {
	names := make([]string, 0, len(objs))
	for name := range objs {
		names = append(names, name)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, name := range names {
		o := objs[name]
		fmt.Fprintf(h, "%s\x00%d\x00%s\n", name, o.Size, o.Version)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cacheWritten caches idx as just written at store version ver, so that
// the next cycle does not read back what this one wrote. idx holds the
// source it was read from and the entries added since: Marshal writes from
// them exactly what was written (new entries of a chart go before the ones
// read, newest first). An index converted to another format is not cached:
// its source is in the old one.
func (p *Publisher) cacheWritten(idx *Index, ver string) {
	if p.cfg.IndexCache == "" || ver == "" || (idx.format != "" && idx.format != idx.Format()) {
		return
	}
	where := p.store.String() + " " + p.key("index.yaml")
	if err := saveIndexCache(p.cfg.IndexCache, where, ver, idx); err != nil {
		p.log.Warn("index cache not saved", "file", p.cfg.IndexCache, "err", err)
	}
}
