package gitsrc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// maxLinkHops bounds how many symlinks Open and Stat follow in one path
// (the Linux kernel's limit); more is reported as a loop.
const maxLinkHops = 40

// EntryError is a tree entry that git itself would refuse to check out: a
// name ".", "..", ".git" (or a case, NTFS or HFS variant of it, or its 8.3
// alias "git~1"), a name containing "/" or NUL, an empty name, or a name
// that appears twice in one tree (e.g. a symlink and a directory). Such an
// entry is not part of the tree's FS: ReadDir leaves it out, and opening its
// path fails with an *fs.PathError wrapping the EntryError, which wraps
// fs.ErrNotExist. It is a property of the commit's content, never a reason
// to re-clone.
type EntryError struct {
	// Path is the slash-separated path of the entry from the repository
	// root, its last element quoted as git stores it.
	Path string
	// Reason says what is wrong, e.g. `a ".git" entry`.
	Reason string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("tree entry %s: %s (git refuses to check it out)", e.Path, e.Reason)
}

// Unwrap makes the entry absent for errors.Is(err, fs.ErrNotExist).
func (e *EntryError) Unwrap() error { return fs.ErrNotExist }

var (
	errSymlinkEscapes = errors.New("symlink points outside the repository")
	errSymlinkLoop    = errors.New("too many levels of symbolic links")
	errNotDir         = errors.New("not a directory")
	errIsDir          = errors.New("is a directory")
	errNotLink        = errors.New("not a symlink")
)

// objects is the object store of one repository, read under a lock: go-git's
// filesystem storage is not safe for concurrent use.
type objects struct {
	mu  sync.Mutex
	get func(plumbing.ObjectType, plumbing.Hash) (plumbing.EncodedObject, error)
}

