package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/testenv"
)

// Issue 8: two publishers build different bytes for one chart version; the
// first one's upload is fast, the second one's slow (held by a proxy until
// the first has published and indexed). The slow one must not replace the
// published package: after each round, and after one more cycle of each
// publisher, the stored bytes equal the index digest and are the bytes that
// were indexed first; the slow publisher is told, every cycle, that its
// content differs.

func TestSlowWriterRaceSwift(t *testing.T) {
	srv := testenv.Swift(t)
	base := strings.TrimSuffix(srv.AuthURL, "/auth/v1.0")
	for _, variant := range []string{"two repositories", "lagging branch"} {
		t.Run(variant, func(t *testing.T) {
			container := srv.NewContainer(t)
			pf, ps := testenv.NewSlowProxy(t, base), testenv.NewSlowProxy(t, base)
			slowWriterRace(t, variant, swiftStore(t, srv, container, pf.URL+"/auth/v1.0"), swiftStore(t, srv, container, ps.URL+"/auth/v1.0"), pf, ps, 3)
		})
	}
}

func TestSlowWriterRaceS3(t *testing.T) {
	srv := testenv.S3(t)
	for _, variant := range []string{"two repositories", "lagging branch"} {
		t.Run(variant, func(t *testing.T) {
			bucket := srv.NewBucket(t)
			pf, ps := testenv.NewSlowProxy(t, srv.Endpoint), testenv.NewSlowProxy(t, srv.Endpoint)
			slowWriterRace(t, variant, s3Store(t, srv, bucket, pf.URL), s3Store(t, srv, bucket, ps.URL), pf, ps, 3)
		})
	}
}

// startRun starts chartsync run --once for s; wait returns its exit status
// and output.
func startRun(t *testing.T, s *site) (wait func() (int, string)) {
	t.Helper()
	cmd := exec.Command(binary, "run", "--once", "--config", s.config)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	code := 0
	return func() (int, string) {
		once.Do(func() {
			if err := cmd.Wait(); err != nil {
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else {
					t.Errorf("chartsync: %v", err)
				}
			}
		})
		return code, out.String()
	}
}

const contentDiffers = "content differs from the published package: bump the version"

