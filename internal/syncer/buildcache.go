package syncer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// buildCache remembers the digest of each chart directory's build at one
// commit, so that checking the already published versions against the
// index (issue 8: a build that differs from the published package fails)
// costs nothing while the commit does not change. A build depends only on
// the commit's tree, so (commit, directory) is a sound key; a new commit
// builds every published version in git once. A lost file costs one
// round of builds.
type buildCache struct {
	file    string
	Commit  string                `json:"commit"`
	Digests map[string]builtEntry `json:"digests"` // by chart directory
	dirty   bool
}

type builtEntry struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Digest  string `json:"digest"`
}

func loadBuildCache(file string) *buildCache {
	c := &buildCache{file: file}
	if b, err := os.ReadFile(file); err == nil {
		_ = json.Unmarshal(b, c)
	}
	if c.Digests == nil {
		c.Digests = map[string]builtEntry{}
	}
	return c
}

// lookup returns the digest of dir's build at commit for name and version.
func (c *buildCache) lookup(commit, dir, name, version string) (string, bool) {
	e, ok := c.Digests[dir]
	if !ok || c.Commit != commit || e.Name != name || e.Version != version {
		return "", false
	}
	return e.Digest, true
}

// put records a build at commit; a new commit drops the entries of the old.
func (c *buildCache) put(commit, dir string, e builtEntry) {
	if c.Commit != commit {
		c.Commit, c.Digests = commit, map[string]builtEntry{}
	}
	c.Digests[dir] = e
	c.dirty = true
}

func (c *buildCache) save() error {
	if !c.dirty {
		return nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.file), 0o755); err != nil {
		return fmt.Errorf("save build cache: %w", err)
	}
	tmp := c.file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("save build cache: %w", err)
	}
	if err := os.Rename(tmp, c.file); err != nil {
		return fmt.Errorf("save build cache: %w", err)
	}
	c.dirty = false
	return nil
}
