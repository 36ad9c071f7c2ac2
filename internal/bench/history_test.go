package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/syncer"
)

// historyCommits is how many commits BenchmarkRunHistory's history has:
// the first adds numCharts charts, each later one bumps every chart's
// major version and edits its values.yaml.
const historyCommits = 3

// BenchmarkRunHistory: `run --history` from the first commit into an
// empty store, with a fresh state dir: clone, walk the history, build
// every version at the commit it appeared in (lint included, as for any
// new version) and publish. It reports s/1000versions, the time per
// thousand chart versions.
func BenchmarkRunHistory(b *testing.B) {
	u := newUpstream(b)
	first := strings.TrimSpace(gitOut(b, u, "rev-parse", "HEAD"))
	version := regexp.MustCompile(`(?m)^version: (\d+)\.(\d+)\.(\d+)$`)
	for c := 1; c < historyCommits; c++ {
		for _, dir := range u.charts {
			f := filepath.Join(u.dir, dir, "Chart.yaml")
			writeFile(b, f, version.ReplaceAllString(readFile(b, f), fmt.Sprintf("version: %d.$2.$3", c+1)))
			writeFile(b, filepath.Join(u.dir, dir, "values.yaml"), readFile(b, filepath.Join(u.dir, dir, "values.yaml"))+fmt.Sprintf("# edit %d\n", c))
		}
		u.git(b, "commit", "-q", "-a", "-m", fmt.Sprintf("bump %d", c))
	}
	versions := numCharts * historyCommits
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

// verifyCommits is how many commits BenchmarkVerify adds after the first:
// each bumps one chart's version and edits a file outside the charts.
const verifyCommits = 50

// BenchmarkVerify: `chartsync verify` of a store a cycle filled at the
// head of a history of 1+verifyCommits commits: fetch, walk the whole
// first-parent chain (tree reads and Chart.yaml parses at every commit),
// build each indexed version once, read every stored package. It reports
// the builds made, which must be one per indexed version.
func BenchmarkVerify(b *testing.B) {
	u := newUpstream(b)
	version := regexp.MustCompile(`(?m)^version: (\d+)\.(\d+)\.(\d+)$`)
	for c := range verifyCommits {
		f := filepath.Join(u.dir, u.charts[c%len(u.charts)], "Chart.yaml")
		writeFile(b, f, version.ReplaceAllString(readFile(b, f), "version: 9.$2.$3"))
		writeFile(b, filepath.Join(u.dir, "README"), fmt.Sprintf("commit %d\n", c))
		u.git(b, "add", "-A")
		u.git(b, "commit", "-q", "-m", fmt.Sprintf("bump %d", c))
	}
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
		if len(entries) != numCharts || st.Builds != numCharts || st.Commits != 1+verifyCommits {
			b.Fatalf("%d entries, %+v; want %d entries and builds, %d commits", len(entries), st, numCharts, 1+verifyCommits)
		}
		b.ReportMetric(float64(st.Builds), "builds/op")
	}
}
