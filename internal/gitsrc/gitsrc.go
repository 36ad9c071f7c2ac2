// Package gitsrc keeps a copy of one branch of a remote git repository in a
// bare repository in the state dir and serves any commit's tree from git
// objects, as an io/fs file system. There is no work tree: nothing is
// checked out, so nothing can be dirty, and any commit of the history can be
// read without rewriting files. It knows git (go-git) and nothing of Helm or
// storage.
//
// The repository directory is owned by gitsrc: it is private to its owner
// (directories 0700, files 0600 or 0400), holds no credential, and anything
// in it that is not a healthy copy of the configured URL and branch is
// replaced by a fresh clone.
package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"
)

// remoteName is the name of the one remote of every repository.
const remoteName = "origin"

// largeObject is the size above which an object is streamed from disk
// instead of being read into memory (and cached) whole.
const largeObject = 1 << 20

// objectCacheSize bounds go-git's cache of decoded objects per repository.
const objectCacheSize = 16 * cache.MiByte

// Options says which branch of which repository to keep where.
type Options struct {
	// URL of the repository: a local path, file://, https://, http://,
	// ssh:// or scp-like user@host:path. Credentials belong in Auth: a URL
	// with a password in it is refused, and the user name of an http(s) URL
	// is never stored (it may be a token). Local paths and file:// URLs are
	// read in-process, without the git binary.
	URL string
	// Branch is the branch name, e.g. "master" (not "refs/heads/master").
	Branch string
	// Dir is the repository directory; it is created if missing. gitsrc owns
	// it and its sibling "."+base(Dir)+".clone" (scratch space for a clone).
	Dir string
	// Auth holds credentials for ssh and http(s) URLs.
	Auth Auth
}

// Tree is one commit of the repository.
type Tree struct {
	// Commit is the full hex id of the commit.
	Commit string
	// Time is the committer time of Commit, in the committer's time zone.
	Time time.Time
	// FS is the commit's tree, read from git objects. It implements
	// fs.ReadDirFS, fs.ReadFileFS, fs.StatFS and fs.ReadLinkFS and is safe
	// for concurrent use. Regular files have mode 0644, or 0755 for git's
	// executable mode 100755; symlinks (git mode 120000) are entries of type
	// fs.ModeSymlink whose ReadLink target is the blob, verbatim; submodules
	// (160000) are empty directories; ReadDir lists entries sorted by name;
	// ModTime is Time for every entry. Open, ReadFile, ReadDir and Stat follow
	// symlinks inside the tree and fail for a link that is absolute, leads
	// out of the tree, or loops; Lstat and ReadLink never follow the last
	// element. Open and ReadFile read the whole file into memory. There is no .git entry. Entries git would refuse to check out
	// are absent; opening one fails with an error wrapping an *EntryError
	// (see Problems).
	FS fs.FS

	repo *Repo
	fsys *treeFS
}

// Problems returns every entry of the tree that git would refuse to check
// out (*EntryError, see there) and every tree object that could not be read,
// in path order; nil if there is none. It reads every tree object of the
// commit (not the files), once per Tree.
func (t *Tree) Problems() []error { return t.fsys.problems() }

// Repo returns the repository the tree was read from, for its history.
func (t *Tree) Repo() *Repo { return t.repo }

