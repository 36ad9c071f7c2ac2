package syncer

import (
	"fmt"

	"github.com/chartsync/chartsync/internal/statefile"
)

// buildCache remembers the digest of chart builds by what they were built
// from, so that checking the already published versions against the index
// (issue 8: a build that differs from the published package fails) costs
// nothing while a chart's content does not change, whatever else a commit
// changes. The key is the chart's content key (contentKey) when the tree
// can name content, else the commit and the directory. A save keeps only
// the entries used since the last save: the charts of the latest cycle. A
// lost or unreadable file costs one round of builds.
type buildCache struct {
	file   string
	Builds map[string]builtEntry `json:"builds"` // by buildKey
	used   map[string]bool
	dirty  bool
}

type builtEntry struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Digest  string `json:"digest"`
}

// buildKey is the cache key of a build of dir at commit whose content key
// is content ("" if unknown).
func buildKey(commit, dir, content string) string {
	if content != "" {
		return "content " + content
	}
	return "commit " + commit + " " + dir
}

// loadBuildCache returns the cache kept in file, read on first use.
func loadBuildCache(file string) *buildCache {
	return &buildCache{file: file}
}

// load reads the file once: a cycle that replays its outcome never does.
func (c *buildCache) load() {
	if c.used != nil {
		return
	}
	c.used = map[string]bool{}
	statefile.ReadJSON(c.file, c)
	if c.Builds == nil {
		c.Builds = map[string]builtEntry{}
	}
}

// lookup returns the digest of the build under key of name and version.
func (c *buildCache) lookup(key, name, version string) (string, bool) {
	c.load()
	e, ok := c.Builds[key]
	if !ok || e.Name != name || e.Version != version {
		return "", false
	}
	if !c.used[key] {
		c.used[key], c.dirty = true, true
	}
	return e.Digest, true
}

// put records a build under key.
func (c *buildCache) put(key string, e builtEntry) {
	c.load()
	c.Builds[key] = e
	c.used[key], c.dirty = true, true
}

// save writes the entries used since the last save, and drops the others.
func (c *buildCache) save() error {
	if !c.dirty {
		return nil
	}
	for k := range c.Builds {
		if !c.used[k] {
			delete(c.Builds, k)
		}
	}
	if err := statefile.WriteJSON(c.file, c); err != nil {
		return fmt.Errorf("save build cache: %w", err)
	}
	c.used, c.dirty = map[string]bool{}, false
	return nil
}
