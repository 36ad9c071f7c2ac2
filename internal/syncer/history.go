package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/chartsync/chartsync/internal/config"
	"github.com/chartsync/chartsync/internal/gitsrc"
	"github.com/chartsync/chartsync/internal/metrics"
	"github.com/chartsync/chartsync/internal/packager"
	"github.com/chartsync/chartsync/internal/publisher"
)

// historyBatch is how many chart versions History builds and publishes at
// a time: it bounds the package bytes held in memory.
const historyBatch = 100

// Progress is told how many chart versions of a repository History has
// dealt with, of how many.
type Progress func(repository string, done, total int)

// History publishes every chart version that existed on the first-parent
// chain of the branch from rev (included) to the head, each built from the
// first commit where that version appeared: what a publisher running at
// every commit would have published (a version that several directories
// claimed at first is built from the first commit where one alone claims
// it). The usual rules apply: a version in the index is compared, never
// replaced (content_differs fails it alone); a version no commit has in one
// directory alone is a conflict; a collision of package file names fails alone; the index is
// reconciled with the store. Versions are built and published in batches
// of historyBatch, oldest first, and progress (may be nil) is called
// after each batch. Result.Commit is the head.
func (s *Syncer) History(ctx context.Context, rev string, progress Progress) *Result {
	res := &Result{}
	tree, repo, err := s.history(ctx)
	if err != nil {
		res.Err = err
		return res
	}
	defer repo.Close()
	res.Commit, res.CommitTime = tree.Commit, tree.Time
	commits, err := repo.FirstParents(ctx, rev, tree.Commit)
	if err == nil {
		var first *gitsrc.Tree
		if first, err = repo.Tree(rev); err == nil {
			commits = append(commits, gitsrc.Commit{Hash: first.Commit, Time: first.Time})
		}
	}
	if err != nil {
		res.Err = fmt.Errorf("git history since %s: %w", rev, err)
		return res
	}
	slices.Reverse(commits) // oldest first
	for _, r := range s.cfg.Repositories {
		s.historyOf(ctx, repo, commits, r, progress, res)
		if ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil && res.Err == nil {
		res.Err = fmt.Errorf("history: %w", context.Cause(ctx))
	}
	return res
}

// appeared is a chart version at the first commit where one directory
// alone has it (or, if none, at the first commit where several claim it).
type appeared struct {
	commit string
	charts []packager.Chart // the directories claiming it there (more than one: a conflict)
}

// historyOf finds where each chart version of r first appeared and
// publishes them.
func (s *Syncer) historyOf(ctx context.Context, repo *gitsrc.Repo, commits []gitsrc.Commit, r config.Repository, progress Progress, res *Result) {
	rr := RepoResult{Name: r.Name}
	defer func() { res.Repos = append(res.Repos, rr) }()
	add := func(c ChartResult) {
		c.Repository = r.Name
		res.Charts = append(res.Charts, c)
	}
	type nv struct{ name, version string }
	first := map[nv]*appeared{}
	var order []nv
	for i, c := range commits {
		tree, err := repo.Tree(c.Hash)
		if err != nil {
			rr.Err = fmt.Errorf("git: %w", err)
			return
		}
		charts, errs := packager.Discover(ctx, tree.FS, r.Charts)
		if i == len(commits)-1 {
			// A chart that cannot be read at the head fails, as in a
			// cycle; at older commits it is history.
			for _, e := range errs {
				add(ChartResult{Dir: e.Dir, Name: e.Name, Version: e.Version, Outcome: Failed, Reason: string(e.Reason), Err: e})
			}
		}
		here := map[nv][]packager.Chart{}
		for _, ch := range charts {
			k := nv{ch.Metadata.Name, ch.Metadata.Version}
			if here[k] == nil && first[k] == nil {
				order = append(order, k)
			}
			here[k] = append(here[k], ch)
		}
		for k, chs := range here {
			// The first commit where one directory alone claims the
			// version; until then, the first commit with a conflict.
			if a := first[k]; a == nil || len(a.charts) > 1 && len(chs) == 1 {
				first[k] = &appeared{commit: c.Hash, charts: chs}
			}
		}
		if err := ctx.Err(); err != nil {
			return
		}
	}
	rr.GitVersions = len(order)
	names := map[string]bool{}
	for _, k := range order {
		names[k.name] = true
	}
	rr.GitCharts = len(names)

	pub := s.publisherOf(r)
	var wanted []nv
	for _, k := range order {
		a := first[k]
		if len(a.charts) > 1 {
			rr.Conflicts++
			where := make([]string, len(a.charts))
			for i, c := range a.charts {
				where[i] = c.Dir
			}
			for _, c := range a.charts {
				add(ChartResult{Dir: c.Dir, Name: k.name, Version: k.version, Outcome: Failed, Reason: metrics.ReasonConflict,
					Err: fmt.Errorf("chart %q %s (%s): conflict: %d directories claim this name and version at commit %s, and no later commit has it in one directory alone: %s",
						k.name, k.version, c.Dir, len(a.charts), a.commit, strings.Join(where, ", "))})
			}
			continue
		}
		wanted = append(wanted, k)
	}
	done := 0
	for start := 0; start < len(wanted); start += historyBatch {
		batch := wanted[start:min(start+historyBatch, len(wanted))]
		idx, ver, err := pub.Index(ctx)
		if err != nil {
			rr.Err = fmt.Errorf("store %s: %w", r.Store, err)
			return
		}
		// Build at each version's first commit: new versions as a
		// publisher would (lint, signature), indexed ones to compare.
		byCommit := map[string][]packager.Chart{}
		var commitOrder []string
		for _, k := range batch {
			a := first[k]
			if byCommit[a.commit] == nil {
				commitOrder = append(commitOrder, a.commit)
			}
			byCommit[a.commit] = append(byCommit[a.commit], a.charts[0])
		}
		var pkgs []publisher.Package
		var crs []ChartResult
		for _, commit := range commitOrder {
			tree, err := repo.Tree(commit)
			if err != nil {
				rr.Err = fmt.Errorf("git: %w", err)
				return
			}
			var todo, check []packager.Chart
			for _, c := range byCommit[commit] {
				if publisher.Lookup(idx, c.Metadata.Name, c.Metadata.Version) != nil {
					check = append(check, c)
				} else {
					todo = append(todo, c)
				}
			}
			all := append(slices.Clone(todo), check...)
			for i, b := range append(s.build(ctx, tree.FS, todo, r, false), s.build(ctx, tree.FS, check, r, true)...) {
				c := all[i]
				cr := ChartResult{Dir: c.Dir, Name: c.Metadata.Name, Version: c.Metadata.Version, Outcome: Pending}
				if i >= len(todo) {
					cr.Outcome = Skipped
				}
				if b.err != nil {
					if cr.Outcome == Skipped {
						// Published already and no longer builds: nothing
						// to compare, as in a cycle.
						s.log.Warn("published chart version does not build at the commit it appeared in", "repository", r.Name,
							"chart", c.Metadata.Name, "version", c.Metadata.Version, "commit", commit, "err", b.err)
						crs = append(crs, cr)
						continue
					}
					cr.Outcome, cr.Reason, cr.Err = Failed, metrics.ReasonPackage, fmt.Errorf("at commit %s: %w", commit, b.err)
					var pe *packager.Error
					if errors.As(b.err, &pe) {
						cr.Reason = string(pe.Reason)
					}
					crs = append(crs, cr)
					continue
				}
				cr.Warnings = b.pkg.Warnings
				pkgs = append(pkgs, publisher.Package{Metadata: b.pkg.Metadata, Data: b.pkg.Data, Digest: b.pkg.Digest, Provenance: b.pkg.Provenance})
				crs = append(crs, cr)
			}
		}
		rep, err := pub.PublishOn(ctx, idx, ver, pkgs)
		if err != nil {
			rr.Err = fmt.Errorf("store %s: %w", r.Store, err)
		}
		rr.Entries = rep.Entries
		rr.Repaired = append(rr.Repaired, rep.Repaired...)
		rr.Adopted = append(rr.Adopted, rep.Adopted...)
		rr.Restored = append(rr.Restored, rep.Restored...)
		rr.Missing, rr.Modified, rr.Edited = rep.Missing, rep.Modified, rep.Edited
		for _, cr := range crs {
			add(settle(cr, rep, err, r.Store, "run again to index it"))
		}
		done += len(batch)
		if progress != nil {
			progress(r.Name, done, len(wanted))
		}
		if err != nil || ctx.Err() != nil {
			return
		}
	}
	if len(wanted) == 0 {
		// Nothing to publish: still reconcile the index with the store.
		rep, err := pub.Publish(ctx, nil)
		if err != nil {
			rr.Err = fmt.Errorf("store %s: %w", r.Store, err)
		}
		rr.Entries, rr.Repaired, rr.Adopted, rr.Restored = rep.Entries, rep.Repaired, rep.Adopted, rep.Restored
		rr.Missing, rr.Modified, rr.Edited = rep.Missing, rep.Modified, rep.Edited
	}
}
