package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// localSource is a repository on a local path, read in-process: no git
// binary, no git-upload-pack, so no "dubious ownership" refusal when the
// repository belongs to another user. It is only read, never written.
type localSource struct {
	path string
}

// gitDir finds the repository's git directory: path/.git (a directory, or
// a "gitdir: " file as in a linked work tree), or path itself if bare.
func (l localSource) gitDir() (string, error) {
	dotgit := filepath.Join(l.path, ".git")
	fi, err := os.Stat(dotgit)
	switch {
	case err == nil && fi.IsDir():
		return dotgit, nil
	case err == nil:
		b, err := os.ReadFile(dotgit)
		if err != nil {
			return "", err
		}
		d, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir: ")
		if !ok {
			return "", fmt.Errorf("%s: not a gitdir file", dotgit)
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(l.path, d)
		}
		return d, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", err
	}
	for _, p := range []string{"HEAD", "objects", "refs"} {
		if _, err := os.Stat(filepath.Join(l.path, p)); err != nil {
			return "", fmt.Errorf("%s: repository not found", l.path)
		}
	}
	return l.path, nil
}

func (l localSource) open() (*filesystem.Storage, string, error) {
	dir, err := l.gitDir()
	if err != nil {
		return nil, "", err
	}
	fsys := osfs.New(dir, osfs.WithBoundOS())
	st := filesystem.NewStorageWithOptions(fsys, cache.NewObjectLRU(objectCacheSize),
		filesystem.Options{LargeObjectThreshold: largeObject})
	return st, dir, nil
}

func (l localSource) head(st *filesystem.Storage, branch string) (plumbing.Hash, error) {
	ref, err := storer.ResolveReference(st, plumbing.NewBranchReferenceName(branch))
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("couldn't find remote ref %s: %w", plumbing.NewBranchReferenceName(branch), err)
	}
	return ref.Hash(), nil
}

func (l localSource) hasBranch(_ context.Context, branch string) bool {
	st, _, err := l.open()
	if err != nil {
		return false
	}
	_, err = l.head(st, branch)
	return err == nil
}

// fetch copies what st lacks of branch's history into st. A first fetch
// copies the source's pack files and loose objects as they are (cheap, and
// memory does not grow with the size of any object); after that, each fetch
// walks the new commits and copies the objects st lacks one by one, as
// loose objects, streamed. Objects are written before anything that refers
// to them, so an interrupted fetch never leaves an object whose history is
// incomplete: an object present means everything it reaches is present,
// which is what lets the walk stop at the first commit or tree st has.
func (l localSource) fetch(ctx context.Context, st *filesystem.Storage, branch string, first bool) (plumbing.Hash, error) {
	src, dir, err := l.open()
	if err != nil {
		return plumbing.ZeroHash, fetchErr(ctx, branch, err)
	}
	head, err := l.head(src, branch)
	if err != nil {
		return plumbing.ZeroHash, fetchErr(ctx, branch, err)
	}
	if first {
		if err := copyObjectFiles(ctx, filepath.Join(dir, "objects"), st.Filesystem()); err != nil {
			return plumbing.ZeroHash, fetchErr(ctx, branch, err)
		}
		// The copied files are not in st's caches yet.
		st.ObjectStorage.Reindex()
	}
	c := copier{ctx: ctx, src: src, dst: st, done: map[plumbing.Hash]bool{}}
	if err := c.commits(head); err != nil {
		return plumbing.ZeroHash, fetchErr(ctx, branch, err)
	}
	if err := setHead(st, branch, head); err != nil {
		return plumbing.ZeroHash, err
	}
	return head, nil
}

