package publisher

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// repack writes pkg's files again the way another tool would: other
// times, another compression level. Same content, other bytes.
func repack(t *testing.T, p Package) Package {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(p.Data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		h.ModTime = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		tw.WriteHeader(h)
		b := new(bytes.Buffer)
		b.ReadFrom(tr)
		tw.Write(b.Bytes())
	}
	tw.Close()
	zw.Close()
	q := p
	q.Data, q.Digest = buf.Bytes(), ""
	return q
}

// TestAdoptSameContent: a package another tool stored (same chart content,
// other bytes) is indexed from its stored bytes and reported as adopted,
// not as a failure, and read once; later cycles find the build's content
// equal to the indexed package's without reading it again.
func TestAdoptSameContent(t *testing.T) {
	ctx := context.Background()
	s, _ := newLocal(t)
	mine := pkg(t, "a", "1.0.0", "")
	theirs := repack(t, mine)
	if digest(theirs.Data) == digest(mine.Data) {
		t.Fatal("repack gave the same bytes")
	}
	if err := s.Create(ctx, "a-1.0.0.tgz", theirs.Data); err != nil {
		t.Fatal(err)
	}
	counting := &countingStore{Store: s, reads: map[string]int{}}
	p := New(counting, Config{}, quiet())
	rep, err := p.Publish(ctx, []Package{mine})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Failed) != 0 || fmt.Sprint(rep.Adopted) != "[a-1.0.0.tgz]" {
		t.Fatalf("failed %v, adopted %v", rep.Failed, rep.Adopted)
	}
	if n := counting.reads["a-1.0.0.tgz"]; n != 1 {
		t.Errorf("the stored package was read %d times, want 1", n)
	}
	idx, _, _ := p.Index(ctx)
	if cv := Lookup(idx, "a", "1.0.0"); cv == nil || cv.Digest != digest(theirs.Data) {
		t.Fatalf("entry %+v, want the stored bytes' digest", cv)
	}
	// Next cycle: the version is indexed; this build has other bytes of the
	// same content: fine, and no read.
	counting.reads = map[string]int{}
	rep, err = p.Publish(ctx, []Package{mine})
	if err != nil || len(rep.Failed) != 0 {
		t.Fatalf("second cycle: %v, failed %v", err, rep.Failed)
	}
	if n := counting.reads["a-1.0.0.tgz"]; n != 0 {
		t.Errorf("second cycle read the package %d times, want 0", n)
	}
}

// TestContentDiffersEveryCycle: a build of an indexed version with other
// content fails, every cycle, and the published package stays.
func TestContentDiffersEveryCycle(t *testing.T) {
	ctx := context.Background()
	s, _ := newLocal(t)
	first := pkg(t, "a", "1.0.0", "first")
	if _, err := New(s, Config{}, quiet()).Publish(ctx, []Package{first}); err != nil {
		t.Fatal(err)
	}
	p := New(s, Config{}, quiet())
	for cycle := range 3 {
		rep, err := p.Publish(ctx, []Package{pkg(t, "a", "1.0.0", "edited")})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(rep.Failed["a-1.0.0.tgz"], ErrContentDiffers) {
			t.Errorf("cycle %d: %v, want ErrContentDiffers", cycle, rep.Failed["a-1.0.0.tgz"])
		}
	}
	b, _, _ := s.Get(ctx, "a-1.0.0.tgz")
	if digest(b) != digest(first.Data) {
		t.Error("the published package changed")
	}
}

