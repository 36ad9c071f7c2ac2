package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/testenv"
)

// Several chartsync processes publishing to one store at once, from
// different commits of one repository and from different repositories,
// round after round. After each round's processes finish, at most one
// further cycle runs; then the store must hold every chart version of
// every commit used, indexed with the digest of its stored bytes, and no
// package's bytes may have changed since first seen (on Swift, which has
// no atomic create, a change is allowed only if chartsync reported it).

func TestConcurrentPublishersS3(t *testing.T) {
	srv := testenv.S3(t)
	concurrentPublishers(t, s3Store(t, srv, srv.NewBucket(t), srv.Endpoint), "stable", 4)
}

func TestConcurrentPublishersSwift(t *testing.T) {
	srv := testenv.Swift(t)
	concurrentPublishers(t, swiftStore(t, srv, srv.NewContainer(t), srv.AuthURL), "", 4)
}

func TestConcurrentPublishersLocal(t *testing.T) {
	concurrentPublishers(t, localStore(t), "", 3)
}

// bareRepo is a bare repository that a site fetches from; the test pushes
// chosen commits of an upstream to it.
func bareRepo(t *testing.T) *gitRepo {
	t.Helper()
	return testenv.NewGitRepo(t, "--bare")
}

// racerResult is one process's exit status and output.
type racerResult struct {
	code int
	out  string
}

// runAll starts chartsync run --once for every site at the same moment
// and waits for all of them.
func runAll(t *testing.T, sites []*site) []racerResult {
	t.Helper()
	cmds := make([]*exec.Cmd, len(sites))
	bufs := make([]*bytes.Buffer, len(sites))
	for i, s := range sites {
		cmds[i] = exec.Command(binary, "run", "--once", "--config", s.config)
		bufs[i] = &bytes.Buffer{}
		cmds[i].Stdout, cmds[i].Stderr = bufs[i], bufs[i]
	}
	for i, c := range cmds {
		if err := c.Start(); err != nil {
			for _, started := range cmds[:i] {
				started.Process.Kill()
				started.Wait()
			}
			t.Fatal(err)
		}
	}
	res := make([]racerResult, len(sites))
	for i, c := range cmds {
		err := c.Wait()
		res[i].out = bufs[i].String()
		if ee, ok := err.(*exec.ExitError); ok {
			res[i].code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("chartsync: %v", err)
		}
	}
	return res
}

var publishedRE = regexp.MustCompile(`(?m)^stable\s+published\s+(\S+)\s+(\S+)`)

// publishedFiles lists the package files a run's output says it published.
func publishedFiles(out string) []string {
	var files []string
	for _, m := range publishedRE.FindAllStringSubmatch(out, -1) {
		files = append(files, m[1]+"-"+m[2]+".tgz")
	}
	return files
}

var modifiedRE = regexp.MustCompile(`\d+ packages MODIFIED in the store: (.*)`)

// modifiedFiles lists the packages a run's output reports as modified.
func modifiedFiles(out string) map[string]bool {
	m := map[string]bool{}
	for _, sm := range modifiedRE.FindAllStringSubmatch(out, -1) {
		for _, f := range strings.Split(sm[1], ", ") {
			m[f] = true
		}
	}
	return m
}

