package swift

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/publisher/store"
	"github.com/chartsync/chartsync/internal/testenv"
)

// TestSlowCreateLoses is issue 8's race at the store level: two Creates of
// one name with different bytes, the first one's upload slowed down by a
// proxy, the second one fast and finished while the first is still
// uploading. With a plain PUT both pass Swift's If-None-Match check and the
// slow body lands last and stays. With the staged Create the slow one must
// get ErrExist and the fast one's bytes must stay, round after round.
func TestSlowCreateLoses(t *testing.T) {
	srv := testenv.Swift(t)
	container := srv.NewContainer(t)
	proxy := testenv.NewSlowProxy(t, strings.TrimSuffix(srv.AuthURL, "/auth/v1.0"))
	slow := newStore(t, srv, proxy.URL+"/auth/v1.0", container)
	fast := newStore(t, srv, srv.AuthURL, container)
	proxy.SetSlow(2*time.Second, func(r *http.Request) bool { return r.Method == http.MethodPut })
	for round := range 3 {
		key := fmt.Sprintf("sl-%d.0.0.tgz", round)
		slowData, fastData := bytes.Repeat([]byte("s"), 64<<10), bytes.Repeat([]byte("f"), 64<<10)
		done := make(chan error, 1)
		go func() { done <- slow.Create(t.Context(), key, slowData) }()
		time.Sleep(500 * time.Millisecond) // the slow upload is under way
		if err := fast.Create(t.Context(), key, fastData); err != nil {
			t.Fatalf("round %d: fast Create: %v", round, err)
		}
		if got, _, err := fast.Get(t.Context(), key); err != nil || !bytes.Equal(got, fastData) {
			t.Fatalf("round %d: after the fast Create: %v, fast bytes %v", round, err, bytes.Equal(got, fastData))
		}
		if err := <-done; !errors.Is(err, store.ErrExist) {
			t.Errorf("round %d: slow Create: err = %v, want ErrExist", round, err)
		}
		got, _, err := fast.Get(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, fastData) {
			t.Errorf("round %d: the slow writer's bytes replaced the fast writer's", round)
		}
	}
	if proxy.Slowed() < 3 {
		t.Errorf("the proxy slowed %d uploads, want at least 3", proxy.Slowed())
	}
	objs, err := fast.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 3 {
		t.Errorf("listing %v, want the 3 packages and no staging object", objs)
	}
	// The listing may still name a deleted staging object (the container
	// update of a delete can lag), so ask for each object itself.
	raw, err := fast.conn.ObjectNamesAll(t.Context(), container, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range raw {
		if _, _, err := fast.conn.Object(t.Context(), container, n); isStaging(n) && err == nil {
			t.Errorf("staging object %s left behind", n)
		}
	}
}

// TestStagingLeftovers: a staging object (as a crashed Create leaves it)
// is never listed, and List deletes it once it is older than StagingMaxAge.
// Nothing else is ever deleted.
func TestStagingLeftovers(t *testing.T) {
	srv := testenv.Swift(t)
	s := newStore(t, srv, srv.AuthURL, "")
	ctx := t.Context()
	old := "stable/" + StagingDir + "/a-1.0.0.tgz.1.00"
	fresh := "stable/" + StagingDir + "/b-1.0.0.tgz.2.00"
	// A leftover cannot be backdated on Swift: a store whose maximum age
	// is zero stands for a List an hour later.
	for _, k := range []string{old, fresh, "stable/a-1.0.0.tgz", "stable/.hidden-1.0.0.tgz"} {
		if err := s.conn.ObjectPutBytes(ctx, s.container, k, []byte(k), ""); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := s.List(ctx, "stable/")
	if err != nil {
		t.Fatal(err)
	}
	if got := objectKeys(objs); got != "stable/.hidden-1.0.0.tgz stable/a-1.0.0.tgz" {
		t.Errorf("List = %s, want the two non-staging objects", got)
	}
	// Fresh leftovers stay: they may belong to a Create under way.
	names, _ := s.conn.ObjectNamesAll(ctx, s.container, nil)
	if len(names) != 4 {
		t.Errorf("a List deleted a fresh staging object: %v", names)
	}
	s.stagingMaxAge = 0
	time.Sleep(1100 * time.Millisecond) // listings have one-second resolution
	if _, err := s.List(ctx, "stable/"); err != nil {
		t.Fatal(err)
	}
	names, _ = s.conn.ObjectNamesAll(ctx, s.container, nil)
	if strings.Join(names, " ") != "stable/.hidden-1.0.0.tgz stable/a-1.0.0.tgz" {
		t.Errorf("after List with old leftovers, stored %v, want only the non-staging objects", names)
	}
}

func objectKeys(objs []store.Object) string {
	var ks []string
	for _, o := range objs {
		ks = append(ks, o.Key)
	}
	return strings.Join(ks, " ")
}

// BenchmarkCommitWindow measures the window that remains on Swift: from
// the check of the final name to the moment that name holds the bytes. For
// the staged Create that is the HEAD and the server-side copy (an upper
// bound: it includes both round trips); for a plain PUT it is the whole
// upload, over however slow a link. Run with
// go test -run - -bench CommitWindow ./internal/publisher/swift/
func BenchmarkCommitWindow(b *testing.B) {
	srv := testenv.Swift(b)
	s, err := New(context.Background(), Config{AuthURL: srv.AuthURL, User: srv.User, Key: srv.Key, Container: srv.NewContainer(b)})
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{4 << 10, 1 << 20, 20 << 20} {
		data := bytes.Repeat([]byte("x"), size)
		b.Run(fmt.Sprintf("copy-%dKiB", size>>10), func(b *testing.B) {
			staging := stagingKey("w.tgz")
			if _, err := s.put(b.Context(), staging, data, "", store.ErrExist, ""); err != nil {
				b.Fatal(err)
			}
			for i := 0; b.Loop(); i++ {
				key := fmt.Sprintf("copy-%d-%d.tgz", size, i)
				if err := s.absent(b.Context(), key); err != nil {
					b.Fatal(err)
				}
				if _, err := s.put(b.Context(), key, data, "", store.ErrExist, staging); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("put-%dKiB", size>>10), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := s.put(b.Context(), fmt.Sprintf("put-%d-%d.tgz", size, i), data, "", store.ErrExist, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
