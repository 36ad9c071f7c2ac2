package publisher

import (
	"fmt"
	"sync"

	"github.com/chartsync/chartsync/internal/statefile"
)

// DigestCache remembers the sha256 of stored objects by key and store
// version, so that checking every package against the index reads only the
// objects that are new or changed since the last cycle. With a file it
// survives restarts; the zero value keeps it in memory only.
type DigestCache struct {
	file   string
	mu     sync.Mutex
	m      map[string]cached
	loaded bool
	dirty  bool
}

type cached struct {
	Version string `json:"version"`
	SHA256  string `json:"sha256,omitempty"`
	// Refused says why the object at Version cannot be indexed (not a
	// chart, misnamed), so that it is not read again.
	Refused string `json:"refused,omitempty"`
}

// LoadDigestCache returns the cache kept in file, read on first use (a
// cycle that replays its outcome never reads it); a missing or unreadable
// file is an empty cache, since the cache only saves reads.
func LoadDigestCache(file string) *DigestCache {
	return &DigestCache{file: file}
}

// load reads the file once; the caller holds mu.
func (c *DigestCache) load() {
	if !c.loaded {
		c.loaded = true
		if !statefile.ReadJSON(c.file, &c.m) {
			c.m = nil
		}
	}
	if c.m == nil {
		c.m = map[string]cached{}
	}
}

// Lookup returns the digest recorded for key at version.
func (c *DigestCache) Lookup(key, version string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.load()
	e, ok := c.m[key]
	return e.SHA256, ok && version != "" && e.Version == version && e.SHA256 != ""
}

// Put records the digest of key at version.
func (c *DigestCache) Put(key, version, sum string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.load()
	if e := c.m[key]; e.Version != version || e.SHA256 != sum {
		c.m[key] = cached{Version: version, SHA256: sum}
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
	e := c.m[key]
	if e.Version != version {
		e = cached{Version: version}
	}
	e.Refused = reason
	c.m[key] = e
	c.dirty = true
}

// Refused returns the reason recorded by Refuse for key at version.
func (c *DigestCache) Refused(key, version string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.load()
	e, ok := c.m[key]
	return e.Refused, ok && version != "" && e.Version == version && e.Refused != ""
}

// Save writes the cache to its file, atomically, if it changed. The file
// (0600) and a directory it creates (0700) are private, as the whole state
// dir is.
func (c *DigestCache) Save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.file == "" || !c.dirty {
		return nil
	}
	if err := statefile.WriteJSON(c.file, c.m); err != nil {
		return fmt.Errorf("save digest cache: %w", err)
	}
	c.dirty = false
	return nil
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
