package packager

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chartsync/chartsync/internal/gitsrc"
)

// TestGoldenDigestsFromGitObjects: the reference charts committed to git and
// read from git objects (gitsrc's tree, as the syncer does) give exactly the
// golden digests, and a checkout's .git never shows.
func TestGoldenDigestsFromGitObjects(t *testing.T) {
	root := t.TempDir()
	goldenTree(t, root)
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "golden"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t",
			"GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_NOSYSTEM=1", "HOME="+root)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	repo, err := gitsrc.Open(filepath.Join(root, ".git"))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := repo.Tree("HEAD")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	charts, errs := Discover(ctx, tree.FS, []string{"charts/*"})
	if len(errs) > 0 || len(charts) != len(goldenDigests) {
		t.Fatalf("Discover = %v, %v", charts, errs)
	}
	for _, c := range charts {
		pkg, err := Build(ctx, tree.FS, c, Options{})
		if err != nil {
			t.Fatalf("Build %s: %v", c.Dir, err)
		}
		if pkg.Digest != goldenDigests[c.Dir] {
			t.Errorf("%s: digest %s, want %s", c.Dir, pkg.Digest, goldenDigests[c.Dir])
		}
	}
}
