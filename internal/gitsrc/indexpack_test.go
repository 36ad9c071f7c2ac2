package gitsrc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// receivePack feeds pack (as a server would send it) to the repository in
// dir through the storage a network fetch uses.
func receivePack(t *testing.T, dir string, pack []byte) {
	t.Helper()
	w, err := packStorage{newStorage(dir), context.Background()}.PackfileWriter()
	if err != nil {
		t.Fatal(err)
	}
	for len(pack) > 0 { // in pieces, as from the network
		n := min(len(pack), 4096+len(pack)%7)
		if _, err := w.Write(pack[:n]); err != nil {
			t.Fatal(err)
		}
		pack = pack[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatalf("index pack: %v", err)
	}
}

// TestIndexPack receives packs made by git pack-objects (offset deltas,
// reference deltas, a thin pack) holding deltas of a 2 MiB file, larger
// than what indexPack keeps in memory, and checks with git fsck --full
// that the repository holds every object intact.
func TestIndexPack(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	var big strings.Builder
	for i := range 40000 {
		fmt.Fprintf(&big, "line %d of a file that changes a little in every commit\n", i)
	}
	content := big.String()
	var commits []string
	for c := range 12 {
		content = strings.Replace(content, fmt.Sprintf("line %d ", c*1000), fmt.Sprintf("LINE %d (commit %d) ", c*1000, c), 1)
		u.write("big.txt", content, 0o644)
		u.write(fmt.Sprintf("charts/c%d/Chart.yaml", c), fmt.Sprintf("name: c%d\n", c), 0o644)
		u.symlink(fmt.Sprintf("c%d", c), fmt.Sprintf("charts/link%d", c))
		commits = append(commits, u.commit(fmt.Sprintf("commit %d", c)))
	}
	runGit(t, u.dir, "repack", "-q", "-a", "-d", "-f", "--depth=50", "--window=50")
	head := commits[len(commits)-1]
	mid := commits[5]

	newBare := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "repo")
		runGit(t, "", "init", "-q", "--bare", dir)
		return dir
	}
	check := func(t *testing.T, dir, tip string) {
		t.Helper()
		runGit(t, dir, "update-ref", "refs/heads/master", tip)
		runGit(t, dir, "fsck", "--full", "--strict", "--no-dangling")
		if got, want := runGit(t, dir, "rev-list", "--objects", "master"), runGit(t, u.dir, "rev-list", "--objects", tip); got != want {
			t.Errorf("objects differ from upstream's")
		}
		if got := runGit(t, dir, "cat-file", "blob", tip+":big.txt"); got != strings.TrimSpace(runGit(t, u.dir, "cat-file", "blob", tip+":big.txt")) {
			t.Errorf("big.txt differs from upstream's")
		}
		_ = filepath.Walk(filepath.Join(dir, "objects"), func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s has mode %v, want private", p, fi.Mode())
			}
			return err
		})
	}
	packOf := func(t *testing.T, revs string, args ...string) []byte {
		t.Helper()
		return []byte(gitStdinRaw(t, u.dir, []byte(revs), append([]string{"pack-objects", "-q", "--stdout", "--revs"}, args...)...))
	}

	t.Run("offset deltas", func(t *testing.T) {
		t.Parallel()
		dir := newBare(t)
		receivePack(t, dir, packOf(t, head+"\n", "--delta-base-offset"))
		packs, _ := filepath.Glob(filepath.Join(dir, "objects/pack/pack-*.idx"))
		if len(packs) != 1 {
			t.Errorf("want the pack kept with its index, got %v", packs)
		}
		check(t, dir, head)
		runGit(t, dir, "verify-pack", packs[0])
	})
	t.Run("reference deltas", func(t *testing.T) {
		t.Parallel()
		dir := newBare(t)
		receivePack(t, dir, packOf(t, head+"\n"))
		check(t, dir, head)
	})
	t.Run("thin pack", func(t *testing.T) {
		t.Parallel()
		dir := newBare(t)
		receivePack(t, dir, packOf(t, mid+"\n", "--delta-base-offset"))
		check(t, dir, mid)
		receivePack(t, dir, packOf(t, head+"\n^"+mid+"\n", "--delta-base-offset", "--thin"))
		check(t, dir, head)
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		dir := newBare(t)
		ctx, cancel := context.WithCancel(context.Background())
		w, err := packStorage{newStorage(dir), ctx}.PackfileWriter()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(packOf(t, head+"\n", "--delta-base-offset")); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := w.Close(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Close after cancel = %v, want context.Canceled", err)
		}
		if left, _ := os.ReadDir(filepath.Join(dir, "objects/pack")); len(left) != 0 {
			t.Errorf("files left in objects/pack: %v", left)
		}
	})
	t.Run("truncated pack", func(t *testing.T) {
		t.Parallel()
		dir := newBare(t)
		pack := packOf(t, head+"\n", "--delta-base-offset")
		w, err := packStorage{newStorage(dir), context.Background()}.PackfileWriter()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(pack[:len(pack)/2]); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err == nil {
			t.Fatal("a truncated pack was indexed")
		}
		left, _ := os.ReadDir(filepath.Join(dir, "objects/pack"))
		if len(left) != 0 {
			t.Errorf("files left in objects/pack: %v", left)
		}
	})
}