// read returns the content of the object h of type t.
func (o *objects) read(t plumbing.ObjectType, h plumbing.Hash) ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	obj, err := o.get(t, h)
	if err != nil {
		return nil, err
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b := make([]byte, 0, obj.Size())
	buf := bytes.NewBuffer(b)
	if _, err := io.Copy(buf, r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// size returns the size of blob h.
func (o *objects) size(h plumbing.Hash) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	obj, err := o.get(plumbing.BlobObject, h)
	if err != nil {
		return 0, err
	}
	return obj.Size(), nil
}

// tree returns the decoded tree h.
func (o *objects) tree(h plumbing.Hash) (*object.Tree, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	obj, err := o.get(plumbing.TreeObject, h)
	if err != nil {
		return nil, err
	}
	t := &object.Tree{}
	if err := t.Decode(obj); err != nil {
		return nil, err
	}
	return t, nil
}

// treeFS is a read-only fs.FS of one commit's tree, read from git objects.
// Directories are read once, on first use, and kept; file contents are read
// on every open, whole, into memory. It is safe for concurrent use.
type treeFS struct {
	objs  *objects
	root  *node
	mtime time.Time
}

// node is one entry of the tree.
type node struct {
	name string // base name; "." for the root
	path string // from the root; "." for the root
	mode filemode.FileMode
	hash plumbing.Hash

	// Directories (trees; submodules are empty directories).
	once  sync.Once
	kids  []*node          // valid entries, sorted by name
	index map[string]*node // valid entries by name
	bad   map[string]*EntryError
	err   error // reading the tree object failed

	sizeOnce sync.Once
	size     int64
	sizeErr  error
}

var (
	_ fs.ReadDirFS   = (*treeFS)(nil)
	_ fs.ReadFileFS  = (*treeFS)(nil)
	_ fs.StatFS      = (*treeFS)(nil)
	_ fs.ReadLinkFS  = (*treeFS)(nil)
	_ fs.ReadDirFile = (*dirFile)(nil)
)

func newTreeFS(objs *objects, tree plumbing.Hash, mtime time.Time) *treeFS {
	return &treeFS{objs: objs, mtime: mtime, root: &node{name: ".", path: ".", mode: filemode.Dir, hash: tree}}
}

func (n *node) isDir() bool { return n.mode == filemode.Dir || n.mode == filemode.Submodule }

func (n *node) isLink() bool { return n.mode == filemode.Symlink }

func (n *node) fileMode() fs.FileMode {
	switch n.mode {
	case filemode.Dir, filemode.Submodule:
		return fs.ModeDir | 0o755
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	case filemode.Executable:
		return 0o755
	default:
		return 0o644
	}
}

// load reads directory n's entries once.
func (f *treeFS) load(n *node) error {
	n.once.Do(func() {
		n.index = map[string]*node{}
		if n.mode == filemode.Submodule {
			return // a commit of another repository: an empty directory, as in a checkout without submodules
		}
		t, err := f.objs.tree(n.hash)
		if err != nil {
			n.err = fmt.Errorf("read tree %s (%s): %w", n.hash, n.path, err)
			return
		}
		count := map[string]int{}
		for _, e := range t.Entries {
			count[e.Name]++
		}
		for _, e := range t.Entries {
			p := e.Name
			if n.path != "." {
				p = n.path + "/" + e.Name
			}
			reason := badName(e.Name)
			if reason == "" && count[e.Name] > 1 {
				reason = fmt.Sprintf("%d entries share this name", count[e.Name])
			}
			if reason == "" && !knownMode(e.Mode) {
				reason = fmt.Sprintf("unknown mode %o", uint32(e.Mode))
			}
			if reason != "" {
				if n.bad == nil {
					n.bad = map[string]*EntryError{}
				}
				if !validName(e.Name) {
					p = strings.TrimPrefix(n.path+"/", "./") + fmt.Sprintf("%q", e.Name)
				}
				n.bad[e.Name] = &EntryError{Path: p, Reason: reason}
				continue
			}
			mode := e.Mode
			if mode == filemode.Deprecated {
				mode = filemode.Regular
			}
			k := &node{name: e.Name, path: p, mode: mode, hash: e.Hash}
			n.index[e.Name] = k
			n.kids = append(n.kids, k)
		}
		slices.SortFunc(n.kids, func(a, b *node) int { return strings.Compare(a.name, b.name) })
	})
	return n.err
}

func knownMode(m filemode.FileMode) bool {
	switch m {
	case filemode.Dir, filemode.Regular, filemode.Deprecated, filemode.Executable, filemode.Symlink, filemode.Submodule:
		return true
	}
	return false
}

// validName reports whether name can be a path element in io/fs.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// badName says why git would refuse to check out an entry called name, or
// returns "" if it would not. Like git (verify_path with core.protectNTFS
// and core.protectHFS, which git enables on every platform for what it
// receives), it refuses every name that some file system takes for ".git".
func badName(name string) string {
	switch {
	case name == "":
		return "empty name"
	case name == "." || name == "..":
		return fmt.Sprintf("a %q entry", name)
	case strings.Contains(name, "/"):
		return "name contains a slash"
	case strings.Contains(name, "\x00"):
		return "name contains a NUL byte"
	}
	// HFS+ ignores some Unicode code points; NTFS ignores trailing dots and
	// spaces and treats "name:stream" as name; both fold case.
	var b strings.Builder
	for _, r := range name {
		if hfsIgnorable(r) {
			continue
		}
		b.WriteRune(r)
	}
	folded := strings.ToLower(b.String())
	if i := strings.IndexByte(folded, ':'); i >= 0 {
		folded = folded[:i]
	}
	folded = strings.TrimRight(folded, ". ")
	switch folded {
	case ".git":
		return `a ".git" entry`
	case "git~1":
		return `"git~1", the 8.3 short name of ".git"`
	}
	return ""
}

// hfsIgnorable lists the code points HFS+ drops when comparing names (git's
// is_hfs_dotgit).
func hfsIgnorable(r rune) bool {
	switch r {
	case 0x200c, 0x200d, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e,
		0x206a, 0x206b, 0x206c, 0x206d, 0x206e, 0x206f, 0xfeff:
		return true
	}
	return false
}

// child returns the entry name of directory dir.
func (f *treeFS) child(dir *node, name string) (*node, error) {
	if err := f.load(dir); err != nil {
		return nil, err
	}
	if k := dir.index[name]; k != nil {
		return k, nil
	}
	if e := dir.bad[name]; e != nil {
		return nil, e
	}
	return nil, fs.ErrNotExist
}

// lookup finds name. Symlinks among the leading elements are followed
// inside the tree, and so is a symlink as the last element if follow is
// set. A link with an absolute target, or one that leads out of the tree, is
// errSymlinkEscapes; more than maxLinkHops links is errSymlinkLoop.
func (f *treeFS) lookup(name string, follow bool) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, fs.ErrInvalid
	}
	if name == "." {
		return f.root, nil
	}
	hops := 0
	rest := strings.Split(name, "/")
	var dirs []*node // the path walked so far, dirs[0] is the root
	cur := f.root
	for len(rest) > 0 {
		elem := rest[0]
		rest = rest[1:]
		if !cur.isDir() {
			return nil, errNotDir
		}
		switch elem {
		case ".", "":
			continue
		case "..":
			if len(dirs) == 0 {
				return nil, errSymlinkEscapes
			}
			cur, dirs = dirs[len(dirs)-1], dirs[:len(dirs)-1]
			continue
		}
		k, err := f.child(cur, elem)
		if err != nil {
			return nil, err
		}
		if !k.isLink() || (len(rest) == 0 && !follow) {
			dirs = append(dirs, cur)
			cur = k
			continue
		}
		if hops++; hops > maxLinkHops {
			return nil, errSymlinkLoop
		}
		target, err := f.objs.read(plumbing.BlobObject, k.hash)
		if err != nil {
			return nil, fmt.Errorf("read symlink %s: %w", k.path, err)
		}
		t := string(target)
		if t == "" || path.IsAbs(t) || strings.Contains(t, "\x00") {
			return nil, errSymlinkEscapes
		}
		rest = append(strings.Split(t, "/"), rest...)
	}
	return cur, nil
}

