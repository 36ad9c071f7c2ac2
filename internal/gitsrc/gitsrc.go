// Package gitsrc keeps a local checkout of one branch of a remote git
// repository exactly equal to the branch head. It knows git (go-git) and
// nothing of Helm or storage.
//
// The checkout directory is owned by gitsrc: anything in it that is not in
// the branch head (local edits, untracked or ignored files, a checkout of
// another URL or branch, a broken .git) is thrown away without asking.
package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// remoteName is the name of the one remote of every checkout.
const remoteName = "origin"

// Options says which branch of which repository to check out where.
type Options struct {
	// URL of the repository: a local path, file://, https://, http://,
	// ssh:// or scp-like user@host:path. Credentials belong in Auth: a URL
	// with a password in it is refused, because the URL is stored in
	// .git/config and may appear in error messages.
	URL string
	// Branch is the branch name, e.g. "master" (not "refs/heads/master").
	Branch string
	// Dir is the checkout directory; it is created if missing. gitsrc owns it
	// and its sibling "."+base(Dir)+".clone" (scratch space for a clone).
	Dir string
	// Auth holds credentials for ssh and http(s) URLs.
	Auth Auth
}

// Tree is the checked-out commit.
type Tree struct {
	// Commit is the full hex id of the checked-out commit.
	Commit string
	// Time is the committer time of Commit, in the committer's time zone.
	Time time.Time
	// Root is the absolute path of the work tree (Options.Dir made absolute).
	// Its files are exactly those of Commit: regular files with the
	// executable bit as recorded in git, symlinks as symlinks (their targets
	// unchanged), nothing else apart from the .git directory.
	Root string
}

// Sync makes opts.Dir an exact checkout of the head of opts.Branch at opts.URL
// and returns it.
//
// The first run clones the branch alone (no other branches, no tags) into a
// scratch directory beside Dir and moves it into place only when complete, so
// an interrupted clone never leaves a half-made Dir. Later runs fetch the
// branch and hard-reset the work tree to the fetched head: never a merge. A
// fast-forward, a diverged or force-pushed history, local modifications,
// deleted files and untracked or ignored files all end in the same state: the
// work tree equals the remote head. A Dir that is not a git checkout, is
// corrupt, or is a checkout of another URL or branch is replaced by a fresh
// clone.
//
// The full history of the branch is kept (no shallow clone): the first clone
// costs more, but each later fetch sends only new objects, and a force-push
// or a history rewrite upstream needs no deepen/unshallow negotiation, which
// is where shallow fetches break.
//
// If the fetch fails, the previous checkout is left as it was and the error
// says what failed, e.g. "fetch origin master: repository not found". If the
// fetch fails while the remote still lists the branch (probed with a second
// connection), the local repository is taken to be broken and Sync re-clones.
// A reset that does not leave the work tree clean also ends in a re-clone. A
// failed clone leaves any previous Dir untouched.
//
// Sync honours ctx: cancelling it aborts the network transfer and Sync returns
// an error wrapping ctx.Err(); the local reset that follows a completed fetch
// runs to its end. Local and file:// URLs need the git binary
// (git-upload-pack) on PATH; go-git runs it as the server side. Sync is not
// safe for concurrent use on one Dir.
func Sync(ctx context.Context, opts Options) (*Tree, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolve checkout dir: %w", err)
	}
	auth, err := authMethod(opts.URL, opts.Auth)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sync origin %s: %w", opts.Branch, err)
	}

	repo, openErr := openCheckout(dir, opts)
	if openErr != nil {
		return clone(ctx, dir, opts, auth, openErr)
	}
	defer closeRepo(repo)

	hash, err := fetch(ctx, repo, opts.Branch, auth)
	if err != nil {
		// A remote that answers ls-remote but fails the fetch points at a
		// broken local repository: start again rather than wedge forever.
		if ctx.Err() != nil || !remoteHasBranch(ctx, repo, opts.Branch, auth) {
			return nil, err
		}
		return clone(ctx, dir, opts, auth, err)
	}
	tree, err := checkout(repo, dir, opts.Branch, hash)
	if err != nil {
		return clone(ctx, dir, opts, auth, err)
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
		return errors.New("gitsrc: empty checkout dir")
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

// refSpec maps the branch alone onto its remote-tracking ref; the leading +
// lets a force-pushed branch replace the old one.
func refSpec(branch string) config.RefSpec {
	return config.RefSpec(fmt.Sprintf("+refs/heads/%s:refs/remotes/%s/%[1]s", branch, remoteName))
}

// openRepo opens (or, with create, initialises) the repository in dir. The
// work tree is a bound filesystem so symlink targets are written unchanged
// and no write can land outside dir.
func openRepo(dir string, branch string, create bool) (*git.Repository, error) {
	st := filesystem.NewStorage(osfs.New(filepath.Join(dir, git.GitDirName), osfs.WithBoundOS()),
		cache.NewObjectLRUDefault())
	wt := newWorktreeFS(dir)
	if create {
		return git.InitWithOptions(st, wt, git.InitOptions{
			DefaultBranch: plumbing.NewBranchReferenceName(branch),
		})
	}
	return git.Open(st, wt)
}

func closeRepo(r *git.Repository) {
	if c, ok := r.Storer.(interface{ Close() error }); ok {
		_ = c.Close()
	}
}

// openCheckout opens dir as an existing checkout of opts.URL and opts.Branch.
// Any error means dir must be replaced by a fresh clone.
func openCheckout(dir string, opts Options) (*git.Repository, error) {
	for _, p := range []string{dir, filepath.Join(dir, git.GitDirName)} {
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("%s is not a directory", p)
		}
	}
	repo, err := openRepo(dir, opts.Branch, false)
	if err != nil {
		return nil, fmt.Errorf("open repository: %w", err)
	}
	if err := checkRepo(repo, opts); err != nil {
		closeRepo(repo)
		return nil, err
	}
	return repo, nil
}

