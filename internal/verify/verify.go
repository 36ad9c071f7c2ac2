// Package verify proves what a chart repository serves was built from git:
// for each index entry it searches the git history for a commit whose
// build of that chart version gives exactly the indexed bytes. chartsync
// packages reproducibly, so an entry no commit builds was either replaced
// in the store or not built by chartsync.
package verify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/chartsync/chartsync/internal/gitsrc"
	"github.com/chartsync/chartsync/internal/packager"
	"github.com/chartsync/chartsync/internal/publisher"
)

// Status is the verdict on one index entry.
type Status string

const (
	Verified Status = "verified"   // a commit builds exactly the indexed bytes
	Differs  Status = "differs"    // git has this version, but no commit builds these bytes
	NotInGit Status = "not in git" // no commit of the history has this chart version
)

// Entry is one index entry and its verdict.
type Entry struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Digest  string `json:"digest"` // sha256 the index lists
	Status  Status `json:"status"`
	// Commit and Dir: where the indexed bytes were built (Verified), or the
	// newest commit and directory holding this version (Differs).
	Commit string `json:"commit,omitempty"`
	Dir    string `json:"dir,omitempty"`
	// Reason says why an entry differs.
	Reason string `json:"reason,omitempty"`
}

// Stats is what a Run cost.
type Stats struct {
	Commits int // commits whose tree was read
	Builds  int // chart versions packaged
}

type nv struct{ name, version string }

// Run checks every entry of idx against the first-parent history of head
// in repo, newest commit first: an entry is Verified when some commit's
// build of its (name, version), from a chart directory matching globs,
// gives the indexed digest. Its Commit is then the oldest commit on the
// chain whose build gives those bytes: where they first appeared. The
// whole chain is walked. A chart version is built once per distinct
// content it had in history: builds are keyed by the git tree id of the chart
// directory (and by the whole tree's id for a chart that reaches outside
// its directory through a symlink, a requirements.yaml or a file://
// dependency), so walking the history costs tree reads and Chart.yaml
// parses, and one build per distinct content. Entries come back sorted by
// name, then in index order.
//
// key, if not nil, names the content of a chart directory instead (equal
// keys must mean equal packages; "" for unknown: then the chart is built
// at every commit that has it).
func Run(ctx context.Context, repo *gitsrc.Repo, head string, globs []string, idx *publisher.Index, key func(fsys fs.FS, dir string) string, log *slog.Logger) ([]Entry, Stats, error) {
	var st Stats
	var out []*Entry
	want := map[nv]*Entry{}
	for _, name := range idx.Charts() {
		for _, cv := range idx.Versions(name) {
			e := &Entry{Name: cv.Name, Version: cv.Version, Digest: cv.Digest, Status: NotInGit}
			out = append(out, e)
			want[nv{cv.Name, cv.Version}] = e
		}
	}
	commits, err := repo.FirstParents(ctx, "", head)
	if err != nil {
		return nil, st, fmt.Errorf("list history of %s: %w", head, err)
	}
	tried := map[nv]map[string]bool{} // content keys already built for a version
	keys := &contentKeys{links: map[string]bool{}, key: key}
	found := map[nv]string{} // content key of the verified build
	for _, c := range commits {
		tree, err := repo.Tree(c.Hash)
		if err != nil {
			return nil, st, fmt.Errorf("read commit %s: %w", c.Hash, err)
		}
		st.Commits++
		charts, _ := packager.Discover(ctx, tree.FS, globs)
		var todo []packager.Chart
		for _, ch := range charts {
			k := nv{ch.Metadata.Name, ch.Metadata.Version}
			e := want[k]
			if e == nil {
				continue
			}
			if e.Status == NotInGit {
				e.Status, e.Commit, e.Dir = Differs, c.Hash, ch.Dir
			}
			key, err := keys.of(tree, ch)
			if err != nil {
				log.Warn("chart directory unreadable", "commit", c.Hash, "dir", ch.Dir, "err", err)
				continue
			}
			if e.Status == Verified && found[k] == key {
				// An older commit with the same content: the bytes were
				// built from here already.
				e.Commit, e.Dir = c.Hash, ch.Dir
				continue
			}
			if tried[k] == nil {
				tried[k] = map[string]bool{}
			}
			if tried[k][key] {
				continue
			}
			tried[k][key] = true
			todo = append(todo, ch)
		}
		digests := build(ctx, tree.FS, todo)
		st.Builds += len(todo)
		for i, ch := range todo {
			e := want[nv{ch.Metadata.Name, ch.Metadata.Version}]
			if digests[i] == e.Digest {
				e.Status, e.Commit, e.Dir = Verified, c.Hash, ch.Dir
				found[nv{ch.Metadata.Name, ch.Metadata.Version}], _ = keys.of(tree, ch)
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, st, fmt.Errorf("verify: %w", err)
		}
	}
	res := make([]Entry, len(out))
	for i, e := range out {
		if e.Status == Differs {
			e.Reason = "no commit builds the indexed sha256"
		}
		res[i] = *e
	}
	return res, st, nil
}

// build packages charts in parallel as chartsync publishes them (no lint,
// no signature: neither changes the bytes); a chart that fails to build
// gets an empty digest.
func build(ctx context.Context, fsys fs.FS, charts []packager.Chart) []string {
	out := make([]string, len(charts))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, c := range charts {
		g.Go(func() error {
			if pkg, err := packager.Build(ctx, fsys, c, packager.Options{Lint: packager.LintSkip}); err == nil {
				out[i] = pkg.Digest
			}
			return nil
		})
	}
	g.Wait()
	return out
}

// hasher is gitsrc's tree FS: Hash gives a name's git object id.
type hasher interface {
	Hash(name string) (string, error)
}

// contentKeys names what a chart's build depends on.
type contentKeys struct {
	links map[string]bool // directory tree id -> holds a symlink or requirements.yaml
	key   func(fs.FS, string) string
}

// of returns a key that is equal for two commits only if the chart builds
// the same bytes at both: the chart directory's tree id, or, for a chart
// that may read outside its directory, that and the root tree's id.
func (k *contentKeys) of(tree *gitsrc.Tree, c packager.Chart) (string, error) {
	if k.key != nil {
		if id := k.key(tree.FS, c.Dir); id != "" {
			return id, nil
		}
		return tree.Commit + " " + c.Dir, nil
	}
	h, ok := tree.FS.(hasher)
	if !ok {
		return "", errors.New("the tree cannot name its content (no Hash)")
	}
	id, err := h.Hash(c.Dir)
	if err != nil {
		return "", err
	}
	outside, ok := k.links[id]
	if !ok {
		sub, err := fs.Sub(tree.FS, c.Dir)
		if err != nil {
			return "", err
		}
		err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type()&fs.ModeSymlink != 0 || p == "requirements.yaml" {
				outside = true
				return fs.SkipAll
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("walk %s: %w", c.Dir, err)
		}
		k.links[id] = outside
	}
	for _, d := range c.Metadata.Dependencies {
		if d != nil && strings.HasPrefix(d.Repository, "file://") {
			outside = true
		}
	}
	if !outside {
		return id, nil
	}
	root, err := h.Hash(".")
	if err != nil {
		return "", err
	}
	return id + " " + root, nil
}
