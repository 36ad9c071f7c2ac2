package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/chartsync/chartsync/internal/testenv"
)

// Faults between chartsync and its store: a server that dies mid-cycle,
// connections cut around a write, 5xx answers. Whatever happens, a cycle
// either succeeds or fails cleanly (exit 1, saying what failed), and the
// next cycle converges: exit 0, every chart indexed, every digest that of
// the stored bytes, no package's bytes changed.

// threeCharts is a repository of three small charts.
func threeCharts(t *testing.T) (*gitRepo, []string) {
	r := newGitRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/one", "one", "1.0.0"), testenv.Chart("charts/two", "two", "2.0.0"), testenv.Chart("charts/three", "three", "3.0.0")))
	r.Commit("three charts")
	return r, []string{"one-1.0.0.tgz", "three-3.0.0.tgz", "two-2.0.0.tgz"}
}

// faultSwitch decides a proxy's faults: rule is consulted while it is
// set, and counts how often it injected one.
type faultSwitch struct {
	mu    sync.Mutex
	rule  func(r *http.Request) testenv.Fault
	fired int
}

func (f *faultSwitch) set(rule func(r *http.Request) testenv.Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rule, f.fired = rule, 0
}

func (f *faultSwitch) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fired
}

func (f *faultSwitch) fault(r *http.Request) testenv.Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rule == nil {
		return testenv.Pass
	}
	x := f.rule(r)
	if x != testenv.Pass {
		f.fired++
	}
	return x
}

func isPut(r *http.Request, suffix string) bool {
	return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, suffix)
}

// nth returns a rule that answers fault to the n-th request matching
// match (counted from 1), and Pass to every other.
func nth(n int, match func(*http.Request) bool, fault testenv.Fault) func(*http.Request) testenv.Fault {
	seen := 0
	return func(r *http.Request) testenv.Fault {
		if !match(r) {
			return testenv.Pass
		}
		seen++
		if seen == n {
			return fault
		}
		return testenv.Pass
	}
}

// firstN answers fault to the first n requests matching match.
func firstN(n int, match func(*http.Request) bool, fault testenv.Fault) func(*http.Request) testenv.Fault {
	seen := 0
	return func(r *http.Request) testenv.Fault {
		if !match(r) {
			return testenv.Pass
		}
		seen++
		if seen <= n {
			return fault
		}
		return testenv.Pass
	}
}

func tgzPut(r *http.Request) bool   { return isPut(r, ".tgz") }
func indexPut(r *http.Request) bool { return isPut(r, "/index.yaml") }
func indexGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/index.yaml")
}

// faultyStore is a store reached through a proxy whose faults the test
// switches on and off, with a fresh bucket or container per call.
type faultyStore struct {
	sw   *faultSwitch
	open func(t *testing.T) objStore
}

func faultyS3(t *testing.T, srv *testenv.S3Server) faultyStore {
	sw := &faultSwitch{}
	proxy := testenv.NewProxy(t, srv.Endpoint, sw.fault)
	return faultyStore{sw: sw, open: func(t *testing.T) objStore {
		return s3Store(t, srv, srv.NewBucket(t), proxy.URL)
	}}
}

func faultySwift(t *testing.T, srv *testenv.SwiftServer) faultyStore {
	sw := &faultSwitch{}
	proxy := testenv.NewProxy(t, strings.TrimSuffix(srv.AuthURL, "/auth/v1.0"), sw.fault)
	return faultyStore{sw: sw, open: func(t *testing.T) objStore {
		return swiftStore(t, srv, srv.NewContainer(t), proxy.URL+"/auth/v1.0")
	}}
}

// checkFailedCleanly fails t unless a cycle's outcome is a clean one:
// exit 0, or exit 1 with a FAILED line and no panic.
func checkFailedCleanly(t *testing.T, code int, out string) {
	t.Helper()
	if strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") {
		t.Errorf("chartsync crashed:\n%s", out)
	}
	switch code {
	case 0:
	case 1:
		if !strings.Contains(out, "FAILED") {
			t.Errorf("exit 1 without saying what failed:\n%s", out)
		}
	default:
		t.Errorf("exit %d, want 0 or 1:\n%s", code, out)
	}
}

