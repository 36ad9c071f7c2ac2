package packager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/ignore"
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

// unwrapPath drops the path from a *fs.PathError, keeping the cause.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// maxLinkHops is how many symlinks one path may pass through before it
// counts as a loop, as Linux's MAXSYMLINKS.
const maxLinkHops = 40

// lfsPointer is how every Git LFS pointer file starts.
var lfsPointer = []byte("version https://git-lfs.github.com/spec/v1")

// isGitName reports whether a path component names git's own directory,
// which is never part of a tree: git compares it case-insensitively.
func isGitName(name string) bool { return strings.EqualFold(name, ".git") }

// Resolution failures of a path inside the tree.
var (
	errEscapes = errors.New("leaves the tree")
	errIntoGit = errors.New("points into .git")
	errLoop    = errors.New("loops (too many levels of symbolic links)")
)

// tree reads one commit's files from fsys (see the package comment for what
// fsys must be). It resolves symlinks itself, inside fsys, each link once,
// and measures directories once each, so that a DAG of links costs what its
// distinct nodes cost. A tree serves one Build or one Discover; it is not
// safe for concurrent use.
type tree struct {
	fsys  fs.FS
	lim   Limits
	links map[string]linkResult // by link path
	sizes map[string]size       // by resolved directory
	files map[string][]byte     // file contents by resolved path
	spent size                  // what this build has loaded so far
	start time.Time
}

type linkResult struct {
	target string // resolved path, or "" on error
	err    error
}

// size is what a directory brings into a chart: entries (files and
// directories, each occurrence counted), bytes of its files, and the depth
// of its deepest entry below it.
type size struct {
	entries, bytes int64
	depth          int
}

func newTree(fsys fs.FS, lim Limits) *tree {
	return &tree{fsys: fsys, lim: lim.withDefaults(), links: map[string]linkResult{}, sizes: map[string]size{}, files: map[string][]byte{}, start: time.Now()}
}

