package publisher

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"time"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/chartsync/chartsync/internal/publisher/store"
	"github.com/chartsync/chartsync/internal/statefile"
)

// The index cache file is the YAML source (its length as 8 bytes, then the
// bytes), then a gob stream: a cacheHead and one cacheChart per chart, so
// that neither writing nor reading it holds a second copy of the index.
//
// An entry read from the source is written back from its text (see Index),
// so the cache keeps of it only what the publisher decides with (name,
// version, digest, urls) and where its text is: its ordinal in the YAML
// source or its JSON text. An entry added since it was read is written from
// its fields: the cache keeps it whole, as JSON, which holds any value a
// chart's metadata can (gob cannot hold nested untyped values).
type cacheHead struct {
	Format  int    // cacheFormat; a file of another format is not used
	Where   string // store and key: a cache is never used for another repository
	Version string // store version of the index it was parsed from

	APIVersion  string
	Generated   time.Time
	PublicKeys  []string
	Annotations map[string]string
	ServerInfo  []byte // JSON

	JSON bool
	// YAML: the source's layout.
	Layout *yamlLayout
	// JSON: the top-level members.
	JSONTop []jsonMember
	Charts  int // cacheCharts that follow
}

const cacheFormat = 3

type cacheChart struct {
	Name    string
	Entries []cacheEntry
}

type cacheEntry struct {
	Name, Version, Digest string
	URLs                  []string
	Ord                   int    // read from YAML: ordinal in the source; else -1
	JSON                  []byte // read from JSON: its text
	Added                 []byte // not read: the whole entry, as JSON
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
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	r := bufio.NewReaderSize(f, 1<<20)
	var n uint64
	if binary.Read(r, binary.BigEndian, &n) != nil || n > uint64(fi.Size()) {
		return nil
	}
	var src []byte
	if n > 0 {
		src = make([]byte, n)
		if _, err := io.ReadFull(r, src); err != nil {
			return nil
		}
	}
	dec := gob.NewDecoder(r)
	var h cacheHead
	if err := dec.Decode(&h); err != nil || h.Format != cacheFormat || h.Where != where || h.Version != version {
		return nil
	}
	idx := &Index{IndexFile: &IndexFile{APIVersion: h.APIVersion, Generated: h.Generated,
		PublicKeys: h.PublicKeys, Annotations: h.Annotations, Entries: make(map[string]ChartVersions, h.Charts)},
		json: h.JSON, src: src, layout: h.Layout, jsonTop: h.JSONTop, ord: map[*ChartVersion]int{}, jsonEntry: map[*ChartVersion]json.RawMessage{}}
	if h.ServerInfo != nil && json.Unmarshal(h.ServerInfo, &idx.ServerInfo) != nil {
		return nil
	}
	for range h.Charts {
		var c cacheChart
		if err := dec.Decode(&c); err != nil {
			return nil
		}
		cvs := make(ChartVersions, len(c.Entries))
		for i, e := range c.Entries {
			cv := &ChartVersion{Metadata: &chart.Metadata{Name: e.Name, Version: e.Version}, URLs: e.URLs, Digest: e.Digest}
			switch {
			case e.Added != nil:
				cv = &ChartVersion{}
				if json.Unmarshal(e.Added, cv) != nil {
					return nil
				}
				if cv.Metadata == nil {
					cv.Metadata = &chart.Metadata{}
				}
			case e.JSON != nil:
				idx.jsonEntry[cv] = e.JSON
			default:
				idx.ord[cv] = e.Ord
			}
			cvs[i] = cv
		}
		idx.Entries[c.Name] = cvs
	}
	return idx
}

// saveIndexCache writes idx, as parsed from version of the index at where,
// to file, atomically.
func saveIndexCache(file, where, version string, idx *Index) error {
	h := cacheHead{Format: cacheFormat, Where: where, Version: version,
		APIVersion: idx.APIVersion, Generated: idx.Generated, PublicKeys: idx.PublicKeys,
		Annotations: idx.Annotations, JSON: idx.json, Layout: idx.layout, JSONTop: idx.jsonTop, Charts: len(idx.Entries)}
	var err error
	if idx.ServerInfo != nil {
		if h.ServerInfo, err = json.Marshal(idx.ServerInfo); err != nil {
			return fmt.Errorf("save index cache: %w", err)
		}
	}
	err = statefile.Write(file, func(w io.Writer) error {
		if err := binary.Write(w, binary.BigEndian, uint64(len(idx.src))); err != nil {
			return err
		}
		if _, err := w.Write(idx.src); err != nil {
			return err
		}
		enc := gob.NewEncoder(w)
		if err := enc.Encode(&h); err != nil {
			return err
		}
		for name, cvs := range idx.Entries {
			c := cacheChart{Name: name, Entries: make([]cacheEntry, len(cvs))}
			for i, cv := range cvs {
				e := cacheEntry{Name: cv.Name, Version: cv.Version, Digest: cv.Digest, URLs: cv.URLs, Ord: -1}
				if k, ok := idx.ord[cv]; ok {
					e.Ord = k
				} else if raw, ok := idx.jsonEntry[cv]; ok {
					e.JSON = raw
				} else {
					e.Name, e.Version, e.Digest, e.URLs = "", "", "", nil
					if e.Added, err = json.Marshal(cv); err != nil {
						return err
					}
				}
				c.Entries[i] = e
			}
			if err := enc.Encode(&c); err != nil {
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
	names := slices.Sorted(maps.Keys(objs))
	h := sha256.New()
	var b []byte
	for _, name := range names {
		o := objs[name]
		b = append(b[:0], name...)
		b = append(b, 0)
		b = strconv.AppendInt(b, o.Size, 10)
		b = append(b, 0)
		b = append(b, o.Version...)
		b = append(b, '\n')
		h.Write(b)
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