func concurrentPublishers(t *testing.T, obj objStore, prefix string, rounds int) {
	// Upstream a holds charts alpha and apple; three sites follow three
	// mirrors of it, each at another commit. Upstream b holds bravo; two
	// sites follow two mirrors at two commits.
	a, b := newGitRepo(t), newGitRepo(t)
	aMirrors := []*gitRepo{bareRepo(t), bareRepo(t), bareRepo(t)}
	bMirrors := []*gitRepo{bareRepo(t), bareRepo(t)}
	var sites []*site
	for _, m := range append(append([]*gitRepo{}, aMirrors...), bMirrors...) {
		sites = append(sites, newStoreSite(t, m.Dir, obj, prefix))
	}
	newest := sites[len(aMirrors)-1] // follows a's newest commit

	inGit := map[string]bool{} // every package file of every commit used so far
	firstSeen := map[string]string{}
	raced := 0 // the most processes that published one package in one round
	for round := 1; round <= rounds; round++ {
		for k, m := range aMirrors {
			files := testenv.Chart(fmt.Sprintf("charts/alpha-%d-%d", round, k), "alpha", fmt.Sprintf("%d.%d.0", round, k))
			inGit[fmt.Sprintf("alpha-%d.%d.0.tgz", round, k)] = true
			if k == 1 {
				files = testenv.Merge(files, testenv.Chart(fmt.Sprintf("charts/apple-%d", round), "apple", fmt.Sprintf("%d.0.0", round)))
				inGit[fmt.Sprintf("apple-%d.0.0.tgz", round)] = true
			}
			a.Write(files)
			c := a.Commit(fmt.Sprintf("round %d, commit %d", round, k))
			a.Git("push", "-q", "-f", m.Dir, c+":refs/heads/main")
		}
		for k, m := range bMirrors {
			b.Write(testenv.Chart(fmt.Sprintf("charts/bravo-%d-%d", round, k), "bravo", fmt.Sprintf("%d.%d.0", round, k)))
			inGit[fmt.Sprintf("bravo-%d.%d.0.tgz", round, k)] = true
			c := b.Commit(fmt.Sprintf("round %d, commit %d", round, k))
			b.Git("push", "-q", "-f", m.Dir, c+":refs/heads/main")
		}

		racers := runAll(t, sites)
		claimed := map[string]int{} // package file -> how many processes say they published it
		for i, r := range racers {
			if r.code != 0 {
				t.Errorf("round %d: process %d: exit %d\n%s", round, i, r.code, r.out)
			}
			for _, f := range publishedFiles(r.out) {
				if !inGit[f] {
					t.Errorf("round %d: process %d says it published %s, which no commit holds", round, i, f)
				}
				claimed[f]++
			}
		}
		for _, n := range claimed {
			raced = max(raced, n)
		}
		want := keys(inGit)
		if obj.st.Atomic() {
			// With compare-and-swap on the index, the racers alone must
			// have left nothing out.
			checkConverged(t, obj.st, prefix, want)
		} else {
			idx := readState(t, obj.st, prefix).indexed(t)
			var lost []string
			for f := range claimed {
				if _, ok := idx[f]; !ok {
					lost = append(lost, f)
				}
			}
			sort.Strings(lost)
			t.Logf("round %d: %d processes claimed %v; before the further cycle the index lacks %v", round, len(racers), claimed, lost)
		}

		code, out := newest.run("run", "--once")
		modified := modifiedFiles(out)
		if len(modified) > 0 && (obj.kind != "swift" || code != 1) {
			t.Errorf("round %d: further cycle: exit %d, modified %v on %s\n%s", round, code, keys(modified), obj.kind, out)
		}
		if len(modified) == 0 && code != 0 {
			t.Errorf("round %d: further cycle: exit %d\n%s", round, code, out)
		}
		checkWithModified(t, obj, prefix, want, modified, firstSeen)
		if t.Failed() {
			t.Fatalf("round %d failed; further cycle:\n%s", round, out)
		}
	}
	// Processes that all found a package missing from the index and all
	// published it overlapped: without that, this test proved nothing.
	if raced < 2 {
		t.Errorf("no package was published by two processes in one round: the processes did not overlap")
	}
	t.Logf("up to %d processes published the same package in one round", raced)
}

// checkWithModified is checkConverged, except that a package reported as
// modified may have a digest that differs from its stored bytes. It also
// fails t if a package's bytes differ from those first seen and chartsync
// did not report it; firstSeen is updated.
func checkWithModified(t *testing.T, obj objStore, prefix string, want []string, modified map[string]bool, firstSeen map[string]string) {
	t.Helper()
	s := readState(t, obj.st, prefix)
	idx := s.indexed(t)
	for _, f := range want {
		if _, ok := idx[f]; !ok {
			t.Errorf("%s is not in the index", f)
		}
	}
	for f, d := range idx {
		got, ok := s.packages[f]
		switch {
		case !ok:
			t.Errorf("index entry %s has no stored package", f)
		case got != d && !modified[f]:
			t.Errorf("%s: index digest %s, stored bytes %s, and chartsync did not report it", f, d, got)
		}
	}
	for f, sum := range s.packages {
		if _, ok := idx[f]; !ok {
			t.Errorf("stored package %s is not in the index", f)
		}
		if prev, ok := firstSeen[f]; ok && prev != sum && !modified[f] {
			t.Errorf("%s: stored bytes changed from sha256 %s to %s, and chartsync did not report it", f, prev, sum)
		} else if !ok {
			firstSeen[f] = sum
		}
	}
	if len(s.packages) != len(want) {
		t.Errorf("%d packages stored, want %d: %v", len(s.packages), len(want), keys(s.packages))
	}
	if len(s.other) > 0 {
		t.Errorf("unexpected objects in the repository: %v", s.other)
	}
}

func TestConflictingPublishersS3(t *testing.T) {
	srv := testenv.S3(t)
	bucket := srv.NewBucket(t)
	race := &putRace{}
	px := testenv.NewProxy(t, srv.Endpoint, race.hold)
	py := testenv.NewProxy(t, srv.Endpoint, race.hold)
	conflictingPublishers(t, s3Store(t, srv, bucket, px.URL), s3Store(t, srv, bucket, py.URL), race, 3)
}

func TestConflictingPublishersSwift(t *testing.T) {
	srv := testenv.Swift(t)
	container := srv.NewContainer(t)
	race := &putRace{}
	base := strings.TrimSuffix(srv.AuthURL, "/auth/v1.0")
	px := testenv.NewProxy(t, base, race.hold)
	py := testenv.NewProxy(t, base, race.hold)
	conflictingPublishers(t, swiftStore(t, srv, container, px.URL+"/auth/v1.0"),
		swiftStore(t, srv, container, py.URL+"/auth/v1.0"), race, 3)
}

