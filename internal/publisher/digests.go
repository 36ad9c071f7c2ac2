package publisher

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"maps"
	"os"
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
	file   string
	legacy string // the JSON file of the format before, read if file is missing
	mu     sync.Mutex
	m      map[string]cached
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
	c := &DigestCache{file: file}
	if base, ok := strings.CutSuffix(file, ".bin"); ok {
		c.legacy = base + ".json"
	}
	return c
}

// load reads the file once; the caller holds mu.
func (c *DigestCache) load() {
	if !c.loaded {
		c.loaded = true
		err := c.read()
		if errors.Is(err, fs.ErrNotExist) && c.legacy != "" {
			// Written as the new format by the first Save, which then
			// removes the old file.
			c.dirty = c.readLegacy()
		} else if err != nil {
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
	if c.file == "" || !c.dirty {
		return nil
	}
	if err := statefile.Write(c.file, c.write); err != nil {
		return fmt.Errorf("save digest cache: %w", err)
	}
	c.dirty = false
	if c.legacy != "" {
		if err := os.Remove(c.legacy); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove old digest cache: %w", err)
		}
		c.legacy = ""
	}
	return nil
}

// The file is
//
//	magic, then uvarints n (entries) and t (bytes of text)
//	text: each entry's key, version and refusal reason, one after another
//	n times: uvarints len(key), len(version), len(reason), then 32 bytes of sha256
//	CRC-32C (Castagnoli) of all the above, 4 bytes big-endian
//
// All the strings come first so that a load reads them into one string
// that the entries share, rather than allocating three strings an entry.
const digestMagic = "chartsync digests 1\n"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// write writes the cache in the format above, keys in order; the caller
// holds mu.
func (c *DigestCache) write(w io.Writer) error {
	keys := slices.Sorted(maps.Keys(c.m))
	h := crc32.New(castagnoli)
	// bw keeps the first error of any write, and Flush returns it.
	bw := bufio.NewWriter(io.MultiWriter(w, h))
	bw.WriteString(digestMagic)
	text := 0
	for _, key := range keys {
		text += len(key) + len(c.m[key].version) + len(c.refused[key])
	}
	var buf [3 * binary.MaxVarintLen64]byte
	bw.Write(binary.AppendUvarint(binary.AppendUvarint(buf[:0], uint64(len(keys))), uint64(text)))
	for _, key := range keys {
		bw.WriteString(key)
		bw.WriteString(c.m[key].version)
		bw.WriteString(c.refused[key])
	}
	for _, key := range keys {
		e := c.m[key]
		b := binary.AppendUvarint(buf[:0], uint64(len(key)))
		b = binary.AppendUvarint(b, uint64(len(e.version)))
		b = binary.AppendUvarint(b, uint64(len(c.refused[key])))
		bw.Write(b)
		bw.Write(e.sum[:])
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(binary.BigEndian.AppendUint32(nil, h.Sum32()))
	return err
}

var errCorrupt = errors.New("corrupt digest cache")

// read loads the file in the format above into c.m and c.refused, in one
// buffered pass; the caller holds mu.
func (c *DigestCache) read() error {
	f, err := os.Open(c.file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size() - 4 // without the checksum
	if size < int64(len(digestMagic)) {
		return errCorrupt
	}
	h := crc32.New(castagnoli)
	r := bufio.NewReaderSize(io.TeeReader(io.LimitReader(f, size), h), 1<<16)
	if magic, err := r.Peek(len(digestMagic)); err != nil || string(magic) != digestMagic {
		return errCorrupt
	}
	r.Discard(len(digestMagic))
	n, err1 := binary.ReadUvarint(r)
	t, err2 := binary.ReadUvarint(r)
	// Each entry takes at least 35 bytes, each byte of text one: a count
	// the file cannot hold is not allocated for.
	if err1 != nil || err2 != nil || n > uint64(size)/35 || t > uint64(size) {
		return errCorrupt
	}
	var sb strings.Builder
	sb.Grow(int(t))
	if _, err := io.CopyN(&sb, r, int64(t)); err != nil {
		return errCorrupt
	}
	text := sb.String()
	c.m = make(map[string]cached, n)
	off := uint64(0)
	next := func() (string, bool) {
		l, err := binary.ReadUvarint(r)
		if err != nil || l > t-off {
			return "", false
		}
		s := text[off : off+l]
		off += l
		return s, true
	}
	for range n {
		key, ok1 := next()
		version, ok2 := next()
		reason, ok3 := next()
		sum, err := r.Peek(32)
		if !ok1 || !ok2 || !ok3 || err != nil {
			return errCorrupt
		}
		e := cached{version: version}
		copy(e.sum[:], sum)
		r.Discard(32)
		c.m[key] = e
		if reason != "" {
			if c.refused == nil {
				c.refused = map[string]string{}
			}
			c.refused[key] = reason
		}
	}
	if _, err := r.ReadByte(); err != io.EOF || off != t || len(c.m) != int(n) {
		return errCorrupt
	}
	var sum [4]byte
	if _, err := io.ReadFull(f, sum[:]); err != nil || binary.BigEndian.Uint32(sum[:]) != h.Sum32() {
		return errCorrupt
	}
	return nil
}

// readLegacy loads the JSON format chartsync kept before and reports
// whether it read one; the caller holds mu.
func (c *DigestCache) readLegacy() bool {
	var old map[string]struct {
		Version string `json:"version"`
		SHA256  string `json:"sha256,omitempty"`
		Refused string `json:"refused,omitempty"`
	}
	if !statefile.ReadJSON(c.legacy, &old) {
		return false
	}
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
	return true
}

// saveDigests writes the digest cache. A failure (a full or read-only
// state dir) is a warning naming the file, never the cycle's failure: the
// index is written by then, and the cache only saves reads.
func (p *Publisher) saveDigests() {
	if err := p.cfg.Digests.Save(); err != nil {
		p.log.Warn("digest cache not saved: the next cycle reads again the packages it would have remembered",
			"file", p.cfg.Digests.file, "err", err)
	}
}