func checkRepo(repo *git.Repository, opts Options) error {
	cfg, err := repo.Config()
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if cfg.Core.IsBare || cfg.Core.Worktree != "" {
		return errors.New("not a plain checkout")
	}
	rc, ok := cfg.Remotes[remoteName]
	if !ok || len(rc.URLs) != 1 || rc.URLs[0] != opts.URL {
		return errors.New("checkout of another URL")
	}
	if len(rc.Fetch) != 1 || rc.Fetch[0] != refSpec(opts.Branch) {
		return errors.New("checkout of another branch")
	}
	head, err := repo.Head()
	if err != nil {
		return fmt.Errorf("resolve HEAD: %w", err)
	}
	if head.Name() != plumbing.NewBranchReferenceName(opts.Branch) {
		return fmt.Errorf("HEAD is %s", head.Name())
	}
	c, err := repo.CommitObject(head.Hash())
	if err != nil {
		return fmt.Errorf("read HEAD commit: %w", err)
	}
	if _, err := c.Tree(); err != nil {
		return fmt.Errorf("read HEAD tree: %w", err)
	}
	if _, err := repo.Storer.Index(); err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	return nil
}

// fetch updates the remote-tracking ref of branch and returns where it points.
func fetch(ctx context.Context, repo *git.Repository, branch string, auth transport.AuthMethod) (plumbing.Hash, error) {
	err := repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{refSpec(branch)},
		Auth:       auth,
		Tags:       git.NoTags,
		Force:      true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%w)", ctxErr, err)
		}
		return plumbing.ZeroHash, fmt.Errorf("fetch %s %s: %w", remoteName, branch, err)
	}
	ref, err := repo.Reference(plumbing.NewRemoteReferenceName(remoteName, branch), true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("fetch %s %s: resolve fetched head: %w", remoteName, branch, err)
	}
	return ref.Hash(), nil
}

// remoteHasBranch reports whether the remote answers and has branch.
func remoteHasBranch(ctx context.Context, repo *git.Repository, branch string, auth transport.AuthMethod) bool {
	r, err := repo.Remote(remoteName)
	if err != nil {
		return false
	}
	refs, err := r.ListContext(ctx, &git.ListOptions{Auth: auth})
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

// clone makes a fresh checkout in a scratch directory next to dir and, once
// it is complete, replaces dir with it. why says why the old dir is replaced.
func clone(ctx context.Context, dir string, opts Options, auth transport.AuthMethod, why error) (*Tree, error) {
	wrap := func(err error) error {
		if why != nil && !errors.Is(why, os.ErrNotExist) {
			return fmt.Errorf("re-clone (%v): %w", why, err)
		}
		return err
	}
	tmp := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".clone")
	if err := os.RemoveAll(tmp); err != nil {
		return nil, wrap(fmt.Errorf("clear scratch dir: %w", err))
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, wrap(fmt.Errorf("create scratch dir: %w", err))
	}
	tree, err := cloneInto(ctx, tmp, opts, auth)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, wrap(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, wrap(fmt.Errorf("remove old checkout: %w", err))
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, wrap(fmt.Errorf("move clone into place: %w", err))
	}
	tree.Root = dir
	return tree, nil
}