// Sync brings the repository in opts.Dir up to date with the head of
// opts.Branch at opts.URL and returns that commit's tree.
//
// The first run clones the branch alone (no other branches, no tags) into a
// scratch directory beside Dir and moves it into place only when complete, so
// an interrupted clone never leaves a half-made Dir. Later runs fetch the
// branch and point the local branch at the fetched head, whatever it was
// before: a fast-forward, a diverged or force-pushed history and a rewind
// all end at the remote head. Nothing is ever merged or checked out.
//
// Dir holding a checkout made by an earlier chartsync (a work tree with a
// .git directory) is converted in place: its .git becomes Dir and the work
// tree is removed. A Dir that is not a repository, is corrupt, or is a copy
// of another URL or branch is replaced by a fresh clone. What the commits
// contain never causes a re-clone (see Tree.Problems).
//
// The full history of the branch is kept (no shallow clone): the first clone
// costs more, but each later fetch sends only new objects, and a force-push
// or a history rewrite upstream needs no deepen/unshallow negotiation, which
// is where shallow fetches break.
//
// If the fetch fails, the repository is left as it was and the error says
// what failed, e.g. "fetch origin master: repository not found". If the
// fetch fails while the remote still lists the branch (probed a second
// time), the local repository is taken to be broken and Sync re-clones. A
// failed clone leaves any previous Dir untouched.
//
// Sync honours ctx: cancelling it aborts the transfer and Sync returns an
// error wrapping ctx.Err(). A local path or file:// URL is read in-process:
// objects are copied from the source repository's files, so the git binary
// is not needed and git's ownership check ("dubious ownership") does not
// apply; the source only needs to be readable. Sync is not safe for
// concurrent use on one Dir; the Trees it returns stay readable until the
// next Sync on that Dir.
func Sync(ctx context.Context, opts Options) (*Tree, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolve repository dir: %w", err)
	}
	src, err := newSource(opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sync origin %s: %w", opts.Branch, err)
	}

	repo, openErr := openState(dir, opts)
	if openErr != nil {
		return clone(ctx, dir, opts, src, openErr)
	}
	hash, err := src.fetch(ctx, repo.st, opts.Branch, false)
	if err != nil {
		// A remote that has the branch but fails the fetch points at a
		// broken local repository: start again rather than wedge forever.
		if ctx.Err() != nil || !src.hasBranch(ctx, opts.Branch) {
			return nil, err
		}
		return clone(ctx, dir, opts, src, err)
	}
	tree, err := repo.advance(opts.Branch, hash)
	if err != nil {
		return clone(ctx, dir, opts, src, err)
	}
	return tree, nil
}

func (o Options) validate() error {
	switch {
	case o.URL == "":
		return errors.New("gitsrc: empty URL")
	case o.Branch == "":
		return errors.New("gitsrc: empty branch")
	case o.Dir == "":
		return errors.New("gitsrc: empty repository dir")
	}
	if err := plumbing.NewBranchReferenceName(o.Branch).Validate(); err != nil ||
		strings.HasPrefix(o.Branch, "refs/") {
		return fmt.Errorf("gitsrc: invalid branch name %q", o.Branch)
	}
	if u, err := url.Parse(o.URL); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return fmt.Errorf("gitsrc: URL %s contains a password; put it in Auth.Token", u.Redacted())
		}
	}
	return nil
}

// storedURL is the URL as written to the repository's config: an http(s)
// URL loses its user name, which may be a token. Fetches use the real URL,
// which is never stored.
func storedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil || (u.Scheme != "http" && u.Scheme != "https") {
		return raw
	}
	u.User = nil
	return u.String()
}

// refSpec maps the remote branch onto the local branch of the same name; the
// leading + lets a force-pushed branch replace the old one.
func refSpec(branch string) config.RefSpec {
	return config.RefSpec(fmt.Sprintf("+refs/heads/%s:refs/heads/%[1]s", branch))
}

// newStorage opens the object and reference storage of the bare repository
// in dir.
func newStorage(dir string) *filesystem.Storage {
	return filesystem.NewStorageWithOptions(newPrivateFS(dir), cache.NewObjectLRU(objectCacheSize),
		filesystem.Options{LargeObjectThreshold: largeObject})
}

// openState opens dir as a healthy bare repository of opts.URL and
// opts.Branch, converting a checkout left by an earlier release first. Any
// error means dir must be replaced by a fresh clone.
func openState(dir string, opts Options) (*Repo, error) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	if gd, err := os.Lstat(filepath.Join(dir, git.GitDirName)); err == nil {
		if !gd.IsDir() {
			return nil, fmt.Errorf("%s/.git is not a directory", dir)
		}
		if err := convert(dir, opts); err != nil {
			return nil, fmt.Errorf("convert checkout to a bare repository: %w", err)
		}
	}
	if err := os.Chmod(dir, privateDirMode); err != nil {
		return nil, err
	}
	repo := newRepo(dir)
	if err := repo.check(opts); err != nil {
		return nil, err
	}
	return repo, nil
}

