package publisher

import (
	"fmt"
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
	file   string
	mu     sync.Mutex
	m      memoryFile
	loaded bool
	dirty  bool
}

type memoryFile struct {
	// Indexed maps "name version" to the digest an index read listed.
	Indexed map[string]string `json:"indexed"`
	// Same maps "digestA digestB" to whether the two packages hold the
	// same chart content.
	Same map[string]bool `json:"same"`
}

// LoadMemory returns the memory kept in file, read on first use (a cycle
// that replays its outcome never reads it); a missing or unreadable file is
// an empty memory.
func LoadMemory(file string) *Memory {
	return &Memory{file: file}
}

// load reads the file once; the caller holds mu.
func (m *Memory) load() {
	if !m.loaded {
		m.loaded = true
		statefile.ReadJSON(m.file, &m.m)
	}
	if m.m.Indexed == nil {
		m.m.Indexed = map[string]string{}
	}
	if m.m.Same == nil {
		m.m.Same = map[string]bool{}
	}
}

func nvKey(name, version string) string { return name + " " + version }

// saw records every entry of idx as listed.
func (m *Memory) saw(idx *Index) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.load()
	var k []byte // nvKey, built without allocating for a lookup
	for name, es := range idx.charts {
		for _, cv := range es {
			k = append(append(append(k[:0], name...), ' '), cv.Version...)
			if _, ok := m.m.Indexed[string(k)]; !ok {
				m.m.Indexed[string(k)] = cv.Digest
				m.dirty = true
			}
		}
	}
}

// indexed returns the digest an earlier index read listed for name and
// version, the first one seen.
func (m *Memory) indexed(name, version string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.load()
	d, ok := m.m.Indexed[nvKey(name, version)]
	return d, ok
}

// same returns the recorded verdict for two package digests.
func (m *Memory) same(a, b string) (same, known bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.load()
	same, known = m.m.Same[a+" "+b]
	return same, known
}

func (m *Memory) setSame(a, b string, same bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.load()
	m.m.Same[a+" "+b] = same
	m.dirty = true
}

// Save writes the memory to its file, atomically, if it changed.
func (m *Memory) Save() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.file == "" || !m.dirty {
		return nil
	}
	if err := statefile.WriteJSON(m.file, m.m); err != nil {
		return fmt.Errorf("save publisher memory: %w", err)
	}
	m.dirty = false
	return nil
}