func cloneInto(ctx context.Context, tmp string, opts Options, auth transport.AuthMethod) (*Tree, error) {
	repo, err := openRepo(tmp, opts.Branch, true)
	if err != nil {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	defer closeRepo(repo)
	if _, err := repo.CreateRemote(&config.RemoteConfig{
		Name:  remoteName,
		URLs:  []string{opts.URL},
		Fetch: []config.RefSpec{refSpec(opts.Branch)},
	}); err != nil {
		return nil, fmt.Errorf("create remote: %w", err)
	}
	hash, err := fetch(ctx, repo, opts.Branch, auth)
	if err != nil {
		return nil, err
	}
	return checkout(repo, tmp, opts.Branch, hash)
}

// checkout points the local branch and HEAD at hash, hard-resets index and
// work tree to it, removes everything the index does not track, and checks
// that the result is clean.
func checkout(repo *git.Repository, root, branch string, hash plumbing.Hash) (*Tree, error) {
	commit, err := repo.CommitObject(hash)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", hash, err)
	}
	name := plumbing.NewBranchReferenceName(branch)
	if err := repo.Storer.SetReference(plumbing.NewHashReference(name, hash)); err != nil {
		return nil, fmt.Errorf("set branch %s: %w", branch, err)
	}
	if err := repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, name)); err != nil {
		return nil, fmt.Errorf("set HEAD: %w", err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, fmt.Errorf("open work tree: %w", err)
	}
	if err := wt.Reset(&git.ResetOptions{Commit: hash, Mode: git.HardReset}); err != nil {
		return nil, fmt.Errorf("reset to %s: %w", hash, err)
	}
	if err := clean(repo, root); err != nil {
		return nil, err
	}
	st, err := wt.Status()
	if err != nil {
		return nil, fmt.Errorf("status after reset: %w", err)
	}
	if !st.IsClean() {
		return nil, fmt.Errorf("work tree not clean after reset to %s: %s", hash, summarize(st))
	}
	return &Tree{Commit: hash.String(), Time: commit.Committer.When, Root: root}, nil
}

// clean removes every file, symlink and directory under root that the index
// does not track (git clean -ffdx), keeping .git at the top.
func clean(repo *git.Repository, root string) error {
	idx, err := repo.Storer.Index()
	if err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	files := make(map[string]bool, len(idx.Entries))
	dirs := map[string]bool{}
	for _, e := range idx.Entries {
		files[e.Name] = true
		for d := filepath.Dir(filepath.FromSlash(e.Name)); d != "."; d = filepath.Dir(d) {
			dirs[filepath.ToSlash(d)] = true
		}
	}
	var walk func(rel string) error
	walk = func(rel string) error {
		entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return fmt.Errorf("clean work tree: %w", err)
		}
		for _, e := range entries {
			p := e.Name()
			if rel != "" {
				p = rel + "/" + p
			}
			switch {
			case p == git.GitDirName:
			case files[p]:
				// Tracked: a directory here is a submodule, left alone.
			case e.IsDir() && dirs[p]:
				if err := walk(p); err != nil {
					return err
				}
			default:
				if err := os.RemoveAll(filepath.Join(root, filepath.FromSlash(p))); err != nil {
					return fmt.Errorf("clean work tree: %w", err)
				}
			}
		}
		return nil
	}
	return walk("")
}

func summarize(st git.Status) string {
	const limit = 5
	var b strings.Builder
	n := 0
	for path, s := range st {
		if n == limit {
			fmt.Fprintf(&b, " and %d more", len(st)-limit)
			break
		}
		if n > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%c%c %s", s.Staging, s.Worktree, path)
		n++
	}
	return b.String()
}