// resolve returns the path of name with every symlink resolved inside the
// tree: no component of the result is a symlink. It fails with errEscapes
// (an absolute target, or ".." above the root), errIntoGit, errLoop or the
// fs error of a component that does not exist.
func (t *tree) resolve(name string) (string, error) {
	rest := strings.Split(name, "/")
	cur := "."
	hops := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch {
		case c == "" || c == ".":
			continue
		case c == "..":
			if cur == "." {
				return "", errEscapes
			}
			cur = path.Dir(cur)
			continue
		case isGitName(c):
			return "", errIntoGit
		}
		next := path.Join(cur, c)
		fi, err := fs.Lstat(t.fsys, next)
		if err != nil {
			return "", unwrapPath(err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > maxLinkHops {
			return "", errLoop
		}
		target, err := fs.ReadLink(t.fsys, next)
		if err != nil {
			return "", unwrapPath(err)
		}
		if strings.HasPrefix(target, "/") {
			return "", errEscapes
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return cur, nil
}

// resolveLink resolves the symlink at link (a path whose parent has no
// symlinks), once per tree. Its errors are ReasonSymlink and name the link
// and its target.
func (t *tree) resolveLink(link string) (string, error) {
	if r, ok := t.links[link]; ok {
		return r.target, r.err
	}
	var r linkResult
	target, err := fs.ReadLink(t.fsys, link)
	switch {
	case err != nil:
		r.err = failf(ReasonSymlink, "symlink %s: read link: %v", link, unwrapPath(err))
	default:
		got, err := t.resolve(link)
		switch {
		case errors.Is(err, errEscapes):
			r.err = failf(ReasonSymlink, "symlink %s -> %s leaves the tree", link, target)
		case errors.Is(err, errIntoGit):
			r.err = failf(ReasonSymlink, "symlink %s -> %s points into .git", link, target)
		case errors.Is(err, errLoop):
			r.err = failf(ReasonSymlink, "symlink %s -> %s loops back to itself", link, target)
		case err != nil:
			r.err = failf(ReasonSymlink, "symlink %s -> %s does not resolve: %v", link, target, err)
		default:
			r.target = got
		}
	}
	t.links[link] = r
	return r.target, r.err
}

// stat returns the FileInfo of the entry name (in a directory without
// symlinks) and the path it resolves to: itself, or a symlink's target.
func (t *tree) stat(name string, e fs.DirEntry) (string, fs.FileInfo, error) {
	if e.Type()&fs.ModeSymlink == 0 {
		fi, err := e.Info()
		if err != nil {
			return "", nil, fmt.Errorf("stat %s: %w", name, unwrapPath(err))
		}
		return name, fi, nil
	}
	real, err := t.resolveLink(name)
	if err != nil {
		return "", nil, err
	}
	fi, err := fs.Stat(t.fsys, real)
	if err != nil {
		return "", nil, failf(ReasonSymlink, "symlink %s: stat %s: %v", name, real, unwrapPath(err))
	}
	return real, fi, nil
}

// readDir lists dir (a resolved path), sorted by name, without .git.
func (t *tree) readDir(dir string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(t.fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, unwrapPath(err))
	}
	out := entries[:0]
	for _, e := range entries {
		if !isGitName(e.Name()) {
			out = append(out, e)
		}
	}
	return out, nil
}

// checkBudget fails when ctx is done or the time budget of this build is
// spent.
func (t *tree) checkBudget(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if time.Since(t.start) > t.lim.MaxTime {
		return failf(ReasonPackage, "limit: reading the chart took longer than %v", t.lim.MaxTime)
	}
	return nil
}

// measure returns what the directory dir (a resolved path) brings into a
// chart, following symlinks, each directory measured once. It fails on a
// symlink that does not resolve inside the tree, on a loop (a directory
// reached again below itself: helm's loader would walk it forever), and as
// soon as one of the limits is exceeded. stack holds the directories being
// measured.
func (t *tree) measure(ctx context.Context, dir string, stack map[string]bool) (size, error) {
	if s, ok := t.sizes[dir]; ok {
		return s, nil
	}
	if err := t.checkBudget(ctx); err != nil {
		return size{}, err
	}
	entries, err := t.readDir(dir)
	if err != nil {
		return size{}, err
	}
	stack[dir] = true
	defer delete(stack, dir)
	var s size
	for _, e := range entries {
		name := path.Join(dir, e.Name())
		real, fi, err := t.stat(name, e)
		if err != nil {
			return size{}, err
		}
		s.entries++
		if s.depth < 1 {
			s.depth = 1
		}
		if fi.IsDir() {
			if stack[real] {
				target, _ := fs.ReadLink(t.fsys, name)
				return size{}, failf(ReasonSymlink, "symlink %s -> %s loops back to %s", name, target, real)
			}
			sub, err := t.measure(ctx, real, stack)
			if err != nil {
				return size{}, err
			}
			s.entries += sub.entries
			s.bytes += sub.bytes
			s.depth = max(s.depth, sub.depth+1)
		} else {
			s.bytes += fi.Size()
		}
		if err := t.lim.check(s, name); err != nil {
			return size{}, err
		}
	}
	t.sizes[dir] = s
	return s, nil
}

// charge adds a loaded directory's size to what this build has spent and
// fails if the build as a whole exceeds the limits.
func (t *tree) charge(s size, dir string) error {
	t.spent.entries += s.entries
	t.spent.bytes += s.bytes
	t.spent.depth = max(t.spent.depth, s.depth)
	return t.lim.check(t.spent, dir)
}

// readFile returns the contents of the file at real (a resolved path), read
// once per tree.
func (t *tree) readFile(real string) ([]byte, error) {
	if data, ok := t.files[real]; ok {
		return data, nil
	}
	data, err := fs.ReadFile(t.fsys, real)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", real, unwrapPath(err))
	}
	t.files[real] = data
	return data, nil
}

// loadDir reads the chart directory dir (a path that may pass through
// symlinks) into the files helm's loader.LoadDir would read: it applies the
// chart's .helmignore and helm's default rules exactly as LoadDir does,
// follows symlinks (inside the tree), trims a UTF-8 BOM, refuses irregular
// files and files larger than helm's limit, and walks in LoadDir's order.
// Before reading anything it measures the directory against the limits. A
// Git LFS pointer fails the chart unless lfsWarn, in which case it is
// returned in lfs.
func (t *tree) loadDir(ctx context.Context, dir string, lfsWarn bool) (files []*loader.BufferedFile, lfs []string, err error) {
	root, err := t.resolve(dir)
	if err != nil {
		return nil, nil, describeResolve(dir, err)
	}
	s, err := t.measure(ctx, root, map[string]bool{})
	if err != nil {
		return nil, nil, err
	}
	if err := t.charge(s, dir); err != nil {
		return nil, nil, err
	}

	rules := ignore.Empty()
	if fi, err := fs.Lstat(t.fsys, path.Join(root, ignore.HelmIgnore)); err == nil {
		real := path.Join(root, ignore.HelmIgnore)
		if fi.Mode()&fs.ModeSymlink != 0 {
			if real, err = t.resolveLink(real); err != nil {
				return nil, nil, err
			}
		}
		data, err := t.readFile(real)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s/%s: %w", dir, ignore.HelmIgnore, err)
		}
		if rules, err = ignore.Parse(bytes.NewReader(data)); err != nil {
			return nil, nil, fmt.Errorf("parse %s/%s: %w", dir, ignore.HelmIgnore, err)
		}
	}
	rules.AddDefaults()

	var walk func(real, rel string) error
	walk = func(real, rel string) error {
		if err := t.checkBudget(ctx); err != nil {
			return err
		}
		entries, err := t.readDir(real)
		if err != nil {
			return err
		}
		for _, e := range entries {
			n := path.Join(rel, e.Name())
			target, fi, err := t.stat(path.Join(real, e.Name()), e)
			if err != nil {
				return err
			}
			if rules.Ignore(n, fi) {
				continue
			}
			if fi.IsDir() {
				if err := walk(target, n); err != nil {
					return err
				}
				continue
			}
			if !fi.Mode().IsRegular() {
				return fmt.Errorf("cannot load irregular file %s/%s as it has file mode type bits set", dir, n)
			}
			if fi.Size() > loader.MaxDecompressedFileSize {
				return fmt.Errorf("chart file %q is larger than the maximum file size %d", fi.Name(), loader.MaxDecompressedFileSize)
			}
			data, err := t.readFile(target)
			if err != nil {
				return err
			}
			if bytes.HasPrefix(data, lfsPointer) {
				if !lfsWarn {
					return failf(ReasonPackage, "%s/%s is a Git LFS pointer, not the file: chartsync does not fetch LFS objects; commit the file itself", dir, n)
				}
				lfs = append(lfs, path.Join(dir, n))
			}
			files = append(files, &loader.BufferedFile{Name: n, Data: bytes.TrimPrefix(data, utf8bom)})
		}
		return nil
	}
	if err := walk(root, ""); err != nil {
		return nil, nil, err
	}
	return files, lfs, nil
}

var utf8bom = []byte{0xEF, 0xBB, 0xBF}

// describeResolve turns a failure of resolve(name) into a message naming
// name.
func describeResolve(name string, err error) error {
	switch {
	case errors.Is(err, errEscapes), errors.Is(err, errIntoGit), errors.Is(err, errLoop):
		return failf(ReasonSymlink, "%s %v", name, err)
	default:
		return fmt.Errorf("resolve %s: %w", name, err)
	}
}
