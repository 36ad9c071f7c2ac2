package storetest

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chartsync/chartsync/internal/publisher/store"
	"github.com/chartsync/chartsync/internal/testenv"
)

// FaultyStore makes a fresh, empty store whose requests pass through proxy,
// a testenv.Proxy in front of the real server that applies fault to each
// request.
type FaultyStore func(t *testing.T, fault func(*http.Request) testenv.Fault) (s store.Store, proxy *testenv.Proxy)

// RunFaults runs the fault subtests of the conditional writes whose outcome
// may be unknown (store.ConditionalWrite) against a backend that is not
// local: a lost answer, a lost request, throttling and a 5xx after the write
// are judged by what is stored; a lost race is a refusal; a refusal is not
// retried; retries are bounded by attempts, the backend's number of
// attempts of one write.
func RunFaults(t *testing.T, attempts int, newStore FaultyStore) {
	t.Helper()
	t.Run("UnknownOutcome", func(t *testing.T) { testUnknownOutcome(t, newStore) })
	t.Run("LostRace", func(t *testing.T) { testLostRace(t, newStore) })
	t.Run("RefusalNotRetried", func(t *testing.T) { testRefusalNotRetried(t, newStore) })
	t.Run("RetriesBounded", func(t *testing.T) { testRetriesBounded(t, attempts, newStore) })
}

func testUnknownOutcome(t *testing.T, newStore FaultyStore) {
	for _, tt := range []struct {
		name  string
		fault testenv.Fault
	}{
		{"answer lost", testenv.CutAfter},    // landed: read back, ours, done
		{"request lost", testenv.CutBefore},  // not landed: read back, absent, retry
		{"throttled", testenv.Unavailable},   // not landed: retried
		{"server error", testenv.ErrorAfter}, // landed, answered 500: read back, ours
	} {
		// A Create may send more than one PUT (Swift: the staging upload,
		// then the copy): the fault hits each of the first two in turn.
		for _, nth := range []int64{1, 2} {
			t.Run(fmt.Sprintf("%s/put%d", tt.name, nth), func(t *testing.T) {
				var faultOn atomic.Int64
				s, proxy := newStore(t, testenv.PutFaults(tt.fault, func(n int) bool { return int64(n) == faultOn.Load() }))
				ctx := t.Context()

				faultOn.Store(nth)
				if err := s.Create(ctx, "a-1.0.0.tgz", []byte("package")); err != nil {
					t.Fatalf("Create: %v", err)
				}
				if nth == 1 && proxy.Count(http.MethodPut) < 2 && tt.fault != testenv.CutAfter && tt.fault != testenv.ErrorAfter {
					t.Errorf("Create sent %d PUTs: the write that did not land was not retried", proxy.Count(http.MethodPut))
				}
				if data, _, err := s.Get(ctx, "a-1.0.0.tgz"); err != nil || string(data) != "package" {
					t.Fatalf("Get after Create = %q, %v", data, err)
				}

				v1, err := s.Replace(ctx, "index.yaml", []byte("one"), "")
				if err != nil {
					t.Fatalf("Replace: %v", err)
				}
				faultOn.Store(int64(proxy.Count(http.MethodPut)) + 1)
				v2, err := s.Replace(ctx, "index.yaml", []byte("two"), v1)
				if err != nil {
					t.Fatalf("Replace with a faulty answer: %v", err)
				}
				if data, version, err := s.Get(ctx, "index.yaml"); err != nil || string(data) != "two" || version != v2 {
					t.Errorf("Get = %q, %q, %v; want %q, %q", data, version, err, "two", v2)
				}
			})
		}
	}
}

// testLostRace: the request is lost while another writer's object is
// stored under the name: the create is refused, never a success.
func testLostRace(t *testing.T, newStore FaultyStore) {
	var on atomic.Bool
	s, _ := newStore(t, testenv.PutFaults(testenv.CutBefore, func(int) bool { return on.Swap(false) }))
	ctx := t.Context()
	if err := s.Create(ctx, "a-1.0.0.tgz", []byte("theirs")); err != nil {
		t.Fatal(err)
	}
	on.Store(true)
	if err := s.Create(ctx, "a-1.0.0.tgz", []byte("ours")); !errors.Is(err, store.ErrExist) {
		t.Fatalf("Create over another writer's object after a lost request: err = %v, want ErrExist", err)
	}
	if data, _, err := s.Get(ctx, "a-1.0.0.tgz"); err != nil || string(data) != "theirs" {
		t.Errorf("Get = %q, %v; want the other writer's bytes", data, err)
	}
}

// testRefusalNotRetried: a refused create or replace sends at most one
// PUT (a backend may refuse after a check, without any).
func testRefusalNotRetried(t *testing.T, newStore FaultyStore) {
	s, proxy := newStore(t, nil)
	ctx := t.Context()
	if err := s.Create(ctx, "a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	before := proxy.Count(http.MethodPut)
	if err := s.Create(ctx, "a", []byte("b")); !errors.Is(err, store.ErrExist) {
		t.Fatalf("Create: err = %v, want ErrExist", err)
	}
	if _, err := s.Replace(ctx, "a", []byte("b"), "0123456789abcdef0123456789abcdef"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Replace: err = %v, want ErrConflict", err)
	}
	if n := proxy.Count(http.MethodPut) - before; n > 2 {
		t.Errorf("two refused writes sent %d PUTs, want at most 2 (a refusal is never retried)", n)
	}
}

// testRetriesBounded: a server that answers every PUT with 503 makes a
// replace fail with "outcome unknown" after exactly attempts PUTs, and
// nothing is written.
func testRetriesBounded(t *testing.T, attempts int, newStore FaultyStore) {
	s, proxy := newStore(t, testenv.PutFaults(testenv.Unavailable, func(int) bool { return true }))
	ctx := t.Context()
	_, err := s.Replace(ctx, "index.yaml", []byte("a"), "")
	if err == nil || !strings.Contains(err.Error(), "outcome unknown") {
		t.Fatalf("Replace: err = %v, want an outcome-unknown error", err)
	}
	if got := proxy.Count(http.MethodPut); got != attempts {
		t.Errorf("sent %d PUTs, want %d", got, attempts)
	}
	if _, _, err := s.Get(ctx, "index.yaml"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Get: err = %v, want ErrNotExist", err)
	}
}
