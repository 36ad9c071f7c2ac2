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
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chartsync/chartsync/internal/publisher/store"
	"github.com/chartsync/chartsync/internal/statefile"
)

// The index cache file is the index's text (the YAML source, or the JSON
// entries' texts; its length as 8 bytes, then the bytes), then a gob
// stream: a cacheHead and one cacheChart per chart. The text is not read
// when the cache is loaded: the Index reads from the file what it writes
// (see region), so that a cached index's text is not held in memory.
//
// Of an entry read, the cache keeps what the Index does: its Entry fields
// and where its text is. An entry added since it was read is written from
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
	// YAML: the source's layout, and the number of entries read from it.
	Layout *yamlLayout
	Read   int
	// JSON: the top-level members.
	JSONTop []jsonMember
	Charts  int // cacheCharts that follow
}

const cacheFormat = 5

// cacheChart is one chart's entries, in order. Their strings are
// concatenated, so that a chart's entries are read with a few allocations.
type cacheChart struct {
	Name string
	// Per entry: its ordinal in the YAML source, or ordJSON (read from
	// JSON: its text is Lens[5i+4] bytes at Ats[i] in the text), or
	// ordAdded (its next Added).
	Ords []int32
	Ats  []int64
	// Per entry, the lengths of its name (-1: the chart's), version, digest
	// and url in Strings, and of its JSON text.
	Lens    []int32
	Strings string
	Added   [][]byte
}

const (
	ordJSON  = -1
	ordAdded = -2
)

// loadIndexCache returns the index cached in file if it was parsed from
// version of the index at where; nil otherwise (no file, another version,
// an unreadable file: the cache only saves work). The index keeps the file
// open, to read its text from.
func loadIndexCache(file, where, version string) *Index {
	if file == "" || version == "" {
		return nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	idx := readIndexCache(f, where, version)
	if idx == nil || idx.src.f == nil {
		f.Close()
	}
	return idx
}

func readIndexCache(f *os.File, where, version string) *Index {
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	var b [8]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return nil
	}
	n := int64(binary.BigEndian.Uint64(b[:]))
	if n < 0 || n > fi.Size()-8 {
		return nil
	}
	if _, err := f.Seek(8+n, io.SeekStart); err != nil {
		return nil
	}
	dec := gob.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	var h cacheHead
	if err := dec.Decode(&h); err != nil || h.Format != cacheFormat || h.Where != where || h.Version != version {
		return nil
	}
	idx := &Index{IndexHeader: IndexHeader{APIVersion: h.APIVersion, Generated: h.Generated,
		PublicKeys: h.PublicKeys, Annotations: h.Annotations},
		charts: make(map[string][]*Entry, h.Charts), read: h.Read,
		json: h.JSON, layout: h.Layout, jsonTop: h.JSONTop}
	if n > 0 {
		idx.src = region{f: f, off: 8, n: n}
	}
	if h.ServerInfo != nil && json.Unmarshal(h.ServerInfo, &idx.ServerInfo) != nil {
		return nil
	}
	for range h.Charts {
		var c cacheChart
		if err := dec.Decode(&c); err != nil {
			return nil
		}
		es, ok := c.entries()
		if !ok {
			return nil
		}
		idx.charts[c.Name] = es
	}
	return idx
}

// entries returns the chart's entries, their strings slices of c's.
func (c *cacheChart) entries() ([]*Entry, bool) {
	n := len(c.Ords)
	if len(c.Lens) != 5*n || len(c.Ats) != n {
		return nil, false
	}
	slab := make([]Entry, n)
	es := make([]*Entry, n)
	sp, added := 0, c.Added
	ok := true
	str := func(l int32) string {
		if l < 0 || sp+int(l) > len(c.Strings) {
			ok = false
			return ""
		}
		sp += int(l)
		return c.Strings[sp-int(l) : sp]
	}
	for i := range n {
		e, lens := &slab[i], c.Lens[5*i:5*i+5]
		if e.Name = c.Name; lens[0] >= 0 {
			e.Name = str(lens[0])
		}
		e.Version, e.Digest, e.URL = str(lens[1]), str(lens[2]), str(lens[3])
		e.ord, e.at, e.n = c.Ords[i], c.Ats[i], lens[4]
		switch {
		case e.ord == ordAdded && len(added) > 0:
			cv := &ChartVersion{}
			if json.Unmarshal(added[0], cv) != nil || cv.Metadata == nil {
				return nil, false
			}
			*e, added = *entryOf(cv), added[1:]
			e.added = cv
		case e.ord < ordJSON:
			return nil, false
		}
		es[i] = e
	}
	return es, ok && len(added) == 0
}

