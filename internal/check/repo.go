package check

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/chartsync/chartsync/internal/gitsrc"
)

// Checkout is the git repository of a developer's or CI's checkout, for
// reading the trees of its commits.
type Checkout struct {
	resolver *git.Repository
	repo     *gitsrc.Repo
}

// OpenCheckout opens the repository of the checkout that holds dir (dir or
// a parent has .git: a directory, or a file naming a linked worktree's git
// directory). Close it when done.
func OpenCheckout(dir string) (*Checkout, error) {
	r, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return nil, fmt.Errorf("open git repository at %s: %w", dir, err)
	}
	common, err := commonDir(dir)
	if err != nil {
		return nil, err
	}
	repo, err := gitsrc.Open(common)
	if err != nil {
		return nil, err
	}
	return &Checkout{resolver: r, repo: repo}, nil
}

// Close releases the repository's open files.
func (c *Checkout) Close() error { return c.repo.Close() }

// Tree returns the tree of rev: anything git rev-parse takes that go-git
// resolves (HEAD, HEAD~1, a branch, a remote branch such as origin/main, a
// tag, a full or short commit id).
func (c *Checkout) Tree(rev string) (*gitsrc.Tree, error) {
	h, err := c.resolver.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, fmt.Errorf("resolve revision %q: %w", rev, err)
	}
	// A tag or other object: peel to its commit.
	if _, err := c.resolver.CommitObject(*h); err != nil {
		return nil, fmt.Errorf("resolve revision %q: %s is not a commit: %w", rev, h, err)
	}
	t, err := c.repo.Tree(h.String())
	if err != nil {
		return nil, fmt.Errorf("read revision %q: %w", rev, err)
	}
	return t, nil
}

// commonDir finds the git directory holding the objects of the checkout
// around dir: .git itself, or for a linked worktree (.git is a file
// "gitdir: X") the common directory X's commondir names.
func commonDir(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", dir, err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		dotgit := filepath.Join(d, ".git")
		fi, err := os.Stat(dotgit)
		switch {
		case err == nil && fi.IsDir():
			return dotgit, nil
		case err == nil:
			return linkedCommonDir(d, dotgit)
		case !os.IsNotExist(err):
			return "", fmt.Errorf("find git directory: %w", err)
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("find git directory: no .git in %s or above", dir)
		}
	}
}

func linkedCommonDir(root, dotgit string) (string, error) {
	data, err := os.ReadFile(dotgit)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", dotgit, err)
	}
	gitdir, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "gitdir:")
	if !ok {
		return "", fmt.Errorf("read %s: not a gitdir file", dotgit)
	}
	gitdir = strings.TrimSpace(gitdir)
	if !filepath.IsAbs(gitdir) {
		gitdir = filepath.Join(root, gitdir)
	}
	data, err = os.ReadFile(filepath.Join(gitdir, "commondir"))
	if os.IsNotExist(err) {
		return gitdir, nil
	}
	if err != nil {
		return "", fmt.Errorf("read git common dir: %w", err)
	}
	common := strings.TrimSpace(string(data))
	if !filepath.IsAbs(common) {
		common = filepath.Join(gitdir, common)
	}
	return filepath.Clean(common), nil
}

// Unchanged returns a function reporting whether directory dir (slash
// separated) is the same git tree at revisions base and head and holds no
// symlink and no submodule: then nothing the packager reads from inside it
// differs. (A file:// dependency reads outside; Compare checks that.) It
// reads the two commits' tree objects down to dir, and dir's subtree once.
func (c *Checkout) Unchanged(base, head string) (func(dir string) bool, error) {
	bt, err := c.rootTree(base)
	if err != nil {
		return nil, err
	}
	ht, err := c.rootTree(head)
	if err != nil {
		return nil, err
	}
	return func(dir string) bool {
		b, err := bt.Tree(dir)
		if err != nil {
			return false
		}
		h, err := ht.Tree(dir)
		if err != nil || b.Hash != h.Hash {
			return false
		}
		return selfContained(h)
	}, nil
}

func (c *Checkout) rootTree(rev string) (*object.Tree, error) {
	h, err := c.resolver.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, fmt.Errorf("resolve revision %q: %w", rev, err)
	}
	cm, err := c.resolver.CommitObject(*h)
	if err != nil {
		return nil, fmt.Errorf("read revision %q: %w", rev, err)
	}
	t, err := cm.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %q: %w", rev, err)
	}
	return t, nil
}

// selfContained reports whether t and its subtrees hold only regular files
// and directories.
func selfContained(t *object.Tree) bool {
	for _, e := range t.Entries {
		switch e.Mode {
		case filemode.Regular, filemode.Executable, filemode.Deprecated:
		case filemode.Dir:
			sub, err := t.Tree(e.Name)
			if err != nil || !selfContained(sub) {
				return false
			}
		default:
			return false
		}
	}
	return true
}