// slowWriterRace runs the race through two proxies, one per site: both
// package uploads start (their requests reach the store, their bodies are
// held), then the fast site's body goes on and that site publishes and
// indexes; only then does the slow site's body go on. That is issue 8's
// interleaving: with a plain conditional PUT on Swift both pass the
// existence check, and the slow body, timestamped later, replaces the
// package the fast site has indexed.
func slowWriterRace(t *testing.T, variant string, fastObj, slowObj objStore, fastProxy, slowProxy *testenv.SlowProxy, rounds int) {
	prefix := ""
	if fastObj.kind == "s3" {
		prefix = "stable"
	}
	var fastSite, slowSite *site
	var commitRound func(round int)
	switch variant {
	case "two repositories":
		// Two repositories publish chart sl into one prefix, each with its
		// own content.
		x, y := newGitRepo(t), newGitRepo(t)
		fastSite, slowSite = newStoreSite(t, x.Dir, fastObj, prefix), newStoreSite(t, y.Dir, slowObj, prefix)
		commitRound = func(round int) {
			v := fmt.Sprintf("%d.0.0", round)
			x.Write(testenv.Merge(testenv.Chart("charts/sl", "sl", v), map[string]string{"charts/sl/values.yaml": "replicas: 1\nfrom: x\n"}))
			x.Commit("x " + v)
			y.Write(testenv.Merge(testenv.Chart("charts/sl", "sl", v), map[string]string{"charts/sl/values.yaml": "replicas: 1\nfrom: y\n"}))
			y.Commit("y " + v)
		}
	case "lagging branch":
		// One repository; the slow site follows a mirror that lags one
		// commit behind, before an edit of sl that did not bump its version.
		up := newGitRepo(t)
		newer, lagging := bareRepo(t), bareRepo(t)
		fastSite, slowSite = newStoreSite(t, newer.Dir, fastObj, prefix), newStoreSite(t, lagging.Dir, slowObj, prefix)
		commitRound = func(round int) {
			v := fmt.Sprintf("%d.0.0", round)
			up.Write(testenv.Chart("charts/sl", "sl", v))
			c1 := up.Commit("bump sl to " + v)
			up.Write(map[string]string{"charts/sl/values.yaml": fmt.Sprintf("replicas: %d\n", round+1)})
			c2 := up.Commit("edit sl " + v + " without a bump")
			up.Git("push", "-q", "-f", lagging.Dir, c1+":refs/heads/main")
			up.Git("push", "-q", "-f", newer.Dir, c2+":refs/heads/main")
		}
	}

	firstIndexed := map[string]string{}
	for round := 1; round <= rounds; round++ {
		file := fmt.Sprintf("sl-%d.0.0.tgz", round)
		commitRound(round)
		// Hold both sites' package uploads (on Swift: to the staging name,
		// or to the final name with a plain PUT; on S3: the conditional
		// PUT) until the test lets them go.
		pick := func(r *http.Request) bool {
			return r.Method == http.MethodPut && r.ContentLength > 0 &&
				(strings.HasSuffix(r.URL.Path, "/"+file) || strings.Contains(r.URL.Path, "/.chartsync-staging/"+file+"."))
		}
		fastProxy.SetSlow(2*time.Minute, pick)
		slowProxy.SetSlow(2*time.Minute, pick)
		waitHeld := func(p *testenv.SlowProxy, held int, wait func() (int, string), who string) {
			t.Helper()
			for deadline := time.Now().Add(time.Minute); p.Slowed() == held; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					fastProxy.Release()
					slowProxy.Release()
					code, out := wait()
					t.Fatalf("round %d: the %s site never uploaded %s: exit %d\n%s", round, who, file, code, out)
				}
			}
		}
		waitFast := startRun(t, fastSite)
		waitHeld(fastProxy, fastProxy.Slowed(), waitFast, "fast")
		waitSlow := startRun(t, slowSite)
		waitHeld(slowProxy, slowProxy.Slowed(), waitSlow, "slow")
		time.Sleep(200 * time.Millisecond) // both requests are at the store
		fastProxy.Release()
		fcode, fout := waitFast()
		if fcode != 0 || !regexp.MustCompile(`published\s+sl\s+`+regexp.QuoteMeta(fmt.Sprintf("%d.0.0", round))).MatchString(fout) {
			slowProxy.Release()
			waitSlow()
			t.Fatalf("round %d: fast site: exit %d, want 0 and sl published\n%s", round, fcode, fout)
		}
		first := readState(t, fastObj.st, prefix).indexed(t)[file]
		firstIndexed[file] = first
		slowProxy.Release()
		scode, sout := waitSlow()
		if scode != 1 || !strings.Contains(sout, contentDiffers) {
			t.Errorf("round %d: slow site: exit %d, want 1 and %q\n%s", round, scode, contentDiffers, sout)
		}
		check := func(when string) {
			t.Helper()
			s := readState(t, fastObj.st, prefix)
			idx := s.indexed(t)
			for f, want := range firstIndexed {
				if idx[f] != want {
					t.Errorf("round %d, %s: %s index digest %s, first indexed %s", round, when, f, idx[f], want)
				}
				if s.packages[f] != want {
					t.Errorf("round %d, %s: %s stored bytes %s, first indexed %s", round, when, f, s.packages[f], want)
				}
			}
			if len(s.other) > 0 {
				t.Errorf("round %d, %s: unexpected objects %v", round, when, s.other)
			}
		}
		check("after the race")
		// One more cycle of each: the fast one is content, the slow one is
		// told again.
		if code, out := fastSite.run("run", "--once"); code != 0 {
			t.Errorf("round %d: further cycle of the fast site: exit %d\n%s", round, code, out)
		}
		if code, out := slowSite.run("run", "--once"); code != 1 || !strings.Contains(out, contentDiffers) || strings.Contains(out, "MODIFIED") {
			t.Errorf("round %d: further cycle of the slow site: exit %d, want 1 and %q only\n%s", round, code, contentDiffers, out)
		}
		check("after one more cycle of each")
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("%d rounds; %d and %d uploads held", rounds, fastProxy.Slowed(), slowProxy.Slowed())
}

