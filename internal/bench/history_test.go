package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/syncer"
)

// historyCommits is how many commits of the generated history
// BenchmarkRunHistory rebuilds: the last ones, each bumping one chart.
const historyCommits = 200

// BenchmarkRunHistory: `run --history` over the last historyCommits
// commits of the generated history into an empty store, with a fresh state dir: clone, walk the history, build
// every version at the commit it appeared in (lint included, as for any
// new version) and publish. It reports s/1000versions, the time per
// thousand chart versions.
func BenchmarkRunHistory(b *testing.B) {
	u := newUpstream(b)
	first := strings.TrimSpace(gitOut(b, u, "rev-parse", fmt.Sprintf("HEAD~%d", historyCommits-1)))
	versions := numCharts + historyCommits - 1 // every chart at the first commit, then one per bump
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		s := newSite(b, u, "")
		ctx := context.Background()
		sy, err := syncer.New(ctx, s.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		res := sy.History(ctx, first, nil)
		total += time.Since(start)
		b.StopTimer()
		n := 0
		for _, c := range res.Charts {
			if c.Outcome == syncer.Published {
				n++
			}
		}
		if !res.OK() || n != versions {
			b.Fatalf("history: %d of %d versions published: %v %v", n, versions, res.CycleErr(), res.Failures())
		}
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N)/float64(versions)*1000, "s/1000versions")
}

func gitOut(tb testing.TB, u *upstream, args ...string) string {
	tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = u.dir
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// BenchmarkVerify: `chartsync verify` of a store a cycle filled at the
// head of the generated history (numCommits commits): fetch, walk the
// whole first-parent chain (tree reads and Chart.yaml parses at every
// commit), build each version once per distinct content, read every
// stored package. It reports the builds made.
func BenchmarkVerify(b *testing.B) {
	u := newUpstream(b)
	s := newSite(b, u, "")
	s.run(b, numCharts)
	ctx := context.Background()
	sy, err := syncer.New(ctx, s.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		_, entries, st, err := sy.Verify(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			if e.Status != "verified" {
				b.Fatalf("%s %s: %s %s", e.Name, e.Version, e.Status, e.Reason)
			}
		}
		if len(entries) != numCharts || st.Commits != numCommits {
			b.Fatalf("%d entries, %+v; want %d entries, %d commits", len(entries), st, numCharts, numCommits)
		}
		b.ReportMetric(float64(st.Builds), "builds/op")
	}
}