// putRace holds the first PUT of one key through each of two proxies
// until both have arrived, then lets them go together: the two creates
// race at the server, not a process start-up apart.
type putRace struct {
	mu      sync.Mutex
	key     string
	arrived int
	ready   chan struct{}
	met     bool // both arrived in time
}

func (p *putRace) arm(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.key, p.arrived, p.ready, p.met = key, 0, make(chan struct{}), false
}

func (p *putRace) together() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.met
}

func (p *putRace) hold(r *http.Request) testenv.Fault {
	p.mu.Lock()
	if r.Method != http.MethodPut || p.key == "" || !strings.HasSuffix(r.URL.Path, "/"+p.key) {
		p.mu.Unlock()
		return testenv.Pass
	}
	p.arrived++
	if p.arrived == 2 {
		p.met = true
		close(p.ready)
	}
	ready := p.ready
	p.mu.Unlock()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
	}
	return testenv.Pass
}

func conflictingPublishers(t *testing.T, objX, objY objStore, race *putRace, rounds int) {
	obj := objX
	x, y := newGitRepo(t), newGitRepo(t)
	sx, sy := newStoreSite(t, x.Dir, objX, ""), newStoreSite(t, y.Dir, objY, "")
	firstSeen := map[string]string{}
	var want []string
	for round := 1; round <= rounds; round++ {
		version := fmt.Sprintf("%d.0.0", round)
		file := "clash-" + version + ".tgz"
		want = append(want, file)
		x.Write(testenv.Merge(testenv.Chart(fmt.Sprintf("charts/clash-%d", round), "clash", version),
			map[string]string{fmt.Sprintf("charts/clash-%d/values.yaml", round): "replicas: 1\nfrom: x\n"}))
		x.Commit("x " + version)
		y.Write(testenv.Merge(testenv.Chart(fmt.Sprintf("charts/clash-%d", round), "clash", version),
			map[string]string{fmt.Sprintf("charts/clash-%d/values.yaml", round): "replicas: 1\nfrom: y\n"}))
		y.Commit("y " + version)

		race.arm(file)
		racers := runAll(t, []*site{sx, sy})
		if !race.together() {
			t.Errorf("round %d: the two creates of %s did not race", round, file)
		}
		race.arm("")
		winners := 0
		for i, r := range racers {
			claimed := strings.Contains(strings.Join(publishedFiles(r.out), " "), file)
			// The loser of an earlier round fails that version again every
			// cycle (its content differs): judge this round's version only.
			lost := regexp.MustCompile(`FAILED stable: chart "clash" ` + regexp.QuoteMeta(version) + ` .*content differs from the published package`).MatchString(r.out)
			if claimed {
				winners++
			}
			if obj.st.Atomic() {
				switch {
				case claimed && lost:
					t.Errorf("round %d: process %d published %s and says it lost\n%s", round, i, file, r.out)
				case !claimed && !lost:
					// Whether it raced the winner or came after the winner had
					// indexed the version, the loser must fail naming the
					// difference.
					t.Errorf("round %d: process %d lost the race: want 'content differs from the published package'\n%s", round, i, r.out)
				}
			}
			t.Logf("round %d: process %d: exit %d, published %s: %v", round, i, r.code, file, claimed)
		}
		if obj.st.Atomic() && winners != 1 {
			t.Errorf("round %d: %d processes published %s, want exactly 1", round, winners, file)
		}

		code, out := sx.run("run", "--once")
		modified := modifiedFiles(out)
		if len(modified) > 0 && (obj.kind != "swift" || code != 1) {
			t.Errorf("round %d: further cycle: exit %d, modified %v on %s\n%s", round, code, keys(modified), obj.kind, out)
		}
		s := readState(t, obj.st, "")
		idx := s.indexed(t)
		if len(s.packages) != len(want) || len(idx) != len(want) {
			t.Errorf("round %d: stored %v, indexed %v, want %v", round, keys(s.packages), keys(idx), want)
		}
		for f, d := range idx {
			if d != s.packages[f] && !modified[f] {
				t.Errorf("round %d: %s: index digest %s, stored bytes %s, and chartsync did not report it\n%s", round, f, d, s.packages[f], out)
			}
		}
		for f, sum := range s.packages {
			if prev, ok := firstSeen[f]; ok && prev != sum {
				t.Errorf("round %d: %s: stored bytes changed from sha256 %s to %s", round, f, prev, sum)
			} else if !ok {
				firstSeen[f] = sum
			}
		}
		if t.Failed() {
			t.Fatalf("round %d failed; further cycle: exit %d\n%s", round, code, out)
		}
		t.Logf("round %d: further cycle exit %d, modified %v", round, code, keys(modified))
	}
}