// TestAdoptOtherToolsPackagesSwift: packages written by another tool
// (`helm package` output stored straight into the container, as a
// ChartMuseum upload would be) with the same charts in git are adopted:
// exit 0, a complete index of the stored bytes, each package read once;
// the next cycle reads none and still exits 0.
func TestAdoptOtherToolsPackagesSwift(t *testing.T) {
	srv := testenv.Swift(t)
	container := srv.NewContainer(t)
	var mu sync.Mutex
	gets := map[string]int{} // package and index reads by name; "/" for listings
	proxy := testenv.NewProxy(t, strings.TrimSuffix(srv.AuthURL, "/auth/v1.0"), func(r *http.Request) testenv.Fault {
		if r.Method == http.MethodGet {
			mu.Lock()
			switch {
			case strings.HasSuffix(r.URL.Path, ".tgz"), strings.HasSuffix(r.URL.Path, "/index.yaml"):
				gets[filepath.Base(r.URL.Path)]++
			case strings.HasSuffix(r.URL.Path, "/"+container):
				gets["/"]++
			}
			mu.Unlock()
		}
		return testenv.Pass
	})
	obj := swiftStore(t, srv, container, proxy.URL+"/auth/v1.0")
	r := newGitRepo(t)
	names := []string{"alpha", "beta", "gamma"}
	for _, n := range names {
		r.Write(testenv.Chart("charts/"+n, n, "1.2.3"))
	}
	r.Commit("charts")
	h := newHelm(t)
	pkgDir := t.TempDir()
	want := map[string]string{}
	for _, n := range names {
		h.run("package", filepath.Join(r.Dir, "charts", n), "--destination", pkgDir)
		file := n + "-1.2.3.tgz"
		b, err := os.ReadFile(filepath.Join(pkgDir, file))
		if err != nil {
			t.Fatal(err)
		}
		if err := obj.st.Create(context.Background(), file, b); err != nil {
			t.Fatal(err)
		}
		want[file] = sha(b)
	}
	s := newStoreSite(t, r.Dir, obj, "")
	code, out := s.run("run", "--once")
	if code != 0 {
		t.Fatalf("first cycle: exit %d, want 0\n%s", code, out)
	}
	for _, n := range names {
		if !regexp.MustCompile(`stable\s+adopted\s+` + n + `\s+1\.2\.3`).MatchString(out) {
			t.Errorf("first cycle does not report %s as adopted:\n%s", n, out)
		}
	}
	if strings.Contains(out, "differs") || strings.Contains(out, "FAILED") {
		t.Errorf("first cycle reports failures:\n%s", out)
	}
	mu.Lock()
	for f := range want {
		if gets[f] != 1 {
			t.Errorf("first cycle read %s %d times, want once", f, gets[f])
		}
	}
	clear(gets)
	mu.Unlock()
	stored := checkConverged(t, obj.st, "", keys(want))
	for f, d := range want {
		if stored[f] != d {
			t.Errorf("%s: stored %s, helm package wrote %s: chartsync replaced it", f, stored[f], d)
		}
	}
	code, out = s.run("run", "--once")
	if code != 0 || !strings.Contains(out, "published 0, already published 3, failed 0") {
		t.Errorf("second cycle: exit %d\n%s", code, out)
	}
	// A cycle with nothing to do lists once and reads no package, and not
	// the index either: the listing shows it unchanged since the first
	// cycle wrote it, and the parsed index is cached (issue 12).
	mu.Lock()
	if fmt.Sprint(gets) != "map[/:1]" {
		t.Errorf("second cycle made reads %v, want one listing", gets)
	}
	mu.Unlock()
}