// TestRestoreFromBuild: the stored package was replaced after it was
// indexed; a publisher whose build has exactly the indexed digest puts the
// indexed bytes back and reports it.
func TestRestoreFromBuild(t *testing.T) {
	ctx := context.Background()
	s, dir := newLocal(t)
	first := pkg(t, "a", "1.0.0", "first")
	p := New(s, Config{}, quiet())
	if _, err := p.Publish(ctx, []Package{first}); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "a-1.0.0.tgz"))
	os.WriteFile(filepath.Join(dir, "a-1.0.0.tgz"), pkg(t, "a", "1.0.0", "late writer").Data, 0o644)
	// Without the build: reported as modified.
	rep, err := New(s, Config{}, quiet()).Publish(ctx, nil)
	if err != nil || fmt.Sprint(rep.Modified) != "[a-1.0.0.tgz]" {
		t.Fatalf("without the build: %v, modified %v", err, rep.Modified)
	}
	// With it (given lazily: only a digest and a way to build).
	lazy := Package{Metadata: first.Metadata, Digest: digest(first.Data), Load: func(context.Context) ([]byte, error) { return first.Data, nil }}
	rep, err = p.Publish(ctx, []Package{lazy})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rep.Restored) != "[a-1.0.0.tgz]" || len(rep.Modified) != 0 || len(rep.Failed) != 0 {
		t.Fatalf("restored %v, modified %v, failed %v", rep.Restored, rep.Modified, rep.Failed)
	}
	b, _, _ := s.Get(ctx, "a-1.0.0.tgz")
	if digest(b) != digest(first.Data) {
		t.Error("the indexed bytes were not restored")
	}
}

// TestLossVersusFirstIndexed: an entry an earlier index read listed and a
// later one lacks is a loss (Repaired); a package no index listed is
// adopted.
func TestLossVersusFirstIndexed(t *testing.T) {
	ctx := context.Background()
	s, _ := newLocal(t)
	p := New(s, Config{}, quiet())
	if _, err := p.Publish(ctx, []Package{pkg(t, "a", "1.0.0", ""), pkg(t, "b", "1.0.0", "")}); err != nil {
		t.Fatal(err)
	}
	// Another writer replaces the index with one that lacks b (a lost
	// update), and stores c without indexing it (in flight).
	idx, ver, _ := p.Index(ctx)
	delete(idx.charts, "b")
	b, _ := idx.Marshal()
	if _, err := s.Replace(ctx, "index.yaml", b, ver); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "c-1.0.0.tgz", pkg(t, "c", "1.0.0", "").Data); err != nil {
		t.Fatal(err)
	}
	rep, err := p.Publish(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rep.Repaired) != "[b-1.0.0.tgz]" || fmt.Sprint(rep.Adopted) != "[c-1.0.0.tgz]" {
		t.Errorf("repaired %v, adopted %v", rep.Repaired, rep.Adopted)
	}
}

// TestEditedIndexEntry: an index digest edited by hand while the package
// kept its bytes is reported as an edited entry, not a modified package.
func TestEditedIndexEntry(t *testing.T) {
	ctx := context.Background()
	s, _ := newLocal(t)
	p := New(s, Config{}, quiet())
	if _, err := p.Publish(ctx, []Package{pkg(t, "a", "1.0.0", "")}); err != nil {
		t.Fatal(err)
	}
	// Edit the digest in the index's text, as a person would.
	b, ver, err := s.Get(ctx, "index.yaml")
	if err != nil {
		t.Fatal(err)
	}
	idx, err := ParseIndex(b)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte(Lookup(idx, "a", "1.0.0").Digest), []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), 1)
	if _, err := s.Replace(ctx, "index.yaml", b, ver); err != nil {
		t.Fatal(err)
	}
	rep, err := p.Publish(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rep.Edited) != "[a-1.0.0.tgz]" || len(rep.Modified) != 0 {
		t.Errorf("edited %v, modified %v", rep.Edited, rep.Modified)
	}
}