// checkClaims fails t unless every package that out says was published
// is in the stored index with the digest of its stored bytes: a chart
// reported "published" must be there for helm to find. Only for a single
// publisher: on Swift a concurrent index writer may drop an entry until
// the next cycle (docs/consistency.md).
func checkClaims(t *testing.T, obj objStore, out string) {
	t.Helper()
	s := readState(t, obj.st, "")
	idx := s.indexed(t)
	for _, f := range publishedFiles(out) {
		d, ok := idx[f]
		switch {
		case !ok:
			t.Errorf("the output says %s was published, but it is not in the stored index (%d entries)", f, len(idx))
		case d != s.packages[f]:
			t.Errorf("the output says %s was published, but its index digest %s is not that of the stored bytes %s", f, d, s.packages[f])
		}
	}
}

// converges runs one more cycle without faults and checks that it
// converges and that no package stored before it changed.
func converges(t *testing.T, s *site, obj objStore, want []string, before map[string]string) {
	t.Helper()
	code, out := s.run("run", "--once")
	if code != 0 {
		t.Fatalf("the cycle after the fault: exit %d\n%s", code, out)
	}
	after := checkConverged(t, obj.st, "", want)
	for f, sum := range before {
		if after[f] != sum {
			t.Errorf("%s: stored bytes changed from sha256 %s to %s", f, sum, after[f])
		}
	}
}

func TestFaultsDuringPublishing(t *testing.T) {
	type result int
	const (
		succeeds result = iota // the store's contract resolves the fault
		failsClean
		either
	)
	tests := []struct {
		name string
		rule func() func(*http.Request) testenv.Fault
		want result
		// wantNoWrites: the cycle must not write anything at all.
		wantNoWrites bool
	}{
		// The store reads back after an unknown outcome: the package is there
		// with our bytes, so the write succeeded.
		{name: "connection cut after the first package upload", want: succeeds,
			rule: func() func(*http.Request) testenv.Fault { return nth(1, tgzPut, testenv.CutAfter) }},
		{name: "connection cut after the second package upload", want: succeeds,
			rule: func() func(*http.Request) testenv.Fault { return nth(2, tgzPut, testenv.CutAfter) }},
		// The read-back shows nothing stored: the create is retried.
		{name: "connection cut before a package upload", want: succeeds,
			rule: func() func(*http.Request) testenv.Fault { return nth(1, tgzPut, testenv.CutBefore) }},
		{name: "500 after a package upload", want: succeeds,
			rule: func() func(*http.Request) testenv.Fault { return nth(1, tgzPut, testenv.ErrorAfter) }},
		{name: "503 to the first two package uploads", want: succeeds,
			rule: func() func(*http.Request) testenv.Fault { return firstN(2, tgzPut, testenv.Unavailable) }},
		{name: "connection cut after the index write", want: succeeds,
			rule: func() func(*http.Request) testenv.Fault { return nth(1, indexPut, testenv.CutAfter) }},
		{name: "500 after the index write", want: succeeds,
			rule: func() func(*http.Request) testenv.Fault { return nth(1, indexPut, testenv.ErrorAfter) }},
		{name: "connection cut before the index write", want: succeeds,
			rule: func() func(*http.Request) testenv.Fault { return nth(1, indexPut, testenv.CutBefore) }},
		// More faults than any retry budget: the cycle fails, cleanly.
		{name: "503 to every package upload", want: failsClean,
			rule: func() func(*http.Request) testenv.Fault { return firstN(1000, tgzPut, testenv.Unavailable) }},
		{name: "503 to every index write", want: failsClean,
			rule: func() func(*http.Request) testenv.Fault { return firstN(1000, indexPut, testenv.Unavailable) }},
		// An index that cannot be read is never rewritten: nothing is written.
		{name: "503 to every index read", want: failsClean, wantNoWrites: true,
			rule: func() func(*http.Request) testenv.Fault { return firstN(1000, indexGet, testenv.Unavailable) }},
	}
	backends := []struct {
		name string
		fs   func(t *testing.T) faultyStore
	}{
		{"s3", func(t *testing.T) faultyStore { return faultyS3(t, testenv.S3(t)) }},
		{"swift", func(t *testing.T) faultyStore { return faultySwift(t, testenv.Swift(t)) }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			fs := b.fs(t)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					r, want := threeCharts(t)
					obj := fs.open(t)
					s := newStoreSite(t, r.Dir, obj, "")
					before := versions(t, obj.st)
					fs.sw.set(tt.rule())
					code, out := s.run("run", "--once")
					fired := fs.sw.count()
					fs.sw.set(nil)
					if fired == 0 {
						t.Fatalf("the fault was never injected:\n%s", out)
					}
					checkFailedCleanly(t, code, out)
					switch {
					case tt.want == succeeds && code != 0:
						t.Errorf("the store's contract should resolve this fault, but the cycle failed:\n%s", out)
					case tt.want == failsClean && code != 1:
						t.Errorf("exit %d, want 1:\n%s", code, out)
					}
					if code == 0 {
						checkConverged(t, obj.st, "", want)
					}
					if code == 1 && !strings.Contains(out, "FAILED repository stable") {
						t.Errorf("the failure does not name the repository whose store failed:\n%s", out)
					}
					checkClaims(t, obj, out)
					if tt.wantNoWrites {
						if after := versions(t, obj.st); len(after) != len(before) {
							t.Errorf("the cycle wrote with an unreadable index: %v", keys(after))
						}
					}
					t.Logf("exit %d, %d faults injected:\n%s", code, fired, out)
					converges(t, s, obj, want, readState(t, obj.st, "").packages)
				})
			}
		})
	}
}

