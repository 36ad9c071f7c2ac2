package verify

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/chartsync/chartsync/internal/gitsrc"
	"github.com/chartsync/chartsync/internal/packager"
	"github.com/chartsync/chartsync/internal/publisher"
	"github.com/chartsync/chartsync/internal/testenv"
)

// chartFiles returns the files of a small chart in dir.
func chartFiles(dir, name, version string) map[string]string {
	return map[string]string{
		dir + "/Chart.yaml":        "apiVersion: v2\nname: " + name + "\nversion: " + version + "\n",
		dir + "/values.yaml":       "replicas: 1\n",
		dir + "/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n",
	}
}

// TestRun: a history of five commits where plain never changes, linked
// reads a file outside its directory through a symlink and that file
// changes, and edited is changed without a bump. The index holds the
// first commit's builds: each is verified at the first commit, and only
// the builds needed are made.
func TestRun(t *testing.T) {
	ctx := context.Background()
	r := testenv.NewGitRepo(t)
	r.Write(chartFiles("charts/plain", "plain", "1.0.0"))
	r.Write(chartFiles("charts/linked", "linked", "1.0.0"))
	r.Write(map[string]string{"charts/linked/files/shared.conf": "-> ../../../shared/conf"})
	r.Write(map[string]string{"shared/conf": "v1\n"})
	r.Write(chartFiles("charts/edited", "edited", "1.0.0"))
	c1 := r.Commit("c1")
	r.Write(map[string]string{"README": "2\n"})
	r.Commit("c2")
	r.Write(map[string]string{"shared/conf": "v2\n"}) // linked changes, its directory does not
	r.Commit("c3")
	r.Write(map[string]string{"charts/edited/values.yaml": "replicas: 2\n"}) // unbumped
	r.Commit("c4")
	r.Write(map[string]string{"README": "5\n"})
	head := r.Commit("c5")

	state := filepath.Join(t.TempDir(), "git")
	if _, err := gitsrc.Sync(ctx, gitsrc.Options{URL: r.Dir, Branch: "main", Dir: state}); err != nil {
		t.Fatal(err)
	}
	repo, err := gitsrc.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	globs := []string{"charts/*"}

	// The index a publisher running at c1 wrote.
	tree, err := repo.Tree(c1)
	if err != nil {
		t.Fatal(err)
	}
	charts, errs := packager.Discover(ctx, tree.FS, globs)
	if len(errs) > 0 || len(charts) != 3 {
		t.Fatalf("discover at c1: %v %v", charts, errs)
	}
	idx := publisher.NewIndex()
	digest := map[string]string{}
	for _, c := range charts {
		pkg, err := packager.Build(ctx, tree.FS, c, packager.Options{Lint: packager.LintSkip})
		if err != nil {
			t.Fatal(err)
		}
		digest[c.Metadata.Name] = pkg.Digest
		if err := idx.MustAdd(pkg.Metadata, publisher.Filename(c.Metadata.Name, c.Metadata.Version), "", pkg.Digest); err != nil {
			t.Fatal(err)
		}
	}
	ghost := &chart.Metadata{APIVersion: "v2", Name: "ghost", Version: "9.9.9"}
	if err := idx.MustAdd(ghost, "ghost-9.9.9.tgz", "", strings.Repeat("0", 64)); err != nil {
		t.Fatal(err)
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	entries, st, err := Run(ctx, repo, head, globs, idx, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Entry{}
	for _, e := range entries {
		got[e.Name] = e
	}
	for _, name := range []string{"plain", "linked", "edited"} {
		if e := got[name]; e.Status != Verified || e.Commit != c1 || e.Dir != "charts/"+name || e.Digest != digest[name] {
			t.Errorf("%s: %+v, want verified at c1 %s", name, e, c1)
		}
	}
	if e := got["ghost"]; e.Status != NotInGit || e.Commit != "" {
		t.Errorf("ghost: %+v, want not in git", e)
	}
	// plain: one build (its directory never changes); edited: two (before
	// and after the edit); linked: one per commit, as the tree it reads
	// through its link changes.
	if st.Commits != 5 || st.Builds != 1+2+5 {
		t.Errorf("stats %+v, want 5 commits and 8 builds", st)
	}

	// An index digest no commit builds: differs, with the newest commit
	// holding that version.
	idx.Versions("plain")[0].Digest = strings.Repeat("1", 64)
	entries, _, err = Run(ctx, repo, head, globs, idx, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name == "plain" && (e.Status != Differs || e.Commit != head || e.Reason == "") {
			t.Errorf("plain with another digest: %+v, want differs, in git at the head", e)
		}
	}
}
