package swift

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ncw/swift/v2"
	"github.com/prometheus/client_golang/prometheus"
	"helm.sh/helm/v3/pkg/chart"

	"github.com/chartsync/chartsync/internal/metrics"
	"github.com/chartsync/chartsync/internal/publisher"
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

// TestRestoreVersion: in a container that keeps overwritten objects
// (X-History-Location), a package replaced after it was indexed is put back
// to its indexed bytes by a publisher that cannot build them itself.
func TestRestoreVersion(t *testing.T) {
	srv := testenv.Swift(t)
	s := newStore(t, srv, srv.AuthURL, "")
	ctx := t.Context()
	history := srv.NewContainer(t)
	if err := s.conn.ContainerUpdate(ctx, s.container, swift.Headers{"X-History-Location": history}); err != nil {
		t.Fatal(err)
	}
	first, late := []byte("first bytes"), []byte("late bytes")
	if err := s.Create(ctx, "a-1.0.0.tgz", first); err != nil {
		t.Fatal(err)
	}
	if err := s.conn.ObjectPutBytes(ctx, s.container, "a-1.0.0.tgz", late, ""); err != nil {
		t.Fatal(err)
	}
	if done, err := s.RestoreVersion(ctx, "a-1.0.0.tgz", func(b []byte) bool { return string(b) == "no such bytes" }); done || err != nil {
		t.Fatalf("RestoreVersion with no match = %v, %v", done, err)
	}
	done, err := s.RestoreVersion(ctx, "a-1.0.0.tgz", func(b []byte) bool { return bytes.Equal(b, first) })
	if !done || err != nil {
		t.Fatalf("RestoreVersion = %v, %v", done, err)
	}
	if got, _, err := s.Get(ctx, "a-1.0.0.tgz"); err != nil || !bytes.Equal(got, first) {
		t.Errorf("after RestoreVersion: %q, %v", got, err)
	}
	// A container without a history keeps nothing to restore from.
	plain := newStore(t, srv, srv.AuthURL, "")
	if done, err := plain.RestoreVersion(ctx, "a-1.0.0.tgz", func([]byte) bool { return true }); done || err != nil {
		t.Errorf("RestoreVersion without history = %v, %v", done, err)
	}
}

// chartTgz makes a minimal chart archive.
func chartTgz(t *testing.T, name, version, note string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range []struct{ name, body string }{
		{name + "/Chart.yaml", fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\ndescription: %s\n", name, version, note)},
		{name + "/values.yaml", "x: 1\n"},
	} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// TestPublisherRestoresFromHistory: the publisher, through the metrics
// wrapper, restores a replaced package from the container's kept versions
// when its own build does not have the indexed digest.
func TestPublisherRestoresFromHistory(t *testing.T) {
	srv := testenv.Swift(t)
	s := newStore(t, srv, srv.AuthURL, "")
	ctx := t.Context()
	if err := s.conn.ContainerUpdate(ctx, s.container, swift.Headers{"X-History-Location": srv.NewContainer(t)}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	wrapped := metrics.New(prometheus.NewRegistry(), "test", "test").InstrumentStore("swift", s)
	first := chartTgz(t, "a", "1.0.0", "first")
	md := &chart.Metadata{APIVersion: "v2", Name: "a", Version: "1.0.0", Description: "first"}
	if _, err := publisher.New(wrapped, publisher.Config{}, log).Publish(ctx, []publisher.Package{{Metadata: md, Data: first}}); err != nil {
		t.Fatal(err)
	}
	if err := s.conn.ObjectPutBytes(ctx, s.container, "a-1.0.0.tgz", chartTgz(t, "a", "1.0.0", "late"), ""); err != nil {
		t.Fatal(err)
	}
	rep, err := publisher.New(wrapped, publisher.Config{}, log).Publish(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rep.Restored) != "[a-1.0.0.tgz]" || len(rep.Modified) != 0 {
		t.Fatalf("restored %v, modified %v", rep.Restored, rep.Modified)
	}
	if got, _, _ := s.Get(ctx, "a-1.0.0.tgz"); !bytes.Equal(got, first) {
		t.Error("the indexed bytes were not restored")
	}
}