func (r *Repo) check(opts Options) error {
	cfg, err := r.st.Config()
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if !cfg.Core.IsBare || cfg.Core.Worktree != "" {
		return errors.New("not a bare repository")
	}
	rc, ok := cfg.Remotes[remoteName]
	if !ok || len(rc.URLs) != 1 || rc.URLs[0] != storedURL(opts.URL) {
		return errors.New("repository of another URL")
	}
	if len(rc.Fetch) != 1 || rc.Fetch[0] != refSpec(opts.Branch) {
		return errors.New("repository of another branch")
	}
	head, err := r.st.Reference(plumbing.HEAD)
	if err != nil {
		return fmt.Errorf("read HEAD: %w", err)
	}
	if head.Type() != plumbing.SymbolicReference || head.Target() != plumbing.NewBranchReferenceName(opts.Branch) {
		return fmt.Errorf("HEAD is %s", head)
	}
	ref, err := r.st.Reference(head.Target())
	if err != nil {
		return fmt.Errorf("resolve HEAD: %w", err)
	}
	if _, err := r.tree(ref.Hash()); err != nil {
		return err
	}
	return nil
}

// advance points the branch and HEAD at hash and returns its tree.
func (r *Repo) advance(branch string, hash plumbing.Hash) (*Tree, error) {
	tree, err := r.tree(hash)
	if err != nil {
		return nil, err
	}
	if err := setHead(r.st, branch, hash); err != nil {
		return nil, err
	}
	return tree, nil
}

// setHead points branch at hash and HEAD at branch, writing only what
// changes (a no-op Sync writes nothing).
func setHead(st *filesystem.Storage, branch string, hash plumbing.Hash) error {
	name := plumbing.NewBranchReferenceName(branch)
	for _, ref := range []*plumbing.Reference{
		plumbing.NewHashReference(name, hash),
		plumbing.NewSymbolicReference(plumbing.HEAD, name),
	} {
		if old, err := st.Reference(ref.Name()); err == nil && old.String() == ref.String() {
			continue
		}
		if err := st.SetReference(ref); err != nil {
			return fmt.Errorf("set %s: %w", ref.Name(), err)
		}
	}
	return nil
}

// convert turns the checkout of an earlier release in dir (a work tree with
// a .git directory) into a bare repository in dir: .git moves into a scratch
// directory, the work tree goes, and the scratch directory becomes dir. Its
// objects are kept, so nothing is fetched again. Interrupted, it leaves
// either the checkout or no dir (and Sync clones).
func convert(dir string, opts Options) error {
	tmp := scratchDir(dir)
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("clear scratch dir: %w", err)
	}
	if err := os.Rename(filepath.Join(dir, git.GitDirName), tmp); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove work tree: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	// The index belonged to the work tree; FETCH_HEAD and reflogs may hold
	// the URL as it was, user name (a token?) included.
	for _, name := range []string{"index", "FETCH_HEAD", "ORIG_HEAD", "logs"} {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	if err := makePrivate(dir); err != nil {
		return err
	}
	st := newStorage(dir)
	cfg, err := st.Config()
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	cfg.Core.IsBare = true
	cfg.Core.Worktree = ""
	if rc, ok := cfg.Remotes[remoteName]; ok {
		for i, u := range rc.URLs {
			rc.URLs[i] = storedURL(u)
		}
		old := config.RefSpec(fmt.Sprintf("+refs/heads/%s:refs/remotes/%s/%[1]s", opts.Branch, remoteName))
		if len(rc.Fetch) == 1 && rc.Fetch[0] == old {
			rc.Fetch[0] = refSpec(opts.Branch)
		}
	}
	if err := st.SetConfig(cfg); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// makePrivate takes group and other permissions off everything under dir.
func makePrivate(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if m := fi.Mode().Perm(); m&0o077 != 0 {
			return os.Chmod(p, m&privateDirMode)
		}
		return nil
	})
}

func scratchDir(dir string) string {
	return filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".clone")
}

