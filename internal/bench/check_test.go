package bench

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/chartsync/chartsync/internal/check"
)

// BenchmarkCheck measures `chartsync check` for one commit on the
// 100-chart repository: the commit edits one chart's template without a
// bump and bumps another, as a typical change does. Each iteration is the
// whole command's work: open the checkout, resolve both revisions,
// discover the charts at both commits, build at both those whose git tree
// changed, lint the two that differ. It fails unless check finds exactly
// the one unbumped chart.
func BenchmarkCheck(b *testing.B) { benchCheck(b, true) }

// BenchmarkCheckBuildAll is BenchmarkCheck building every chart at both
// commits, as check must when the charts have symlinks or file://
// dependencies: its worst case on this repository.
func BenchmarkCheckBuildAll(b *testing.B) { benchCheck(b, false) }

func benchCheck(b *testing.B, skipUnchanged bool) {
	u := newUpstream(b)
	edited, bumped := u.charts[1], u.charts[2]
	writeFile(b, filepath.Join(u.dir, edited, "templates", "extra.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n")
	chartYAML := filepath.Join(u.dir, bumped, "Chart.yaml")
	old := readFile(b, chartYAML)
	// The history leaves it at 1.0.2-<commit>: any 2.x is a bump.
	bumpedYAML := regexp.MustCompile(`(?m)^version: .*$`).ReplaceAllString(old, "version: 2.0.0")
	if bumpedYAML == old {
		b.Fatalf("%s: no version to bump", chartYAML)
	}
	writeFile(b, chartYAML, bumpedYAML+"description: bumped\n")
	u.git(b, "add", "-A")
	u.git(b, "commit", "-q", "-m", "one unbumped, one bumped")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		co, err := check.OpenCheckout(u.dir)
		if err != nil {
			b.Fatal(err)
		}
		base, err := co.Tree("HEAD~1")
		if err != nil {
			b.Fatal(err)
		}
		head, err := co.Tree("HEAD")
		if err != nil {
			b.Fatal(err)
		}
		opts := check.Options{Globs: []string{"charts/*"}}
		if skipUnchanged {
			if opts.Unchanged, err = co.Unchanged(base.Commit, head.Commit); err != nil {
				b.Fatal(err)
			}
		}
		findings, err := check.Compare(ctx, log, base.FS, head.FS, opts)
		if err != nil {
			b.Fatal(err)
		}
		co.Close()
		if len(findings) != 1 || findings[0].Kind != check.Unbumped || findings[0].Dir != edited {
			b.Fatalf("findings %v, want one unbumped in %s", findings, edited)
		}
	}
}
