package packager

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// reasonError carries the Reason of a failure found deep in a check up to
// Build, which turns it into an *Error.
type reasonError struct {
	reason Reason
	err    error
}

func (e *reasonError) Error() string { return e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

// failf returns an error of the given reason.
func failf(reason Reason, format string, args ...any) error {
	return &reasonError{reason: reason, err: fmt.Errorf(format, args...)}
}

// tree is a checked-out tree: root as given and rootReal, its absolute path
// with symlinks resolved, which is the boundary every symlink must stay in.
type tree struct {
	root, rootReal string
}

func newTree(root string) (tree, error) {
	real, err := realRoot(root)
	if err != nil {
		return tree{}, err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return tree{}, fmt.Errorf("resolve tree root: %w", err)
	}
	return tree{root: abs, rootReal: real}, nil
}

// show returns p relative to the tree for messages, so that they do not
// depend on where the tree is checked out.
func (t tree) show(p string) string {
	for _, base := range []string{t.root, t.rootReal} {
		if rel, err := filepath.Rel(base, p); err == nil && filepath.IsLocal(rel) {
			return filepath.ToSlash(rel)
		}
	}
	return p
}

// resolveLink checks that the symlink at link resolves to an existing path
// inside the tree, and returns that path.
func (t tree) resolveLink(link string) (string, error) {
	target, err := os.Readlink(link)
	if err != nil {
		return "", failf(ReasonSymlink, "symlink: read link %s: %v", t.show(link), err)
	}
	real, err := filepath.EvalSymlinks(link)
	if err != nil {
		return "", failf(ReasonSymlink, "symlink %s -> %s does not resolve: %v", t.show(link), target, unwrapPath(err))
	}
	if !within(t.rootReal, real) {
		return "", failf(ReasonSymlink, "symlink %s -> %s leaves the tree (resolves to %s)", t.show(link), target, real)
	}
	return real, nil
}

// unwrapPath drops the absolute path from a *fs.PathError, keeping the cause.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkDir walks dir the way helm's loader does (following symlinked
// directories) and checks that dir and every symlink in it resolve inside
// the tree. It ignores .helmignore on purpose: helm's loader resolves every
// link before it applies the ignore rules, so a dangling ignored link breaks
// it too. A symlinked directory that leads back into a directory being walked
// is a loop, which would make helm's loader walk forever; it fails too.
func (t tree) checkDir(ctx context.Context, dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return failf(ReasonSymlink, "symlink: resolve %s: %v", t.show(dir), unwrapPath(err))
	}
	if !within(t.rootReal, real) {
		return failf(ReasonSymlink, "symlink: %s leaves the tree (resolves to %s)", t.show(dir), real)
	}
	return t.walk(ctx, dir, []string{real})
}

// walk checks dir's entries; stack holds the resolved paths of dir and its
// ancestors in this walk.
func (t tree) walk(ctx context.Context, dir string, stack []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", t.show(dir), unwrapPath(err))
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			real, err := t.resolveLink(p)
			if err != nil {
				return err
			}
			fi, err := os.Stat(real)
			if err != nil {
				return failf(ReasonSymlink, "symlink: stat %s: %v", t.show(p), unwrapPath(err))
			}
			if !fi.IsDir() {
				continue
			}
			if slices.Contains(stack, real) {
				target, _ := os.Readlink(p)
				return failf(ReasonSymlink, "symlink %s -> %s loops back to %s", t.show(p), target, t.show(real))
			}
			if err := t.walk(ctx, p, append(stack, real)); err != nil {
				return err
			}
		case e.IsDir():
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				return fmt.Errorf("resolve %s: %w", t.show(p), unwrapPath(err))
			}
			if err := t.walk(ctx, p, append(stack, real)); err != nil {
				return err
			}
		}
	}
	return nil
}