// clone makes a fresh repository in a scratch directory next to dir and,
// once it is complete, replaces dir with it. why says why the old dir is
// replaced.
func clone(ctx context.Context, dir string, opts Options, src source, why error) (*Tree, error) {
	wrap := func(err error) error {
		if why != nil && !errors.Is(why, os.ErrNotExist) {
			return fmt.Errorf("re-clone (%v): %w", why, err)
		}
		return err
	}
	tmp := scratchDir(dir)
	if err := os.RemoveAll(tmp); err != nil {
		return nil, wrap(fmt.Errorf("clear scratch dir: %w", err))
	}
	if err := os.MkdirAll(filepath.Dir(tmp), privateDirMode); err != nil {
		return nil, wrap(fmt.Errorf("create scratch dir: %w", err))
	}
	if err := os.Mkdir(tmp, privateDirMode); err != nil {
		return nil, wrap(fmt.Errorf("create scratch dir: %w", err))
	}
	if err := cloneInto(ctx, tmp, opts, src); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, wrap(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, wrap(fmt.Errorf("remove old repository: %w", err))
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, wrap(fmt.Errorf("move clone into place: %w", err))
	}
	repo := newRepo(dir)
	ref, err := repo.st.Reference(plumbing.NewBranchReferenceName(opts.Branch))
	if err != nil {
		return nil, wrap(fmt.Errorf("resolve cloned branch: %w", err))
	}
	tree, err := repo.tree(ref.Hash())
	if err != nil {
		return nil, wrap(err)
	}
	return tree, nil
}

func cloneInto(ctx context.Context, tmp string, opts Options, src source) error {
	st := newStorage(tmp)
	repo, err := git.InitWithOptions(st, nil, git.InitOptions{
		DefaultBranch: plumbing.NewBranchReferenceName(opts.Branch),
	})
	if err != nil {
		return fmt.Errorf("init repository: %w", err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{
		Name:  remoteName,
		URLs:  []string{storedURL(opts.URL)},
		Fetch: []config.RefSpec{refSpec(opts.Branch)},
	}); err != nil {
		return fmt.Errorf("create remote: %w", err)
	}
	hash, err := src.fetch(ctx, st, opts.Branch, true)
	if err != nil {
		return err
	}
	c, err := object.GetCommit(st, hash)
	if err != nil {
		return fmt.Errorf("read commit %s: %w", hash, err)
	}
	if _, err := c.Tree(); err != nil {
		return fmt.Errorf("read tree of %s: %w", hash, err)
	}
	return setHead(st, opts.Branch, hash)
}

// source is where objects come from: a remote reached through go-git's
// transports, or a local repository read in-process.
type source interface {
	// fetch copies the objects of branch's head that st lacks into st and
	// returns the head; first says st is empty.
	fetch(ctx context.Context, st *filesystem.Storage, branch string, first bool) (plumbing.Hash, error)
	// hasBranch reports whether the source answers and has branch.
	hasBranch(ctx context.Context, branch string) bool
}

func newSource(opts Options) (source, error) {
	ep, err := transport.NewEndpoint(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("parse URL: %w", err)
	}
	if ep.Protocol == "file" {
		return localSource{path: ep.Path}, nil
	}
	auth, err := authMethod(opts.URL, opts.Auth)
	if err != nil {
		return nil, err
	}
	return remoteSource{url: opts.URL, auth: auth}, nil
}

// fetchErr wraps err as the failure of fetching branch, naming ctx's error
// too if ctx is done (a transport may report a cancellation as an I/O error).
func fetchErr(ctx context.Context, branch string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	return fmt.Errorf("fetch %s %s: %w", remoteName, branch, err)
}

type remoteSource struct {
	url  string
	auth transport.AuthMethod
}

func (r remoteSource) remote(st storage.Storer, branch string) *git.Remote {
	return git.NewRemote(st, &config.RemoteConfig{
		Name:  remoteName,
		URLs:  []string{r.url},
		Fetch: []config.RefSpec{refSpec(branch)},
	})
}

func (r remoteSource) fetch(ctx context.Context, st *filesystem.Storage, branch string, _ bool) (plumbing.Hash, error) {
	err := r.remote(packStorage{st, ctx}, branch).FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{refSpec(branch)},
		Auth:     r.auth,
		Tags:     git.NoTags,
		Force:    true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return plumbing.ZeroHash, fetchErr(ctx, branch, err)
	}
	ref, err := st.Reference(plumbing.NewBranchReferenceName(branch))
	if err != nil {
		return plumbing.ZeroHash, fetchErr(ctx, branch, fmt.Errorf("resolve fetched head: %w", err))
	}
	return ref.Hash(), nil
}

func (r remoteSource) hasBranch(ctx context.Context, branch string) bool {
	refs, err := r.remote(memory.NewStorage(), branch).ListContext(ctx, &git.ListOptions{Auth: r.auth})
	if err != nil {
		return false
	}
	want := plumbing.NewBranchReferenceName(branch)
	for _, ref := range refs {
		if ref.Name() == want {
			return true
		}
	}
	return false
}
