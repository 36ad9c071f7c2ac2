package syncer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime"

	"github.com/chartsync/chartsync/internal/config"
	"github.com/chartsync/chartsync/internal/statefile"
)

// decisions remembers, in the state dir, what the last good cycle of each
// repository decided: at which commit, on which version of index.yaml, and
// the outcome of each chart directory. A cycle that finds the same commit
// and the same index version has nothing new to decide: it replays the
// decisions instead of discovering and packaging (see noop), and only the
// reconcile of the store's listing runs. It survives restarts; a lost or
// unreadable file costs one full cycle.
type decisions struct {
	file string
	// Commit is the last commit whose tree problems were logged.
	Commit string               `json:"commit"`
	Repos  map[string]*decision `json:"repositories"`
	dirty  bool
}

// decision is one repository's last good cycle.
type decision struct {
	Config      string    `json:"config"` // fingerprint of the settings it was decided with
	Commit      string    `json:"commit"`
	Index       string    `json:"index"` // store version of index.yaml after the cycle; never ""
	GitCharts   int       `json:"git_charts"`
	GitVersions int       `json:"git_versions"`
	Conflicts   int       `json:"conflicts"`
	Charts      []decided `json:"charts"`
	// Listing and Outcome are set by a cycle that changed nothing: the
	// digest of the package listing it reconciled (publisher.Survey) and
	// what it reported. A cycle that finds the same commit, index version
	// and listing again reports the same without reading anything else
	// (see replay).
	Listing string   `json:"listing,omitempty"`
	Outcome *outcome `json:"outcome,omitempty"`
}

// outcome is a repository's report from a cycle that changed nothing.
type outcome struct {
	Entries                   int
	Missing, Modified, Edited []string
	Drifted                   []Drift
	Charts                    []decided // every chart's result: failed if Reason is set, else skipped
}

// decided is one chart directory's outcome: indexed (Digest is this site's
// build, compared with the index every cycle), or failed for a reason that
// only a new commit can change (Reason, Err).
type decided struct {
	Dir     string `json:"dir"`
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
	Digest  string `json:"digest,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Err     string `json:"err,omitempty"`
}

func loadDecisions(file string) *decisions {
	d := &decisions{file: file}
	if !statefile.ReadJSON(file, d) {
		d.Commit, d.Repos = "", nil
	}
	if d.Repos == nil {
		d.Repos = map[string]*decision{}
	}
	return d
}

// fingerprint identifies what a repository's decisions depend on besides
// the commit and the index: the git source, the repository's table, its
// store's table and the chartsync binary (an upgrade may package or check
// differently). Any change (a reload with new globs, prefix, lint mode or
// store; a new binary) makes a full cycle.
func fingerprint(cfg *config.Config, r config.Repository) string {
	exe := ""
	if name, err := os.Executable(); err == nil {
		if fi, err := os.Stat(name); err == nil {
			exe = fmt.Sprintf("%s %d %d", name, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	b, err := json.Marshal(struct {
		Binary, Go  string
		URL, Branch string
		Repository  config.Repository
		Store       config.Store
	}{exe, runtime.Version(), cfg.Git.URL, cfg.Git.Branch, r, cfg.Stores[r.Store]})
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// lookup returns the decision for repository name at commit on index
// version index, if there is one made with the settings fp.
func (d *decisions) lookup(name, fp, commit, index string) *decision {
	dec := d.Repos[name]
	if dec == nil || fp == "" || dec.Config != fp || dec.Commit != commit || index == "" || dec.Index != index {
		return nil
	}
	return dec
}

// set records the decision of a good cycle of repository name, or forgets
// the repository's decision when dec is nil (a cycle that was not good).
func (d *decisions) set(name string, dec *decision) {
	if dec == nil {
		if _, ok := d.Repos[name]; !ok {
			return
		}
		delete(d.Repos, name)
	} else {
		d.Repos[name] = dec
	}
	d.dirty = true
}

// seen records that commit's tree problems were logged.
func (d *decisions) seen(commit string) {
	if d.Commit != commit {
		d.Commit, d.dirty = commit, true
	}
}

func (d *decisions) save() error {
	if !d.dirty {
		return nil
	}
	if err := statefile.WriteJSON(d.file, d); err != nil {
		return fmt.Errorf("save decisions: %w", err)
	}
	d.dirty = false
	return nil
}