// copyObjectFiles copies the pack files (with their indexes) and loose
// objects under objects (a source's objects directory) into dst's objects
// directory, streaming each file.
func copyObjectFiles(ctx context.Context, objects string, dst billy.Filesystem) error {
	packs, err := filepath.Glob(filepath.Join(objects, "pack", "pack-*.pack"))
	if err != nil {
		return err
	}
	for _, pack := range packs {
		idx := strings.TrimSuffix(pack, ".pack") + ".idx"
		if _, err := os.Stat(idx); err != nil {
			continue // being written by git, or garbage: the walk copies what is missing
		}
		// The index last: go-git finds packs by their .pack and opens the .idx.
		for _, p := range []string{pack, idx} {
			if err := copyFile(ctx, p, dst, "objects/pack/"+filepath.Base(p)); err != nil {
				return err
			}
		}
	}
	loose, err := filepath.Glob(filepath.Join(objects, "[0-9a-f][0-9a-f]", "*"))
	if err != nil {
		return err
	}
	for _, p := range loose {
		name := filepath.Base(filepath.Dir(p)) + filepath.Base(p)
		if _, ok := parseHash(name); !ok {
			continue // a temporary file of a running git
		}
		if err := copyFile(ctx, p, dst, "objects/"+filepath.Base(filepath.Dir(p))+"/"+filepath.Base(p)); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies src to name in dst through a temporary file, so a reader
// never sees half a file.
func copyFile(ctx context.Context, src string, dst billy.Filesystem, name string) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	dir := filepath.ToSlash(filepath.Dir(name))
	out, err := dst.TempFile(dir, "tmp_copy_")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = dst.Remove(out.Name())
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return dst.Rename(out.Name(), name)
}

// copier copies objects from src to dst, children first.
type copier struct {
	ctx      context.Context
	src, dst *filesystem.Storage
	done     map[plumbing.Hash]bool // in dst, with everything it reaches
}

func (c *copier) has(h plumbing.Hash) bool {
	if c.done[h] {
		return true
	}
	if c.dst.HasEncodedObject(h) == nil {
		c.done[h] = true
		return true
	}
	return false
}

func (c *copier) object(t plumbing.ObjectType, h plumbing.Hash) error {
	obj, err := c.src.EncodedObject(t, h)
	if err != nil {
		return fmt.Errorf("read %s %s: %w", t, h, err)
	}
	if _, err := c.dst.SetEncodedObject(obj); err != nil {
		return fmt.Errorf("write %s %s: %w", t, h, err)
	}
	c.done[h] = true
	return nil
}

// commits copies head and the history behind it that dst lacks, parents
// before children.
func (c *copier) commits(head plumbing.Hash) error {
	type item struct {
		h       plumbing.Hash
		parents []plumbing.Hash
		tree    plumbing.Hash
		open    bool
	}
	stack := []item{{h: head}}
	for len(stack) > 0 {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		top := &stack[len(stack)-1]
		if top.open {
			it := *top
			stack = stack[:len(stack)-1]
			if c.has(it.h) {
				continue
			}
			if err := c.tree(it.tree); err != nil {
				return err
			}
			if err := c.object(plumbing.CommitObject, it.h); err != nil {
				return err
			}
			continue
		}
		if c.has(top.h) {
			stack = stack[:len(stack)-1]
			continue
		}
		commit, err := object.GetCommit(c.src, top.h)
		if err != nil {
			return fmt.Errorf("read commit %s: %w", top.h, err)
		}
		top.open, top.tree, top.parents = true, commit.TreeHash, commit.ParentHashes
		for _, p := range commit.ParentHashes {
			if !c.has(p) {
				stack = append(stack, item{h: p})
			}
		}
	}
	return nil
}

// tree copies tree h and what it holds that dst lacks.
func (c *copier) tree(h plumbing.Hash) error {
	if c.has(h) {
		return nil
	}
	if err := c.ctx.Err(); err != nil {
		return err
	}
	t, err := object.GetTree(c.src, h)
	if err != nil {
		return fmt.Errorf("read tree %s: %w", h, err)
	}
	for _, e := range t.Entries {
		switch e.Mode {
		case filemode.Dir:
			err = c.tree(e.Hash)
		case filemode.Submodule:
			// A commit of another repository: not an object of this one.
		default:
			if !c.has(e.Hash) {
				err = c.object(plumbing.BlobObject, e.Hash)
			}
		}
		if err != nil {
			return err
		}
	}
	return c.object(plumbing.TreeObject, h)
}
