package publisher

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/repo"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/chartsync/chartsync/internal/publisher/local"
)

// pkg makes a minimal valid chart archive.
func pkg(t testing.TB, name, version, note string) Package {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	files := map[string]string{
		name + "/Chart.yaml":  fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\ndescription: %s\n", name, version, note),
		name + "/values.yaml": "x: 1\n",
	}
	for _, n := range []string{name + "/Chart.yaml", name + "/values.yaml"} {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	zw.Close()
	return Package{Metadata: &chart.Metadata{APIVersion: "v2", Name: name, Version: version, Description: note}, Data: buf.Bytes()}
}

func newLocal(t *testing.T) (*local.Store, string) {
	dir := t.TempDir()
	s, err := local.New(context.Background(), local.Config{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

// helmEntry returns the entry for name and version as helm reads idx, or
// nil.
func helmEntry(t testing.TB, idx *Index, name, version string) *repo.ChartVersion {
	t.Helper()
	b, err := idx.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var h repo.IndexFile
	if err := sigsyaml.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	for _, cv := range h.Entries[name] {
		if cv.Version == version {
			return cv
		}
	}
	return nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestPublishAddsAndNeverDrops(t *testing.T) {
	ctx := context.Background()
	s, _ := newLocal(t)
	p := New(s, Config{Prefix: "stable"}, quiet())
	rep, err := p.Publish(ctx, []Package{pkg(t, "a", "1.0.0", ""), pkg(t, "b", "0.1.0", "")})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Published) != 2 || rep.Entries != 2 || !rep.Wrote {
		t.Fatalf("report %+v", rep)
	}
	idx, _, _ := p.Index(ctx)
	created := helmEntry(t, idx, "a", "1.0.0").Created

	// Same bytes again: nothing to do, nothing written.
	rep, err = p.Publish(ctx, []Package{pkg(t, "a", "1.0.0", "")})
	if err != nil || rep.Wrote || len(rep.Failed) != 0 {
		t.Fatalf("republish of identical bytes: %+v, %v", rep, err)
	}
	// Other bytes under a published name fail alone; the entry is kept.
	rep, err = p.Publish(ctx, []Package{pkg(t, "a", "1.0.0", "changed"), pkg(t, "c", "2.0.0", "")})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(rep.Failed["a-1.0.0.tgz"], ErrContentDiffers) {
		t.Errorf("a-1.0.0 with other bytes: %v", rep.Failed["a-1.0.0.tgz"])
	}
	idx, _, _ = p.Index(ctx)
	if cv := helmEntry(t, idx, "a", "1.0.0"); cv == nil || !cv.Created.Equal(created) {
		t.Errorf("a 1.0.0 entry changed or dropped: %+v", cv)
	}
	if Lookup(idx, "c", "2.0.0") == nil || rep.Entries != 3 {
		t.Errorf("c 2.0.0 not added; entries %d", rep.Entries)
	}
}

func TestReconcileRepairsAndReports(t *testing.T) {
	ctx := context.Background()
	s, dir := newLocal(t)
	p := New(s, Config{}, quiet())
	if _, err := p.Publish(ctx, []Package{pkg(t, "a", "1.0.0", ""), pkg(t, "b", "1.0.0", "")}); err != nil {
		t.Fatal(err)
	}
	// A package stored behind the index's back (a lost index update).
	lost := pkg(t, "lost", "3.0.0", "")
	if err := s.Create(ctx, "lost-3.0.0.tgz", lost.Data); err != nil {
		t.Fatal(err)
	}
	// A package whose bytes changed after publication, and one deleted.
	os.Remove(filepath.Join(dir, "a-1.0.0.tgz"))
	os.WriteFile(filepath.Join(dir, "a-1.0.0.tgz"), pkg(t, "a", "1.0.0", "tampered").Data, 0o644)
	os.Remove(filepath.Join(dir, "b-1.0.0.tgz"))

	rep, err := p.Publish(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// No index read ever listed lost 3.0.0: it is adopted, not repaired.
	if fmt.Sprint(rep.Adopted) != "[lost-3.0.0.tgz]" || len(rep.Repaired) != 0 || fmt.Sprint(rep.Modified) != "[a-1.0.0.tgz]" || fmt.Sprint(rep.Missing) != "[b-1.0.0.tgz]" {
		t.Fatalf("adopted %v, repaired %v, modified %v, missing %v", rep.Adopted, rep.Repaired, rep.Modified, rep.Missing)
	}
	idx, _, _ := p.Index(ctx)
	cv := Lookup(idx, "lost", "3.0.0")
	if cv == nil || cv.Digest != digest(lost.Data) {
		t.Errorf("lost entry not restored from the stored bytes: %+v", cv)
	}
	if Lookup(idx, "b", "1.0.0") == nil {
		t.Error("entry of a missing package was dropped")
	}
}

func TestUnreadableIndexWritesNothing(t *testing.T) {
	ctx := context.Background()
	s, dir := newLocal(t)
	os.WriteFile(filepath.Join(dir, "index.yaml"), []byte("apiVersion: v1\nentries: {a: [\n"), 0o644)
	p := New(s, Config{}, quiet())
	_, err := p.Publish(ctx, []Package{pkg(t, "a", "1.0.0", "")})
	if !errors.Is(err, ErrIndexUnreadable) {
		t.Fatalf("err = %v, want ErrIndexUnreadable", err)
	}
	if _, _, err := p.Index(ctx); !errors.Is(err, ErrIndexUnreadable) {
		t.Fatalf("Index err = %v", err)
	}
	// Nothing was stored either: the package waits for a readable index.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "index.yaml" && !strings.HasPrefix(e.Name(), ".") {
			t.Errorf("stored %s although the index is unreadable", e.Name())
		}
	}
}

func TestConcurrentPublishersLoseNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := newLocal(t)
	const writers = 8
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := New(s, Config{}, quiet())
			if _, err := p.Publish(ctx, []Package{pkg(t, fmt.Sprintf("c%d", w), "1.0.0", ""), pkg(t, "shared", "1.0.0", "")}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	idx, _, err := New(s, Config{}, quiet()).Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := Entries(idx); n != writers+1 {
		t.Errorf("index has %d entries, want %d", n, writers+1)
	}
}

func TestBaseURL(t *testing.T) {
	s, _ := newLocal(t)
	p := New(s, Config{Prefix: "x", BaseURL: "https://charts.example.org/x"}, quiet())
	if _, err := p.Publish(context.Background(), []Package{pkg(t, "a", "1.0.0", "")}); err != nil {
		t.Fatal(err)
	}
	idx, _, _ := p.Index(context.Background())
	if u := Lookup(idx, "a", "1.0.0").URL; u != "https://charts.example.org/x/a-1.0.0.tgz" {
		t.Errorf("url %q", u)
	}
}
