package gitsrc

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkSyncNoChange measures a Sync with nothing new upstream on a
// checkout of 3,000 files in 100 chart directories (the size of a large
// chart repository): fetch, hard reset, clean and status check.
func BenchmarkSyncNoChange(b *testing.B) {
	u := newUpstream(b)
	for c := range 100 {
		for f := range 30 {
			u.write(fmt.Sprintf("charts/c%03d/templates/f%02d.yaml", c, f), fmt.Sprintf("chart %d file %d\n", c, f), 0o644)
		}
	}
	u.commit("many files")
	opts := Options{URL: u.dir, Branch: "master", Dir: filepath.Join(b.TempDir(), "co")}
	if _, err := Sync(context.Background(), opts); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Sync(context.Background(), opts); err != nil {
			b.Fatal(err)
		}
	}
}
