package verify

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/chartsync/chartsync/internal/gitsrc"
	"github.com/chartsync/chartsync/internal/packager"
	"github.com/chartsync/chartsync/internal/publisher"
)

type gitRepo struct {
	t   *testing.T
	dir string
}

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (r *gitRepo) write(name, content string) {
	r.t.Helper()
	p := filepath.Join(r.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	os.Remove(p)
	var err error
	if target, ok := strings.CutPrefix(content, "-> "); ok {
		err = os.Symlink(target, p)
	} else {
		err = os.WriteFile(p, []byte(content), 0o644)
	}
	if err != nil {
		r.t.Fatal(err)
	}
}

func (r *gitRepo) commit(msg string) string {
	r.t.Helper()
	r.git("add", "-A")
	r.git("commit", "-q", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

func (r *gitRepo) chart(dir, name, version string) {
	r.write(dir+"/Chart.yaml", "apiVersion: v2\nname: "+name+"\nversion: "+version+"\n")
	r.write(dir+"/values.yaml", "replicas: 1\n")
	r.write(dir+"/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n")
}

// TestRun: a history of five commits where plain never changes, linked
// reads a file outside its directory through a symlink and that file
// changes, and edited is changed without a bump. The index holds the
// first commit's builds: each is verified at the first commit, and only
// the builds needed are made.
func TestRun(t *testing.T) {
	ctx := context.Background()
	r := &gitRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	r.chart("charts/plain", "plain", "1.0.0")
	r.chart("charts/linked", "linked", "1.0.0")
	r.write("charts/linked/files/shared.conf", "-> ../../../shared/conf")
	r.write("shared/conf", "v1\n")
	r.chart("charts/edited", "edited", "1.0.0")
	c1 := r.commit("c1")
	r.write("README", "2\n")
	r.commit("c2")
	r.write("shared/conf", "v2\n") // linked changes, its directory does not
	r.commit("c3")
	r.write("charts/edited/values.yaml", "replicas: 2\n") // unbumped
	r.commit("c4")
	r.write("README", "5\n")
	head := r.commit("c5")

	state := filepath.Join(t.TempDir(), "git")
	if _, err := gitsrc.Sync(ctx, gitsrc.Options{URL: r.dir, Branch: "main", Dir: state}); err != nil {
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
	idx.Entries["plain"][0].Digest = strings.Repeat("1", 64)
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