func (f *treeFS) pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// Open opens name, following symlinks inside the tree.
func (f *treeFS) Open(name string) (fs.File, error) {
	n, err := f.lookup(name, true)
	if err != nil {
		return nil, f.pathErr("open", name, err)
	}
	info := f.info(n, path.Base(name))
	if n.isDir() {
		if err := f.load(n); err != nil {
			return nil, f.pathErr("open", name, err)
		}
		return &dirFile{fsys: f, n: n, info: info}, nil
	}
	b, err := f.objs.read(plumbing.BlobObject, n.hash)
	if err != nil {
		return nil, f.pathErr("open", name, err)
	}
	return &blobFile{Reader: bytes.NewReader(b), info: info}, nil
}

// ReadFile returns the content of name, following symlinks inside the tree.
func (f *treeFS) ReadFile(name string) ([]byte, error) {
	n, err := f.lookup(name, true)
	if err != nil {
		return nil, f.pathErr("readfile", name, err)
	}
	if n.isDir() {
		return nil, f.pathErr("readfile", name, errIsDir)
	}
	b, err := f.objs.read(plumbing.BlobObject, n.hash)
	if err != nil {
		return nil, f.pathErr("readfile", name, err)
	}
	return b, nil
}

// ReadDir lists directory name (following symlinks inside the tree),
// sorted by name, without the entries git would refuse.
func (f *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := f.lookup(name, true)
	if err != nil {
		return nil, f.pathErr("readdir", name, err)
	}
	if !n.isDir() {
		return nil, f.pathErr("readdir", name, errNotDir)
	}
	if err := f.load(n); err != nil {
		return nil, f.pathErr("readdir", name, err)
	}
	out := make([]fs.DirEntry, len(n.kids))
	for i, k := range n.kids {
		out[i] = dirEntry{fsys: f, n: k}
	}
	return out, nil
}

// Stat describes name, following symlinks inside the tree.
func (f *treeFS) Stat(name string) (fs.FileInfo, error) {
	n, err := f.lookup(name, true)
	if err != nil {
		return nil, f.pathErr("stat", name, err)
	}
	return f.statNode(n, path.Base(name), "stat", name)
}

// Lstat describes name; a symlink is described, not followed.
func (f *treeFS) Lstat(name string) (fs.FileInfo, error) {
	n, err := f.lookup(name, false)
	if err != nil {
		return nil, f.pathErr("lstat", name, err)
	}
	return f.statNode(n, path.Base(name), "lstat", name)
}