// stopper is a proxy rule that kills the server behind the proxy when it
// sees the n-th request matching match, before forwarding it: from then on
// the proxy can only answer 502, as a load balancer in front of a dead
// server does.
func stopper(n int, match func(*http.Request) bool, stop func()) func(*http.Request) testenv.Fault {
	seen := 0
	return func(r *http.Request) testenv.Fault {
		if match(r) {
			seen++
			if seen == n {
				stop()
				return testenv.CutBefore // counts as fired; the server is gone
			}
		}
		return testenv.Pass
	}
}

// namesStore reports whether the FAILED lines of out name the store:
// its [store.NAME] or its bucket or container.
func namesStore(out, where string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "FAILED") && (strings.Contains(l, where) || strings.Contains(l, "store main")) {
			return true
		}
	}
	return false
}

func TestStoreStoppedMidCycle(t *testing.T) {
	stops := []struct {
		name  string
		n     int
		match func(*http.Request) bool
	}{
		{"during the package uploads", 2, tgzPut},
		{"at the index write", 1, indexPut},
	}
	backends := []struct {
		name  string
		setup func(t *testing.T) (fs faultyStore, stop func(), start func(testing.TB))
	}{
		{"s3", func(t *testing.T) (faultyStore, func(), func(testing.TB)) {
			srv := testenv.NewS3(t)
			return faultyS3(t, srv), srv.Stop, srv.Start
		}},
		{"swift", func(t *testing.T) (faultyStore, func(), func(testing.TB)) {
			srv := testenv.NewSwift(t)
			return faultySwift(t, srv), srv.Stop, srv.Start
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			fs, stop, start := b.setup(t)
			for _, tt := range stops {
				t.Run(tt.name, func(t *testing.T) {
					r, want := threeCharts(t)
					obj := fs.open(t)
					s := newStoreSite(t, r.Dir, obj, "")
					fs.sw.set(stopper(tt.n, tt.match, stop))
					code, out := s.run("run", "--once")
					fired := fs.sw.count()
					fs.sw.set(nil)
					start(t)
					if fired == 0 {
						t.Fatalf("the server was never stopped:\n%s", out)
					}
					if code != 1 {
						t.Errorf("exit %d with the store down, want 1:\n%s", code, out)
					}
					checkFailedCleanly(t, code, out)
					if !namesStore(out, obj.where) {
						t.Errorf("the failure does not name the store (store main, or %q):\n%s", obj.where, out)
					}
					checkClaims(t, obj, out)
					// What the failed cycle left behind: some packages, maybe no
					// index. Nothing it stored may change in the next cycle.
					left := readState(t, obj.st, "")
					t.Logf("exit %d; left behind %v, index with %d entries:\n%s", code, keys(left.packages), len(left.indexed(t)), out)
					converges(t, s, obj, want, left.packages)
				})
			}
		})
	}
}