// TestFileNameCollision is issue 9 case 1: chart "a-1.0.0" 1.0.0 and chart
// "a" 1.0.0-1.0.0 are both a-1.0.0-1.0.0.tgz. In one Publish both fail and
// nothing is indexed; against the index or the store, the newcomer fails.
func TestFileNameCollision(t *testing.T) {
	ctx := context.Background()
	squat, legit := pkg(t, "a-1.0.0", "1.0.0", ""), pkg(t, "a", "1.0.0-1.0.0", "")
	t.Run("same publish", func(t *testing.T) {
		s, _ := newLocal(t)
		rep, err := New(s, Config{}, quiet()).Publish(ctx, []Package{squat, legit, pkg(t, "ok", "1.0.0", "")})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(rep.Failed["a-1.0.0-1.0.0.tgz"], ErrNameClaimed) {
			t.Errorf("failed %v", rep.Failed)
		}
		idx, _, _ := New(s, Config{}, quiet()).Index(ctx)
		if Entries(idx) != 1 || Lookup(idx, "ok", "1.0.0") == nil {
			t.Errorf("index %v, want only ok", idx.Charts())
		}
	})
	for _, tt := range []struct {
		name         string
		first, later Package
	}{{"squatter first", squat, legit}, {"legit first", legit, squat}} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newLocal(t)
			if _, err := New(s, Config{}, quiet()).Publish(ctx, []Package{tt.first}); err != nil {
				t.Fatal(err)
			}
			for cycle := range 2 {
				rep, err := New(s, Config{}, quiet()).Publish(ctx, []Package{tt.later})
				if err != nil {
					t.Fatal(err)
				}
				if !errors.Is(rep.Failed["a-1.0.0-1.0.0.tgz"], ErrNameClaimed) {
					t.Errorf("cycle %d: %v, want ErrNameClaimed", cycle, rep.Failed)
				}
			}
			idx, _, _ := New(s, Config{}, quiet()).Index(ctx)
			if Lookup(idx, tt.later.Metadata.Name, tt.later.Metadata.Version) != nil || Entries(idx) != 1 {
				t.Errorf("index %v", idx.Charts())
			}
		})
	}
	t.Run("stored, not indexed", func(t *testing.T) {
		s, _ := newLocal(t)
		if err := s.Create(ctx, "a-1.0.0-1.0.0.tgz", squat.Data); err != nil {
			t.Fatal(err)
		}
		rep, err := New(s, Config{}, quiet()).Publish(ctx, []Package{legit})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(rep.Failed["a-1.0.0-1.0.0.tgz"], ErrNameClaimed) {
			t.Errorf("%v, want ErrNameClaimed", rep.Failed)
		}
		idx, _, _ := New(s, Config{}, quiet()).Index(ctx)
		if Entries(idx) != 0 {
			t.Errorf("index %v, want nothing indexed", idx.Charts())
		}
	})
}

// TestURLMatchedExactly: an entry of another chart whose url merely ends
// in bar-1.0.0.tgz neither keeps bar out of the index nor makes it
// modified.
func TestURLMatchedExactly(t *testing.T) {
	ctx := context.Background()
	s, _ := newLocal(t)
	p := New(s, Config{}, quiet())
	idx := NewIndex()
	idx.MustAdd(pkg(t, "foo", "1.0.0", "").Metadata, "bar-1.0.0.tgz", "https://elsewhere.invalid/x", "00")
	b, _ := idx.Marshal()
	if _, err := s.Replace(ctx, "index.yaml", b, ""); err != nil {
		t.Fatal(err)
	}
	for cycle := range 2 {
		rep, err := p.Publish(ctx, []Package{pkg(t, "bar", "1.0.0", "")})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Failed) != 0 || len(rep.Modified) != 0 || len(rep.Missing) != 0 {
			t.Errorf("cycle %d: failed %v, modified %v, missing %v", cycle, rep.Failed, rep.Modified, rep.Missing)
		}
	}
	idx, _, _ = p.Index(ctx)
	if Lookup(idx, "bar", "1.0.0") == nil || Lookup(idx, "foo", "1.0.0") == nil {
		t.Errorf("index %v", idx.Charts())
	}
}
