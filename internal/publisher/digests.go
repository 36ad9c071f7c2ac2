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

// DigestCache remembers the sha256 of stored objects by key and store
// version, so that checking every package against the index reads only the
// objects that are new or changed since the last cycle. With a file it
// survives restarts; the zero value keeps it in memory only.
type DigestCache struct {
	file *statefile.BinaryFile
	mu   sync.Mutex
	m    map[string]cached
	// refused holds why the object at m[key].version cannot be indexed (not
	// a chart, misnamed), so that it is not read again. Few objects are
	// refused, so it is a map of its own rather than a field of every entry.
	refused map[string]string
	loaded  bool
	dirty   bool
}

// cached is what the cache knows of the object at a key: its store version
// and, unless all zero, its sha256. No sha256 is all zero in practice, so
// the zero value can stand for "not known" without a flag of its own.
type cached struct {
	version string
	sum     [32]byte
}

// parseSum returns the digest written as 64 lowercase hex digits, the only
// form digest writes; anything else is not ok, since Lookup could not give
// it back as it was put.
func parseSum(s string) (sum [32]byte, ok bool) {
	if len(s) != 2*len(sum) || strings.ToLower(s) != s {
		return sum, false
	}
	if _, err := hex.Decode(sum[:], []byte(s)); err != nil {
		return [32]byte{}, false // not what Decode wrote before it failed
	}
	return sum, true
}

// LoadDigestCache returns the cache kept in file, read on first use (a
// cycle that replays its outcome never reads it); a missing, truncated or
// corrupt file is an empty cache, since the cache only saves reads. If a
// file named x.bin does not exist, x.json, the JSON format chartsync kept
// before, is read instead, and the first Save removes it.
func LoadDigestCache(file string) *DigestCache {
	return &DigestCache{file: statefile.NewBinaryFile(file, digestMagic)}
}

// load reads the file once; the caller holds mu.
func (c *DigestCache) load() {
	if !c.loaded && c.file != nil {
		c.loaded = true
		var old legacyDigests
		fromJSON, err := c.file.Read(c.read, &old)
		switch {
		case fromJSON:
			c.fromLegacy(old)
			c.dirty = true // written anew by the first Save
		case err != nil:
			c.m, c.refused = nil, nil
		}
	}
	if c.m == nil {
		c.m = map[string]cached{}
	}
	if c.refused == nil {
		c.refused = map[string]string{}
	}
}

// Lookup returns the digest recorded for key at version.
func (c *DigestCache) Lookup(key, version string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.load()
	e, ok := c.m[key]
	if e.sum == ([32]byte{}) {
		return "", false
	}
	var h [64]byte // on the stack: one allocation, the string's
	hex.Encode(h[:], e.sum[:])
	return string(h[:]), ok && version != "" && e.version == version
}

// Put records the digest of key at version. A sum that is not 64 lowercase
// hex digits (digest never writes one) is not recorded: key is forgotten,
// as a sum unlike the one recorded replaces it and its refusal.
func (c *DigestCache) Put(key, version, sum string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.load()
	b, ok := parseSum(sum)
	if !ok && sum != "" {
		if _, had := c.m[key]; had {
			delete(c.m, key)
			delete(c.refused, key)
			c.dirty = true
		}
		return
	}
	if e := c.m[key]; e.version != version || e.sum != b {
		c.m[key] = cached{version: version, sum: b}
		delete(c.refused, key)
		c.dirty = true
	}
}

// Refuse records why the object at key and version cannot be indexed.
func (c *DigestCache) Refuse(key, version, reason string) {
	if version == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.load()
	if e := c.m[key]; e.version != version {
		c.m[key] = cached{version: version}
	}
	if reason != "" {
		c.refused[key] = reason
	} else {
		delete(c.refused, key)
	}
	c.dirty = true
}

// Refused returns the reason recorded by Refuse for key at version.
func (c *DigestCache) Refused(key, version string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.load()
	e, ok := c.m[key]
	r := c.refused[key]
	return r, ok && version != "" && e.version == version && r != ""
}

// Save writes the cache to its file, atomically, if it changed, then
// removes the file of the JSON format before, if any. The file (0600) and
// a directory it creates (0700) are private, as the whole state dir is.
func (c *DigestCache) Save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.file == nil || c.file.Name == "" || !c.dirty {
		return nil
	}
	if err := c.file.Write(c.write); err != nil {
		return fmt.Errorf("save digest cache: %w", err)
	}
	c.dirty = false
	return nil
}

// The file is a statefile binary file:
//
//	magic, then uvarints n (entries) and t (bytes of text)
//	text: each entry's key, version and refusal reason, one after another
//	n times: uvarints len(key), len(version), len(reason), then 32 bytes of sha256
//	CRC-32C (written by statefile)
const digestMagic = "chartsync digests 1\n"

// write writes the cache in the format above, keys in order; the caller
// holds mu.
func (c *DigestCache) write(w *statefile.BinaryWriter) {
	keys := slices.Sorted(maps.Keys(c.m))
	text := 0
	for _, key := range keys {
		text += len(key) + len(c.m[key].version) + len(c.refused[key])
	}
	w.Uvarint(uint64(len(keys)))
	w.Uvarint(uint64(text))
	for _, key := range keys {
		w.String(key)
		w.String(c.m[key].version)
		w.String(c.refused[key])
	}
	for _, key := range keys {
		e := c.m[key]
		w.Uvarint(uint64(len(key)))
		w.Uvarint(uint64(len(e.version)))
		w.Uvarint(uint64(len(c.refused[key])))
		w.Bytes(e.sum[:])
	}
}

// read loads the file in the format above into c.m and c.refused; the
// caller holds mu.
func (c *DigestCache) read(r *statefile.BinaryReader) {
	n := r.Count(35) // each entry takes at least 35 bytes
	r.Text()
	c.m = make(map[string]cached, n)
	for range n {
		key := r.String()
		e := cached{version: r.String()}
		reason := r.String()
		copy(e.sum[:], r.Bytes(32))
		c.m[key] = e
		if reason != "" {
			if c.refused == nil {
				c.refused = map[string]string{}
			}
			c.refused[key] = reason
		}
	}
	if len(c.m) != n {
		r.Corrupt() // a key twice
	}
}

// legacyDigests is the JSON format chartsync kept the cache in before.
type legacyDigests map[string]struct {
	Version string `json:"version"`
	SHA256  string `json:"sha256,omitempty"`
	Refused string `json:"refused,omitempty"`
}

// fromLegacy loads the cache from the JSON format before; the caller
// holds mu.
func (c *DigestCache) fromLegacy(old legacyDigests) {
	c.m = make(map[string]cached, len(old))
	c.refused = map[string]string{}
	for key, e := range old {
		// A sum that is not hex is not known, as Put would have it.
		sum, _ := parseSum(e.SHA256)
		c.m[key] = cached{version: e.Version, sum: sum}
		if e.Refused != "" {
			c.refused[key] = e.Refused
		}
	}
}

// saveDigests writes the digest cache. A failure (a full or read-only
// state dir) is a warning naming the file, never the cycle's failure: the
// index is written by then, and the cache only saves reads.
func (p *Publisher) saveDigests() {
	if err := p.cfg.Digests.Save(); err != nil {
		p.log.Warn("digest cache not saved: the next cycle reads again the packages it would have remembered",
			"file", p.cfg.Digests.file.Name, "err", err)
	}
}