// saveIndexCache writes idx, as parsed from version of the index at where,
// to file, atomically.
func saveIndexCache(file, where, version string, idx *Index) error {
	h := cacheHead{Format: cacheFormat, Where: where, Version: version,
		APIVersion: idx.APIVersion, Generated: idx.Generated, PublicKeys: idx.PublicKeys,
		Annotations: idx.Annotations, JSON: idx.json, Layout: idx.layout, Read: idx.read,
		JSONTop: idx.jsonTop, Charts: len(idx.charts)}
	var err error
	if idx.ServerInfo != nil {
		if h.ServerInfo, err = json.Marshal(idx.ServerInfo); err != nil {
			return fmt.Errorf("save index cache: %w", err)
		}
	}
	err = statefile.Write(file, func(w io.Writer) error {
		if err := binary.Write(w, binary.BigEndian, uint64(idx.src.size())); err != nil {
			return err
		}
		if idx.src.f != nil {
			_, err = io.Copy(w, io.NewSectionReader(idx.src.f, idx.src.off, idx.src.n))
		} else {
			_, err = w.Write(idx.src.b)
		}
		if err != nil {
			return err
		}
		enc := gob.NewEncoder(w)
		if err := enc.Encode(&h); err != nil {
			return err
		}
		var strs strings.Builder
		for name, es := range idx.charts {
			c := cacheChart{Name: name, Ords: make([]int32, len(es)), Ats: make([]int64, len(es)),
				Lens: make([]int32, 0, 5*len(es))}
			strs.Reset()
			for i, e := range es {
				fields := []string{e.Name, e.Version, e.Digest, e.URL}
				c.Ords[i], c.Ats[i] = e.ord, e.at
				if e.added != nil {
					c.Ords[i], fields = ordAdded, []string{"", "", "", ""}
					b, err := json.Marshal(e.added)
					if err != nil {
						return err
					}
					c.Added = append(c.Added, b)
				}
				for k, f := range fields {
					if k == 0 && f == name {
						c.Lens = append(c.Lens, -1)
						continue
					}
					c.Lens = append(c.Lens, int32(len(f)))
					strs.WriteString(f)
				}
				c.Lens = append(c.Lens, e.n)
			}
			c.Strings = strs.String()
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

// A region is an index's text (see Index.src): in memory, or n bytes at
// off in the index cache file, so that a cached index's text is read
// only when written, piece by piece, into the output.
type region struct {
	b      []byte
	f      *os.File
	off, n int64
}

// present reports whether there is a text, even an empty one.
func (r region) present() bool { return r.b != nil || r.f != nil }

func (r region) size() int64 {
	if r.f != nil {
		return r.n
	}
	return int64(len(r.b))
}

// appendTo appends the n bytes at at to out.
func (r region) appendTo(out []byte, at, n int) ([]byte, error) {
	if r.f == nil {
		return append(out, r.b[at:at+n]...), nil
	}
	if at < 0 || n < 0 || int64(at+n) > r.n {
		return out, fmt.Errorf("index cache: %d bytes at %d out of its %d", n, at, r.n)
	}
	out = slices.Grow(out, n)
	if _, err := r.f.ReadAt(out[len(out):len(out)+n], r.off+int64(at)); err != nil {
		return out, fmt.Errorf("index cache: %w", err)
	}
	return out[:len(out)+n], nil
}

// Survey lists the repository's prefix once and returns the store version
// of index.yaml ("" if there is none) and a digest of the package files
// listed, their names, sizes and versions (as Report.Listing): with the
// commit, the two say whether anything a cycle reads changed since. The
// listing is kept for the Index and the reconciliation that follow (see
// packages).
func (p *Publisher) Survey(ctx context.Context) (index, packages string, err error) {
	objs, err := p.store.List(ctx, p.prefix)
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
	return index, p.listingDigest(objs), nil
}

// listingDigest digests the names, sizes and versions of the package files
// among objs, which are in key order.
func (p *Publisher) listingDigest(objs []store.Object) string {
	h := sha256.New()
	var b []byte
	for _, o := range objs {
		if !p.isPackage(o.Key) {
			continue
		}
		b = append(b[:0], o.Key[len(p.prefix):]...)
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
