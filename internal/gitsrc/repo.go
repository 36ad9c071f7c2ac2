package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// ErrNotFirstParent is returned by FirstParents when from is not on the
// first-parent chain of to (e.g. the branch was force-pushed).
var ErrNotFirstParent = errors.New("not on the first-parent chain")

// Repo is the bare repository Sync keeps in a state dir, for reading any
// commit of its history. It is safe for concurrent use; it only reads.
type Repo struct {
	dir  string
	st   *filesystem.Storage
	objs *objects
}

func newRepo(dir string) *Repo {
	return repoOf(dir, newStorage(dir))
}

func repoOf(dir string, st *filesystem.Storage) *Repo {
	return &Repo{dir: dir, st: st, objs: &objects{get: st.EncodedObject}}
}

// Open opens the repository Sync keeps in dir (Options.Dir), without
// fetching, for reading its history. It keeps the pack files open (reading
// a commit costs no open), so Close it when done; Trees it returned are
// unreadable after that. Sync may run while it is open: Open sees the
// commits of the moment it was opened, and new ones as they arrive.
func Open(dir string) (*Repo, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve repository dir: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "objects")); err != nil {
		return nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	st := filesystem.NewStorageWithOptions(newPrivateFS(dir), cache.NewObjectLRU(objectCacheSize),
		filesystem.Options{LargeObjectThreshold: largeObject, KeepDescriptors: true})
	r := repoOf(dir, st)
	if _, err := r.resolve(plumbing.HEAD.String()); err != nil {
		r.Close()
		return nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	return r, nil
}

// Close releases the open files of a Repo from Open. It is a no-op for the
// Repo of a Tree from Sync, which keeps no file open.
func (r *Repo) Close() error {
	r.objs.mu.Lock()
	defer r.objs.mu.Unlock()
	return r.st.Close()
}

// Commit is one commit of the history.
type Commit struct {
	// Hash is the full hex id.
	Hash string
	// Time is the committer time, in the committer's time zone.
	Time time.Time
	// Subject is the first line of the message.
	Subject string
}

// resolve turns rev (a full hex commit id, "HEAD", or a branch name) into
// a commit id.
func (r *Repo) resolve(rev string) (plumbing.Hash, error) {
	if h, ok := parseHash(rev); ok {
		return h, nil
	}
	name := plumbing.ReferenceName(rev)
	if rev != plumbing.HEAD.String() {
		name = plumbing.NewBranchReferenceName(rev)
	}
	r.objs.mu.Lock()
	ref, err := storer.ResolveReference(r.st, name)
	r.objs.mu.Unlock()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("resolve %s: %w", rev, err)
	}
	return ref.Hash(), nil
}

func (r *Repo) commit(h plumbing.Hash) (*object.Commit, error) {
	r.objs.mu.Lock()
	defer r.objs.mu.Unlock()
	c, err := object.GetCommit(r.st, h)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	return c, nil
}

// tree returns the tree of commit h; its directories are read on use.
func (r *Repo) tree(h plumbing.Hash) (*Tree, error) {
	c, err := r.commit(h)
	if err != nil {
		return nil, err
	}
	fsys := newTreeFS(r.objs, c.TreeHash, c.Committer.When)
	if err := fsys.load(fsys.root); err != nil {
		return nil, err
	}
	return &Tree{Commit: h.String(), Time: c.Committer.When, FS: fsys, repo: r, fsys: fsys}, nil
}

// Tree returns the tree of rev (a full hex commit id, "HEAD", or a branch
// name). Nothing is checked out: it costs one commit and one tree object;
// the rest is read as the FS is used.
func (r *Repo) Tree(rev string) (*Tree, error) {
	h, err := r.resolve(rev)
	if err != nil {
		return nil, err
	}
	return r.tree(h)
}

// FirstParents lists the commits on the first-parent chain of to, newest
// first, down to but excluding from (a full hex id, "HEAD" or a branch
// name). An empty from lists the chain down to the root commit. If from is
// not on the chain, FirstParents returns ErrNotFirstParent. It reads one
// commit object per commit listed and honours ctx.
func (r *Repo) FirstParents(ctx context.Context, from, to string) ([]Commit, error) {
	end, err := r.resolve(to)
	if err != nil {
		return nil, err
	}
	stop := plumbing.ZeroHash
	if from != "" {
		if stop, err = r.resolve(from); err != nil {
			return nil, err
		}
	}
	var out []Commit
	for h := end; h != stop; {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("list commits: %w", err)
		}
		if h.IsZero() {
			return nil, fmt.Errorf("list commits from %s to %s: %s: %w", from, to, from, ErrNotFirstParent)
		}
		c, err := r.commit(h)
		if err != nil {
			return nil, err
		}
		subject, _, _ := strings.Cut(c.Message, "\n")
		out = append(out, Commit{Hash: h.String(), Time: c.Committer.When, Subject: subject})
		h = plumbing.ZeroHash
		if len(c.ParentHashes) > 0 {
			h = c.ParentHashes[0]
		}
	}
	return out, nil
}
