package publisher

import (
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/chartsync/chartsync/internal/statefile"
)

// Memory is what a publisher remembers of a repository across cycles:
// every chart version an index read has listed, with its digest, and which
// pairs of different package bytes were found to hold the same chart
// content. It tells a lost index entry (listed once, missing now) from a
// package indexed for the first time, and an index entry edited by hand
// from a replaced package; and it spares re-reading a package to compare
// contents. With a file it survives restarts; the zero value keeps it in
// memory only. A lost file costs only precision: entries lost before it was
// lost count as first seen.
type Memory struct {
	file *statefile.BinaryFile
	mu   sync.Mutex
	// sums maps "name version" to the digest an index read first listed,
	// when that digest is 64 lowercase hex digits (as helm writes them);
	// other maps it to any other digest, kept as it was (an index may hold
	// anything). A key is in one of the two. Loaded keys and digests are
	// substrings of the file's text.
	sums  map[string][32]byte
	other map[string]string
	// verdicts maps "digestA digestB" to whether the two packages hold the
	// same chart content.
	verdicts map[string]bool
	loaded   bool
	dirty    bool
}

// LoadMemory returns the memory kept in file, read on first use (a cycle
// that replays its outcome never reads it); a missing, truncated or
// corrupt file is an empty memory. If a file named x.bin does not exist,
// x.json, the JSON format chartsync kept before, is read instead, and the
// first Save removes it.
func LoadMemory(file string) *Memory {
	return &Memory{file: statefile.NewBinaryFile(file, memoryMagic)}
}

// load reads the file once; the caller holds mu.
func (m *Memory) load() {
	if !m.loaded && m.file != nil {
		m.loaded = true
		var old legacyMemory
		fromJSON, err := m.file.Read(m.read, &old)
		switch {
		case fromJSON:
			m.fromLegacy(old)
			m.dirty = true // written anew by the first Save
		case err != nil:
			m.sums, m.other, m.verdicts = nil, nil, nil
		}
	}
	if m.sums == nil {
		m.sums = map[string][32]byte{}
	}
	if m.other == nil {
		m.other = map[string]string{}
	}
	if m.verdicts == nil {
		m.verdicts = map[string]bool{}
	}
}

// saw records every entry of idx as listed. It allocates only for entries
// not known yet.
func (m *Memory) saw(idx *Index) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.load()
	var buf [64]byte
	k := buf[:0] // "name version", built without allocating for a lookup
	for name, es := range idx.charts {
		for _, cv := range es {
			k = append(append(append(k[:0], name...), ' '), cv.Version...)
			if _, ok := m.sums[string(k)]; ok {
				continue
			}
			if _, ok := m.other[string(k)]; ok {
				continue
			}
			if sum, ok := parseSum(cv.Digest); ok {
				m.sums[string(k)] = sum
			} else {
				// A copy: cv.Digest may be part of the whole index's text.
				m.other[string(k)] = strings.Clone(cv.Digest)
			}
			m.dirty = true
		}
	}
}

// indexed returns the digest an earlier index read listed for name and
// version, the first one seen.
func (m *Memory) indexed(name, version string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.load()
	var buf [64]byte // on the stack for most names
	k := append(append(append(buf[:0], name...), ' '), version...)
	if sum, ok := m.sums[string(k)]; ok {
		return hex.EncodeToString(sum[:]), true
	}
	d, ok := m.other[string(k)]
	return d, ok
}

// same returns the recorded verdict for two package digests.
func (m *Memory) same(a, b string) (same, known bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.load()
	same, known = m.verdicts[a+" "+b]
	return same, known
}

func (m *Memory) setSame(a, b string, same bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.load()
	m.verdicts[a+" "+b] = same
	m.dirty = true
}

// Save writes the memory to its file, atomically, if it changed, then
// removes the file of the JSON format before, if any.
func (m *Memory) Save() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.file == nil || m.file.Name == "" || !m.dirty {
		return nil
	}
	if err := m.file.Write(m.write); err != nil {
		return fmt.Errorf("save publisher memory: %w", err)
	}
	m.dirty = false
	return nil
}