func (f *treeFS) statNode(n *node, base, op, name string) (fs.FileInfo, error) {
	info := f.info(n, base)
	if _, err := info.size(); err != nil {
		return nil, f.pathErr(op, name, err)
	}
	return info, nil
}

// ReadLink returns the target of symlink name, exactly as stored in git.
func (f *treeFS) ReadLink(name string) (string, error) {
	n, err := f.lookup(name, false)
	if err != nil {
		return "", f.pathErr("readlink", name, err)
	}
	if !n.isLink() {
		return "", f.pathErr("readlink", name, errNotLink)
	}
	b, err := f.objs.read(plumbing.BlobObject, n.hash)
	if err != nil {
		return "", f.pathErr("readlink", name, err)
	}
	return string(b), nil
}

func (f *treeFS) info(n *node, base string) *fileInfo {
	if n == f.root {
		base = "."
	}
	return &fileInfo{fsys: f, n: n, name: base}
}

// fileInfo describes a node. Sizes of blobs are read on first use.
type fileInfo struct {
	fsys *treeFS
	n    *node
	name string
}

func (i *fileInfo) size() (int64, error) {
	if i.n.isDir() {
		return 0, nil
	}
	i.n.sizeOnce.Do(func() { i.n.size, i.n.sizeErr = i.fsys.objs.size(i.n.hash) })
	return i.n.size, i.n.sizeErr
}

func (i *fileInfo) Name() string { return i.name }
func (i *fileInfo) Size() int64 {
	s, _ := i.size()
	return s
}
func (i *fileInfo) Mode() fs.FileMode  { return i.n.fileMode() }
func (i *fileInfo) ModTime() time.Time { return i.fsys.mtime }
func (i *fileInfo) IsDir() bool        { return i.n.isDir() }
func (i *fileInfo) Sys() any           { return nil }

type dirEntry struct {
	fsys *treeFS
	n    *node
}

func (d dirEntry) Name() string      { return d.n.name }
func (d dirEntry) IsDir() bool       { return d.n.isDir() }
func (d dirEntry) Type() fs.FileMode { return d.n.fileMode().Type() }
func (d dirEntry) Info() (fs.FileInfo, error) {
	return d.fsys.statNode(d.n, d.n.name, "stat", d.n.path)
}
func (d dirEntry) String() string { return fs.FormatDirEntry(d) }

// blobFile is an open regular file (or the file a symlink leads to).
type blobFile struct {
	*bytes.Reader
	info *fileInfo
}

func (b *blobFile) Stat() (fs.FileInfo, error) { return b.info, nil }
func (b *blobFile) Close() error               { return nil }

// dirFile is an open directory.
type dirFile struct {
	fsys *treeFS
	n    *node
	info *fileInfo
	off  int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.n.path, Err: errIsDir}
}

func (d *dirFile) ReadDir(count int) ([]fs.DirEntry, error) {
	kids := d.n.kids[d.off:]
	if count > 0 && len(kids) == 0 {
		return nil, io.EOF
	}
	if count > 0 && count < len(kids) {
		kids = kids[:count]
	}
	d.off += len(kids)
	out := make([]fs.DirEntry, len(kids))
	for i, k := range kids {
		out[i] = dirEntry{fsys: d.fsys, n: k}
	}
	return out, nil
}

// problems walks the whole tree and returns every entry git would refuse,
// and any tree object that could not be read, in path order.
func (f *treeFS) problems() []error {
	var out []error
	var walk func(n *node)
	walk = func(n *node) {
		if err := f.load(n); err != nil {
			out = append(out, err)
			return
		}
		var bad []*EntryError
		for _, e := range n.bad {
			bad = append(bad, e)
		}
		slices.SortFunc(bad, func(a, b *EntryError) int { return strings.Compare(a.Path, b.Path) })
		for _, e := range bad {
			out = append(out, e)
		}
		for _, k := range n.kids {
			if k.isDir() {
				walk(k)
			}
		}
	}
	walk(f.root)
	return out
}
