package hostile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chartsync/chartsync/internal/testenv"
)

// Issue 9 case 1: no chart can lie about another through its package file
// name. Chart "a-1.0.0" version 1.0.0 and chart "a" version 1.0.0-1.0.0
// both package as a-1.0.0-1.0.0.tgz.

// TestFileNameCollisionInGit: both in git in one cycle: both fail as a
// conflict naming the other, nothing of theirs is stored or indexed, and
// every other chart is published; the same on the next cycle.
func TestFileNameCollisionInGit(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/a-1.0.0", "a-1.0.0", "1.0.0"), testenv.Chart("charts/a", "a", "1.0.0-1.0.0"), testenv.Chart("charts/ok", "ok", "1.0.0")))
	r.Commit("collide")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	for cycle := range 2 {
		res := s.mustRun(1, "run", "--once")
		if cycle == 0 {
			res.published(t, "charts/ok")
			res.only(t, "charts/a", "charts/a-1.0.0", "charts/ok")
		} else {
			res.only(t, "charts/a", "charts/a-1.0.0")
		}
		res.failed(t, "charts/a", "conflict", "a-1.0.0-1.0.0.tgz", `"a-1.0.0" 1.0.0 (charts/a-1.0.0)`)
		res.failed(t, "charts/a-1.0.0", "conflict", "a-1.0.0-1.0.0.tgz", `"a" 1.0.0-1.0.0 (charts/a)`)
		want(t, "indexed", s.indexed(), "ok-1.0.0")
		want(t, "stored", s.storedNames(), "ok-1.0.0.tgz")
	}
}

// TestFileNameCollisionWithPublished: the squatter is published first,
// then its directory is replaced by the real chart (the issue's "directories
// swapped"). The index gives the file name to the squatter, so the real
// chart fails every cycle, and the published package and index stay as
// they are: `helm template` of a 1.0.0-1.0.0 can never render the
// squatter's templates.
func TestFileNameCollisionWithPublished(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Chart("charts/x", "a-1.0.0", "1.0.0"))
	r.Commit("squat")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	s.mustRun(0, "run", "--once").published(t, "charts/x")
	before := s.stored()["a-1.0.0-1.0.0.tgz"]
	r.Git("rm", "-r", "-q", "charts/x")
	r.Write(testenv.Chart("charts/x", "a", "1.0.0-1.0.0"))
	r.Commit("the real chart a in its place")
	for range 2 {
		res := s.mustRun(1, "run", "--once")
		res.only(t, "charts/x")
		res.failed(t, "charts/x", "conflict", "package file name claimed by another chart version", `"a-1.0.0" 1.0.0`)
		want(t, "indexed", s.indexed(), "a-1.0.0-1.0.0")
		if !bytes.Equal(s.stored()["a-1.0.0-1.0.0.tgz"], before) {
			t.Error("the published package changed")
		}
	}
}

// TestFileNameCollisionInStore: a package stored (not indexed) under the
// file name whose Chart.yaml is another chart version's: the chart in git
// fails as a conflict and neither is indexed.
func TestFileNameCollisionInStore(t *testing.T) {
	other := newRepo(t)
	other.Write(testenv.Chart("charts/x", "a-1.0.0", "1.0.0"))
	other.Commit("squat")
	squatter := newSite(t, other, []string{"charts/*"}, "", "")
	squatter.mustRun(0, "run", "--once")
	pkg := squatter.stored()["a-1.0.0-1.0.0.tgz"]

	r := newRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/a", "a", "1.0.0-1.0.0"), testenv.Chart("charts/ok", "ok", "1.0.0")))
	r.Commit("real")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	if err := os.MkdirAll(s.store, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.store, "a-1.0.0-1.0.0.tgz"), pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	res := s.mustRun(1, "run", "--once")
	res.published(t, "charts/ok")
	res.failed(t, "charts/a", "conflict", "package file name claimed by another chart version", `the store holds "a-1.0.0" 1.0.0`)
	want(t, "indexed", s.indexed(), "ok-1.0.0")
	if !bytes.Equal(s.stored()["a-1.0.0-1.0.0.tgz"], pkg) {
		t.Error("the stored package changed")
	}
}

// TestIndexURLMatchedExactly: an index entry of another chart whose url
// merely ends in bar-1.0.0.tgz keeps neither the real bar out of the index
// nor makes it MODIFIED.
func TestIndexURLMatchedExactly(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Chart("charts/bar", "bar", "1.0.0"))
	r.Commit("bar")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	if err := os.MkdirAll(s.store, 0o755); err != nil {
		t.Fatal(err)
	}
	index := `apiVersion: v1
entries:
  foo:
  - apiVersion: v2
    name: foo
    version: 1.0.0
    digest: 0000000000000000000000000000000000000000000000000000000000000000
    urls:
    - https://elsewhere.invalid/mirror/bar-1.0.0.tgz
generated: "2026-01-01T00:00:00Z"
`
	if err := os.WriteFile(filepath.Join(s.store, "index.yaml"), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	for cycle := range 2 {
		res := s.mustRun(0, "run", "--once")
		if cycle == 0 {
			res.published(t, "charts/bar")
		}
		if strings.Contains(res.stdout, "MODIFIED") {
			t.Errorf("cycle %d reports MODIFIED:\n%s", cycle, res.stdout)
		}
		want(t, "indexed", s.indexed(), "bar-1.0.0", "foo-1.0.0")
	}
}
