package e2e

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chartsync/chartsync/internal/testenv"
)

// TestRunHistory: run --history into an empty store publishes every
// version of the history, built from the commit it appeared in, so verify
// finds them all; into the store a normal publisher filled over the same
// history it changes nothing.
func TestRunHistory(t *testing.T) {
	r := newGitRepo(t)
	normal, normalStore := newLocalSite(t, r, "")
	commits := verifyHistory(t, r, normal)

	fresh, freshStore := newLocalSite(t, r, "")
	code, out := fresh.run("run", "--history", commits[0])
	if code != 0 {
		t.Fatalf("run --history into an empty store: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "published 4, already published 0, failed 0") || !strings.Contains(out, `msg=history repository=stable done=4 total=4`) {
		t.Errorf("run --history: want 4 published and a progress line\n%s", out)
	}
	code, got := verifyJSON(t, fresh)
	want := map[string]string{"alpha-1.0.0": commits[0], "alpha-1.1.0": commits[1], "beta-1.0.0": commits[0], "gamma-2.0.0": commits[3]}
	if code != 0 || len(got) != len(want) {
		t.Fatalf("verify after run --history: exit %d, %v", code, got)
	}
	for k, c := range want {
		if got[k].Status != "verified" || got[k].Commit != c {
			t.Errorf("%s: %s at %s, want verified at %s", k, got[k].Status, got[k].Commit, c)
		}
	}
	// The same packages as the normal publisher's, byte for byte.
	a, b := packageDigests(t, normalStore), packageDigests(t, freshStore)
	if len(a) != 4 || !maps.Equal(a, b) {
		t.Errorf("run --history built other packages than the normal publisher:\n%v\n%v", a, b)
	}

	before := snapshot(t, normalStore)
	code, out = normal.run("run", "--history", commits[0])
	if code != 0 || !strings.Contains(out, "published 0, already published 4, failed 0") {
		t.Errorf("run --history over the normal publisher's store: exit %d\n%s", code, out)
	}
	if after := snapshot(t, normalStore); !maps.Equal(before, after) {
		t.Errorf("run --history changed the normal publisher's store:\nbefore %v\nafter  %v", before, after)
	}

	// Since the second commit: alpha 1.0.0 never existed there.
	since, _ := newLocalSite(t, r, "")
	code, out = since.run("run", "--history", commits[1])
	if code != 0 || !strings.Contains(out, "published 3, already published 0, failed 0") || strings.Contains(out, "alpha  1.0.0") {
		t.Errorf("run --history since the second commit: exit %d, want alpha 1.1.0, beta and gamma\n%s", code, out)
	}
}

// packageDigests maps each .tgz file name in dir to its sha256.
func packageDigests(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tgz") {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out[e.Name()] = sha(b)
		}
	}
	return out
}

// TestRunHistoryConflict: a version two directories claim fails alone
// while no commit has it in one directory; once one does, it is built from
// that commit.
func TestRunHistoryConflict(t *testing.T) {
	r := newGitRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/x", "x", "1.0.0"), testenv.Chart("charts/why", "why", "1.0.0"), testenv.Chart("charts/x-copy", "x", "1.0.0"),
		map[string]string{"charts/x-copy/values.yaml": "replicas: 7\n"}))
	c1 := r.Commit("x twice")
	r.Write(testenv.Chart("charts/z", "z", "1.0.0"))
	r.Commit("z")
	s, store := newLocalSite(t, r, "")
	code, out := s.run("run", "--history", c1)
	if code != 1 || !strings.Contains(out, "published 2, already published 0, failed 2") ||
		!strings.Contains(out, "conflict: 2 directories claim this name and version at commit "+c1) {
		t.Fatalf("history with a conflict: exit %d, want 1 with why and z published and both x directories failing\n%s", code, out)
	}
	if d := packageDigests(t, store); len(d) != 2 || d["why-1.0.0.tgz"] == "" || d["z-1.0.0.tgz"] == "" {
		t.Errorf("stored %v, want why and z only", d)
	}
	if err := os.RemoveAll(filepath.Join(r.Dir, "charts", "x-copy")); err != nil {
		t.Fatal(err)
	}
	r.Commit("x once")
	code, out = s.run("run", "--history", c1)
	if code != 0 || !strings.Contains(out, "published 1, already published 2, failed 0") {
		t.Fatalf("history after the conflict ends: exit %d\n%s", code, out)
	}
	// Built at c3 from charts/x, which has not changed since c1: verify
	// names the oldest commit that builds these bytes.
	code, got := verifyJSON(t, s)
	if code != 0 || got["x-1.0.0"].Status != "verified" || got["x-1.0.0"].Commit != c1 || got["x-1.0.0"].Dir != "charts/x" {
		t.Errorf("verify: exit %d, x %+v; want verified at %s in charts/x", code, got["x-1.0.0"], c1)
	}
}