// The file is a statefile binary file:
//
//	magic, then uvarints s, o, v (entries of sums, other, verdicts) and t (bytes of text)
//	text: the keys of sums; each key of other and its digest; the keys of verdicts
//	s times: uvarint len(key), then 32 bytes of sha256
//	o times: uvarints len(key), len(digest)
//	v times: uvarint len(key), then 1 byte: 1 same, 0 not
//	CRC-32C (written by statefile)
const memoryMagic = "chartsync memory 1\n"

// write writes the memory in the format above; the caller holds mu. Keys
// are written in no order: sorting 100,000 of them would take a quarter of
// a cycle's work on the memory, and nothing needs the file to be the same
// bytes for the same memory.
func (m *Memory) write(w *statefile.BinaryWriter) {
	sums := keys(m.sums)
	other := keys(m.other)
	verdicts := keys(m.verdicts)
	text := 0
	for _, k := range sums {
		text += len(k)
	}
	for _, k := range other {
		text += len(k) + len(m.other[k])
	}
	for _, k := range verdicts {
		text += len(k)
	}
	w.Uvarint(uint64(len(sums)))
	w.Uvarint(uint64(len(other)))
	w.Uvarint(uint64(len(verdicts)))
	w.Uvarint(uint64(text))
	for _, k := range sums {
		w.String(k)
	}
	for _, k := range other {
		w.String(k)
		w.String(m.other[k])
	}
	for _, k := range verdicts {
		w.String(k)
	}
	for _, k := range sums {
		sum := m.sums[k]
		w.Uvarint(uint64(len(k)))
		w.Bytes(sum[:])
	}
	for _, k := range other {
		w.Uvarint(uint64(len(k)))
		w.Uvarint(uint64(len(m.other[k])))
	}
	for _, k := range verdicts {
		w.Uvarint(uint64(len(k)))
		if m.verdicts[k] {
			w.Bytes([]byte{1})
		} else {
			w.Bytes([]byte{0})
		}
	}
}

// keys returns m's keys, in a slice of the right size.
func keys[V any](m map[string]V) []string {
	return slices.AppendSeq(make([]string, 0, len(m)), maps.Keys(m))
}

// read loads the file in the format above; the caller holds mu.
func (m *Memory) read(r *statefile.BinaryReader) {
	// Each entry takes at least 33, 2 and 2 bytes.
	s, o, v := r.Count(33), r.Count(2), r.Count(2)
	r.Text()
	m.sums = make(map[string][32]byte, s)
	for range s {
		k := r.String()
		m.sums[k] = [32]byte(r.Bytes(32))
	}
	m.other = make(map[string]string, o)
	for range o {
		k := r.String()
		m.other[k] = r.String()
		if _, ok := m.sums[k]; ok {
			r.Corrupt() // a key in both
		}
	}
	m.verdicts = make(map[string]bool, v)
	for range v {
		k := r.String()
		b := r.Bytes(1)[0]
		m.verdicts[k] = b == 1
		if b > 1 {
			r.Corrupt()
		}
	}
	if len(m.sums) != s || len(m.other) != o || len(m.verdicts) != v {
		r.Corrupt() // a key twice
	}
}

// legacyMemory is the JSON format chartsync kept the memory in before.
type legacyMemory struct {
	Indexed map[string]string `json:"indexed"`
	Same    map[string]bool   `json:"same"`
}

// fromLegacy loads the memory from the JSON format before; the caller
// holds mu.
func (m *Memory) fromLegacy(old legacyMemory) {
	m.sums = make(map[string][32]byte, len(old.Indexed))
	m.other = map[string]string{}
	for k, d := range old.Indexed {
		if sum, ok := parseSum(d); ok {
			m.sums[k] = sum
		} else {
			m.other[k] = d
		}
	}
	m.verdicts = old.Same
}