// A package replaced behind chartsync's back (another tool, an operator)
// is put back by the next cycle when this publisher's build gives exactly
// the indexed digest (the first indexed digest wins). When nothing here
// builds it (the chart left git), it is reported as MODIFIED, with exit 1,
// every cycle until someone looks; its index entry keeps the digest of the
// published bytes (the index is never rewritten to bless the replacement).
func TestReplacedPackageIsReported(t *testing.T) {
	backends := []struct {
		name string
		obj  func(t *testing.T) objStore
	}{
		{"s3", func(t *testing.T) objStore {
			srv := testenv.S3(t)
			return s3Store(t, srv, srv.NewBucket(t), srv.Endpoint)
		}},
		{"swift", func(t *testing.T) objStore {
			srv := testenv.Swift(t)
			return swiftStore(t, srv, srv.NewContainer(t), srv.AuthURL)
		}},
		{"local", localStore},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			r, want := threeCharts(t)
			obj := b.obj(t)
			s := newStoreSite(t, r.Dir, obj, "")
			s.mustRun("run", "--once")
			published := checkConverged(t, obj.st, "", want)

			replace := func() {
				t.Helper()
				_, ver, err := obj.st.Get(ctxT(t), "two-2.0.0.tgz")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := obj.st.Replace(ctxT(t), "two-2.0.0.tgz", []byte("not the published chart"), ver); err != nil {
					t.Fatalf("replace the package behind chartsync's back: %v", err)
				}
			}
			// A site whose build has the indexed digest puts the indexed
			// bytes back (issue 8: the first indexed digest wins).
			replace()
			code, out := s.run("run", "--once")
			if code != 0 || !strings.Contains(out, "1 packages put back to their indexed bytes: two-2.0.0.tgz") {
				t.Errorf("cycle after the replacement: exit %d, want 0 and two-2.0.0.tgz put back:\n%s", code, out)
			}
			if got := readState(t, obj.st, "").packages["two-2.0.0.tgz"]; got != published["two-2.0.0.tgz"] {
				t.Errorf("two-2.0.0.tgz holds %s after the restore, want the published %s", got, published["two-2.0.0.tgz"])
			}
			// Once the chart is gone from git, nothing can rebuild it (and
			// the store keeps no versions): reported, every cycle.
			r.Git("rm", "-r", "-q", "charts/two")
			r.Commit("drop two")
			replace()
			for cycle := 1; cycle <= 2; cycle++ {
				code, out := s.run("run", "--once")
				if code != 1 || !strings.Contains(out, "1 packages MODIFIED in the store: two-2.0.0.tgz") {
					t.Errorf("cycle %d after the replacement: exit %d, want 1 and two-2.0.0.tgz reported MODIFIED:\n%s", cycle, code, out)
				}
			}
			st := readState(t, obj.st, "")
			idx := st.indexed(t)
			for _, f := range want {
				if idx[f] != published[f] {
					t.Errorf("%s: index digest %s, want the published bytes' %s", f, idx[f], published[f])
				}
			}
			if st.packages["two-2.0.0.tgz"] == published["two-2.0.0.tgz"] {
				t.Fatal("the package was not replaced: the test proves nothing")
			}
		})
	}
}
