// Package syncer runs one sync cycle: it joins gitsrc (what is in git),
// packager (what a chart version packages to) and publisher (what the
// repository holds), decides what to publish and reports each chart's
// outcome. One chart's failure never stops the others.
package syncer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"helm.sh/helm/v3/pkg/chart"

	"github.com/chartsync/chartsync/internal/config"
	"github.com/chartsync/chartsync/internal/gitsrc"
	"github.com/chartsync/chartsync/internal/metrics"
	"github.com/chartsync/chartsync/internal/packager"
	"github.com/chartsync/chartsync/internal/publisher"
	"github.com/chartsync/chartsync/internal/publisher/store"
	"github.com/chartsync/chartsync/internal/stores"
)

// Outcome is what happened to one chart version in a cycle.
type Outcome string

const (
	Published Outcome = "published" // stored and indexed by this cycle
	Adopted   Outcome = "adopted"   // stored by another tool with the same content; indexed from the stored bytes
	Pending   Outcome = "pending"   // plan only: would be published
	Skipped   Outcome = "skipped"   // already in the index, with this content
	Failed    Outcome = "failed"    // see Reason and Err
)

// ChartResult is one chart directory's outcome.
type ChartResult struct {
	Repository string
	Dir        string // relative to the git root; "" for a stored package
	Name       string
	Version    string
	Outcome    Outcome
	Reason     string // a metrics.Reason* class when Failed
	Err        error
	Warnings   []string
}

// RepoResult is one repository's state after the cycle.
type RepoResult struct {
	Name        string
	Entries     int      // chart versions in the index
	GitCharts   int      // distinct chart names found in git
	GitVersions int      // distinct (name, version) pairs found in git
	Conflicts   int      // directories in a (name, version) or file name conflict
	Repaired    []string // lost index entries added back (see publisher.Report)
	Adopted     []string // stored packages indexed for the first time
	Restored    []string // packages put back to their indexed bytes
	Missing     []string
	Modified    []string
	Edited      []string // index entries whose digest was edited
	Drifted     []Drift  // indexed versions whose build at this commit has another digest (see drift.go)
	Err         error    // the repository could not be processed at all
}

// Result is the outcome of one cycle.
type Result struct {
	Commit     string
	CommitTime time.Time
	Charts     []ChartResult
	Repos      []RepoResult
	Err        error // the cycle could not run (git, lock, ...)
}

// CycleErr is the cycle's own failure, if any: git, or a repository that
// could not be read or written. Charts failing alone are not in it.
func (r *Result) CycleErr() error {
	errs := []error{r.Err}
	for _, rr := range r.Repos {
		errs = append(errs, rr.Err)
	}
	return errors.Join(errs...)
}

// Failures lists the charts that failed.
func (r *Result) Failures() []ChartResult {
	var out []ChartResult
	for _, c := range r.Charts {
		if c.Outcome == Failed {
			out = append(out, c)
		}
	}
	return out
}

// OK reports whether everything succeeded: the cycle ran, every
// repository was processed, no chart failed and no stored package was
// found modified.
func (r *Result) OK() bool {
	if r.CycleErr() != nil || len(r.Failures()) > 0 {
		return false
	}
	for _, rr := range r.Repos {
		if len(rr.Modified) > 0 || len(rr.Edited) > 0 {
			return false
		}
	}
	return true
}

// Syncer runs cycles for one configuration.
type Syncer struct {
	cfg     *config.Config
	stores  map[string]store.Store
	auth    gitsrc.Auth
	log     *slog.Logger
	metrics *metrics.Metrics
	digests map[string]*publisher.DigestCache
	memory  map[string]*publisher.Memory // by repository
	builds  map[string]*buildCache       // by repository
	signers map[string]*packager.Signer  // by repository; absent: unsigned
	linter  *packager.Linter             // lints in a bounded child process; verdicts cached in the state dir
	decided *decisions                   // the last good cycle's decisions, for no-op cycles
	work    work
}

// work counts what cycles did, for tests: a no-op cycle discovers and
// builds nothing.
type work struct {
	discovered atomic.Int64 // packager.Discover calls
	built      atomic.Int64 // packager.Build calls
	replayed   atomic.Int64 // repositories whose outcome was replayed
}

// Check makes every check New makes, creating nothing and contacting
// nobody: git credentials (token file or variable set and not empty),
// signing keys (keyring readable, key found, passphrase right), each
// store's settings and secret files, and the lint helper
// (packager.FindLintHelper). The load-and-validate path of
// check-config, start-up and reload calls it, so what it passes New
// accepts.
func Check(cfg *config.Config) error {
	_, _, err := prepare(cfg)
	return err
}

// prepare resolves the git credentials and signers and checks the stores
// and the lint helper.
func prepare(cfg *config.Config) (gitsrc.Auth, map[string]*packager.Signer, error) {
	auth, err := gitAuth(cfg.Git)
	if err != nil {
		return auth, nil, err
	}
	signers := map[string]*packager.Signer{}
	for _, r := range cfg.Repositories {
		if r.SignKey != "" {
			passphrase, err := config.ReadSecret(r.PassphraseFile)
			if err != nil {
				return auth, nil, fmt.Errorf("repository %s: %w", r.Name, err)
			}
			if signers[r.Name], err = packager.NewSigner(r.KeyringFile, r.SignKey, []byte(passphrase)); err != nil {
				return auth, nil, fmt.Errorf("repository %s: %w", r.Name, err)
			}
		}
	}
	for name, sc := range cfg.Stores {
		if err := stores.Check(sc, lookupEnv); err != nil {
			return auth, nil, fmt.Errorf("store %s: %w", name, err)
		}
	}
	if _, err := packager.FindLintHelper(); err != nil {
		return auth, nil, err
	}
	return auth, signers, nil
}

// New makes the checks of Check first, then opens the configured stores
// (creating a local store's directory, contacting no remote one) and
// returns a Syncer. When a check fails nothing has been created. m may be
// nil.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, m *metrics.Metrics) (*Syncer, error) {
	auth, signers, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	s := &Syncer{cfg: cfg, stores: map[string]store.Store{}, auth: auth, log: log, metrics: m,
		digests: map[string]*publisher.DigestCache{}, memory: map[string]*publisher.Memory{},
		builds: map[string]*buildCache{}, signers: signers,
		decided: loadDecisions(filepath.Join(cfg.StateDir, "decisions.json"))}
	if s.linter, err = packager.NewLinter(filepath.Join(cfg.StateDir, "lint")); err != nil {
		return nil, err
	}
	for name, sc := range cfg.Stores {
		st, err := stores.Open(ctx, sc, lookupEnv)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", name, err)
		}
		if m != nil {
			st = m.InstrumentStore(sc.Type, st)
		}
		s.stores[name] = st
	}
	for _, r := range cfg.Repositories {
		s.digests[r.Name] = publisher.LoadDigestCache(filepath.Join(cfg.StateDir, "digests", r.Name+".bin"))
		s.memory[r.Name] = publisher.LoadMemory(filepath.Join(cfg.StateDir, "memory", r.Name+".bin"))
		s.builds[r.Name] = loadBuildCache(filepath.Join(cfg.StateDir, "builds", r.Name+".json"))
		if m != nil {
			m.InitRepository(r.Name)
		}
	}
	return s, nil
}

// Run runs one publishing cycle and records it in the metrics.
func (s *Syncer) Run(ctx context.Context) *Result { return s.cycle(ctx, true) }

// Plan works out what Run would do, packaging (and so checking) every new
// chart version, and writes nothing to any store.
func (s *Syncer) Plan(ctx context.Context) *Result { return s.cycle(ctx, false) }

func (s *Syncer) cycle(ctx context.Context, publish bool) *Result {
	start := time.Now()
	if s.metrics != nil && publish {
		s.metrics.CycleStarted(start)
	}
	res := &Result{}
	tree, err := s.fetch(ctx)
	if err != nil {
		res.Err = err
	} else {
		res.Commit, res.CommitTime = tree.Commit, tree.Time
		for _, r := range s.cfg.Repositories {
			s.repository(ctx, tree.FS, r, publish, res)
		}
	}
	if ctx.Err() != nil && res.Err == nil {
		// Cancelled or out of time: whatever the charts say, the cycle
		// did not finish its job.
		res.Err = fmt.Errorf("cycle: %w", context.Cause(ctx))
	}
	if err := s.decided.save(); err != nil {
		s.log.Warn("decisions not saved: the next cycle decides again", "err", err)
	}
	if publish {
		s.record(start, res)
	}
	return res
}

func (s *Syncer) fetch(ctx context.Context) (*gitsrc.Tree, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Git.Timeout.Duration)
	defer cancel()
	tree, err := gitsrc.Sync(ctx, gitsrc.Options{
		URL:    s.cfg.Git.URL,
		Branch: s.cfg.Git.Branch,
		Dir:    filepath.Join(s.cfg.StateDir, "git"),
		Auth:   s.auth,
	})
	if s.metrics != nil {
		s.metrics.GitFetchDuration.Observe(time.Since(start).Seconds())
		if err != nil {
			s.metrics.GitFetchFailures.Inc()
		} else {
			s.metrics.SetCommit(tree.Commit, tree.Time)
		}
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && context.Cause(ctx) == ctx.Err() {
			return nil, fmt.Errorf("git: timed out after %s (git.timeout): %w", s.cfg.Git.Timeout, err)
		}
		return nil, fmt.Errorf("git: %w", err)
	}
	s.log.Info("git checkout", "repo", s.cfg.Git.URL, "commit", tree.Commit)
	if tree.Commit != s.decided.Commit {
		// Problems reads every tree object: once per commit is enough.
		for _, p := range tree.Problems() {
			s.log.Warn("git tree entry left out", "commit", tree.Commit, "err", p)
		}
		s.decided.seen(tree.Commit)
	}
	return tree, nil
}

// repository processes one [[repository]]: read the index, then either
// replay the last good cycle's decisions (nothing new: see noop) or
// discover, decide and package; then publish and reconcile.
func (s *Syncer) repository(ctx context.Context, fsys fs.FS, r config.Repository, publish bool, res *Result) {
	rr := RepoResult{Name: r.Name}
	defer func() { res.Repos = append(res.Repos, rr) }()
	add := func(c ChartResult) {
		c.Repository = r.Name
		res.Charts = append(res.Charts, c)
	}

	st := s.stores[r.Store]
	storeErr := func(err error) error { return fmt.Errorf("store %s (%s): %w", r.Store, st, err) }
	pub := publisher.New(st, publisher.Config{Prefix: r.Prefix, BaseURL: r.BaseURL,
		Digests: s.digests[r.Name], Memory: s.memory[r.Name], IndexCache: filepath.Join(s.cfg.StateDir, "index", r.Name+".gob"), Format: r.IndexFormat,
		MaxIndexSize: int64(r.MaxIndexSize), MaxPackageSize: int64(r.MaxPackageSize)}, s.log)
	fp := fingerprint(s.cfg, r)
	if publish && s.replay(ctx, pub, r, fp, res.Commit, &rr, add) {
		return
	}
	idx, ver, err := pub.Index(ctx)
	if err != nil {
		// The charts that cannot be read are reported all the same.
		_, errs := packager.Discover(ctx, fsys, r.Charts)
		for _, e := range errs {
			add(ChartResult{Dir: e.Dir, Name: e.Name, Version: e.Version, Outcome: Failed, Reason: string(e.Reason), Err: e})
		}
		rr.Err = storeErr(err)
		if publish {
			s.decided.set(r.Name, nil)
		}
		return
	}
	rr.Entries = publisher.Entries(idx)
	if dec := s.decided.lookup(r.Name, fp, res.Commit, ver); publish && dec != nil {
		s.noop(ctx, fsys, r, dec, pub, idx, ver, &rr, add)
		if rr.Err != nil {
			rr.Err = storeErr(rr.Err)
		}
		return
	}

	// What this cycle decides, for the next cycles to replay (see noop).
	dec := &decision{Config: fp, Commit: res.Commit}
	fail := func(cr ChartResult) {
		add(cr)
		dec.Charts = append(dec.Charts, decided{Dir: cr.Dir, Name: cr.Name, Version: cr.Version, Reason: cr.Reason, Err: cr.Err.Error()})
	}

	s.work.discovered.Add(1)
	charts, errs := packager.Discover(ctx, fsys, r.Charts)
	for _, e := range errs {
		fail(ChartResult{Dir: e.Dir, Name: e.Name, Version: e.Version, Outcome: Failed, Reason: string(e.Reason), Err: e})
	}

	// Decide: group directories by (name, version), and (name, version)
	// pairs by package file name.
	type nv struct{ name, version string }
	dirs := map[nv][]packager.Chart{}
	files := map[string]map[nv]string{} // file name -> claimants -> a directory
	names := map[string]bool{}
	for _, c := range charts {
		k := nv{c.Metadata.Name, c.Metadata.Version}
		dirs[k] = append(dirs[k], c)
		names[k.name] = true
		f := publisher.Filename(k.name, k.version)
		if files[f] == nil {
			files[f] = map[nv]string{}
		}
		files[f][k] = c.Dir
	}
	rr.GitCharts, rr.GitVersions = len(names), len(dirs)
	var todo, check []packager.Chart // in Discover's order: by directory
	for _, c := range charts {
		k := nv{c.Metadata.Name, c.Metadata.Version}
		file := publisher.Filename(k.name, k.version)
		switch cs := dirs[k]; {
		case len(cs) > 1:
			rr.Conflicts++
			where := make([]string, len(cs))
			for i, c := range cs {
				where[i] = c.Dir
			}
			fail(ChartResult{Dir: c.Dir, Name: k.name, Version: k.version, Outcome: Failed, Reason: metrics.ReasonConflict,
				Err: fmt.Errorf("chart %q %s (%s): conflict: %d directories claim this name and version: %s",
					k.name, k.version, c.Dir, len(cs), strings.Join(where, ", "))})
		case len(files[file]) > 1:
			rr.Conflicts++
			var others []string
			for o, dir := range files[file] {
				if o != k {
					others = append(others, fmt.Sprintf("%q %s (%s)", o.name, o.version, dir))
				}
			}
			slices.Sort(others)
			fail(ChartResult{Dir: c.Dir, Name: k.name, Version: k.version, Outcome: Failed, Reason: metrics.ReasonConflict,
				Err: fmt.Errorf("chart %q %s (%s): conflict: its package file name %s is also that of %s",
					k.name, k.version, c.Dir, file, strings.Join(others, ", "))})
		case publisher.Lookup(idx, k.name, k.version) != nil:
			check = append(check, c)
		default:
			todo = append(todo, c)
		}
	}
	dec.GitCharts, dec.GitVersions, dec.Conflicts = rr.GitCharts, rr.GitVersions, rr.Conflicts

	built := s.build(ctx, fsys, todo, r, false)
	var pkgs []publisher.Package
	var pending []ChartResult
	for i, c := range todo {
		cr := ChartResult{Dir: c.Dir, Name: c.Metadata.Name, Version: c.Metadata.Version, Outcome: Pending}
		if err := built[i].err; err != nil {
			cr.Outcome, cr.Reason, cr.Err = Failed, metrics.ReasonPackage, err
			var pe *packager.Error
			if errors.As(err, &pe) {
				cr.Reason = string(pe.Reason)
			}
			fail(cr)
			continue
		}
		cr.Warnings = built[i].pkg.Warnings
		pkg := built[i].pkg
		// Once published, this version is checked against the index every
		// cycle: its digest for this content is known now.
		s.builds[r.Name].put(buildKey(res.Commit, c.Dir, contentKey(fsys, c.Dir)),
			builtEntry{Name: pkg.Metadata.Name, Version: pkg.Metadata.Version, Digest: pkg.Digest})
		pkgs = append(pkgs, publisher.Package{Metadata: pkg.Metadata, Data: pkg.Data, Digest: pkg.Digest, Provenance: pkg.Provenance})
		pending = append(pending, cr)
		dec.Charts = append(dec.Charts, decided{Dir: c.Dir, Name: c.Metadata.Name, Version: c.Metadata.Version, Digest: pkg.Digest})
	}
	var indexed []ChartResult
	for _, c := range check {
		indexed = append(indexed, ChartResult{Dir: c.Dir, Name: c.Metadata.Name, Version: c.Metadata.Version, Outcome: Skipped})
	}
	checked, sums := s.published(ctx, fsys, check, r, res.Commit)
	pkgs = append(pkgs, checked...)
	for _, c := range check {
		dec.Charts = append(dec.Charts, decided{Dir: c.Dir, Name: c.Metadata.Name, Version: c.Metadata.Version, Digest: sums[c.Dir]})
	}
	if !publish {
		rr.Drifted = drifted(idx, checked, indexed, nil)
		for _, cr := range append(pending, indexed...) {
			add(cr)
		}
		return
	}

	rep, err := s.publishOn(ctx, pub, idx, ver, pkgs, indexed, pending, r, res.Commit, &rr, add)
	if err != nil {
		rr.Err = storeErr(err)
	}
	if err := s.builds[r.Name].save(); err != nil {
		s.log.Warn("save build cache", "repository", r.Name, "err", err)
	}
	// A good cycle: the repository was processed, every new version was
	// published and every published one was built to compare. Anything
	// else is decided again by the next cycle.
	good := rr.Err == nil && ctx.Err() == nil && rep.Version != "" && len(sums) == len(check)
	for _, cr := range pending {
		f := publisher.Filename(cr.Name, cr.Version)
		good = good && rep.Failed[f] == nil && (slices.Contains(rep.Published, f) || slices.Contains(rep.Adopted, f))
	}
	if !good {
		s.decided.set(r.Name, nil)
		return
	}
	dec.Index = rep.Version
	s.decided.set(r.Name, dec)
}

// noop replays dec, the decisions of the last good cycle at the same commit
// on the same index version: nothing in git or in the index changed since,
// so nothing is discovered or packaged. Charts that failed fail again with
// the same reason; indexed versions are compared with the index by their
// remembered digests (built again only if the publisher needs the bytes),
// and the store's listing is reconciled with the index as in every cycle.
// It costs the index read already made, one listing, and reads of stored
// packages only where the listing shows a change. When it changes nothing,
// it records what it reported for the next cycles to replay (see replay).
func (s *Syncer) noop(ctx context.Context, fsys fs.FS, r config.Repository, dec *decision, pub *publisher.Publisher,
	idx *publisher.Index, ver string, rr *RepoResult, reportChart func(ChartResult)) {
	rr.GitCharts, rr.GitVersions, rr.Conflicts = dec.GitCharts, dec.GitVersions, dec.Conflicts
	var charts []ChartResult // what this cycle reports, for replay
	add := func(cr ChartResult) {
		charts = append(charts, cr)
		reportChart(cr)
	}
	var pkgs []publisher.Package
	var indexed []ChartResult
	for _, d := range dec.Charts {
		if d.Reason != "" {
			add(ChartResult{Dir: d.Dir, Name: d.Name, Version: d.Version, Outcome: Failed, Reason: d.Reason, Err: errors.New(d.Err)})
			continue
		}
		indexed = append(indexed, ChartResult{Dir: d.Dir, Name: d.Name, Version: d.Version, Outcome: Skipped})
		c := packager.Chart{Dir: d.Dir, Metadata: &chart.Metadata{Name: d.Name, Version: d.Version}}
		load := func(ctx context.Context) ([]byte, error) {
			b := s.build(ctx, fsys, []packager.Chart{c}, r, true)[0]
			if b.err != nil {
				return nil, b.err
			}
			return b.pkg.Data, nil
		}
		pkgs = append(pkgs, publisher.Package{Metadata: c.Metadata, Digest: d.Digest, Load: load})
	}
	rep, err := s.publishOn(ctx, pub, idx, ver, pkgs, indexed, nil, r, dec.Commit, rr, add)
	if err != nil || ctx.Err() != nil || rep.Version == "" {
		rr.Err = err
		s.decided.set(r.Name, nil)
		return
	}
	next := *dec
	next.Index, next.Listing, next.Outcome = rep.Version, "", nil
	if !rep.Wrote && len(rep.Repaired)+len(rep.Adopted)+len(rep.Restored) == 0 {
		// Nothing changed: the next cycle that finds the same listing
		// reports the same.
		next.Listing = rep.Listing
		next.Outcome = &outcome{Entries: rr.Entries, Missing: rr.Missing, Modified: rr.Modified, Edited: rr.Edited, Drifted: rr.Drifted}
		for _, cr := range charts {
			d := decided{Dir: cr.Dir, Name: cr.Name, Version: cr.Version, Reason: cr.Reason}
			if cr.Err != nil {
				d.Err = cr.Err.Error()
			}
			next.Outcome.Charts = append(next.Outcome.Charts, d)
		}
	}
	s.decided.set(r.Name, &next)
}

// replay reports the outcome of the last cycle of repository r that
// changed nothing, if the commit, the index version and the package
// listing are the same now (one listing of the store tells): the index,
// the caches and the packages are not read. It reports whether it did.
func (s *Syncer) replay(ctx context.Context, pub *publisher.Publisher, r config.Repository, fp, commit string,
	rr *RepoResult, add func(ChartResult)) bool {
	dec := s.decided.Repos[r.Name]
	if dec == nil || dec.Outcome == nil {
		return false
	}
	ver, listing, err := pub.Survey(ctx)
	if err != nil || listing != dec.Listing || s.decided.lookup(r.Name, fp, commit, ver) == nil {
		return false // Index lists again and reports the error
	}
	s.work.replayed.Add(1)
	o := dec.Outcome
	rr.GitCharts, rr.GitVersions, rr.Conflicts = dec.GitCharts, dec.GitVersions, dec.Conflicts
	rr.Entries, rr.Missing, rr.Modified, rr.Edited, rr.Drifted = o.Entries, o.Missing, o.Modified, o.Edited, o.Drifted
	if s.metrics != nil {
		s.metrics.DriftedCharts.WithLabelValues(r.Name).Set(float64(len(o.Drifted)))
	}
	for _, d := range o.Charts {
		cr := ChartResult{Dir: d.Dir, Name: d.Name, Version: d.Version, Outcome: Skipped}
		if d.Reason != "" {
			cr.Outcome, cr.Reason, cr.Err = Failed, d.Reason, errors.New(d.Err)
		}
		add(cr)
	}
	return true
}

// publishOn publishes pkgs on idx at version ver and reports the outcome
// of the indexed and pending charts, the repository's state and the drift
// of the indexed charts at commit in rr.
func (s *Syncer) publishOn(ctx context.Context, pub *publisher.Publisher, idx *publisher.Index, ver string, pkgs []publisher.Package,
	indexed, pending []ChartResult, r config.Repository, commit string, rr *RepoResult, add func(ChartResult)) (*publisher.Report, error) {
	drift := drifted(idx, pkgs, indexed, nil) // before PublishOn adds to idx
	rep, err := pub.PublishOn(ctx, idx, ver, pkgs)
	rr.Entries = rep.Entries
	rr.Repaired, rr.Adopted, rr.Restored = rep.Repaired, rep.Adopted, rep.Restored
	rr.Missing, rr.Modified, rr.Edited = rep.Missing, rep.Modified, rep.Edited
	rr.Drifted = s.drift(r.Name, commit, drift, rep.Failed)
	for _, crs := range [][]ChartResult{indexed, pending} {
		for _, cr := range crs {
			add(settle(cr, rep, err, r.Store, "a later cycle indexes it"))
		}
	}
	return rep, err
}

// settle sets the outcome of cr, a chart that PublishOn published
// (Pending) or compared with the index (any other outcome), from its report
// rep and its error err on store. later says when a package stored but not
// listed yet will be indexed.
func settle(cr ChartResult, rep *publisher.Report, err error, store, later string) ChartResult {
	file := publisher.Filename(cr.Name, cr.Version)
	cerr := rep.Failed[file]
	if cr.Outcome == Pending {
		switch {
		case cerr == nil && slices.Contains(rep.Published, file):
			cr.Outcome = Published
		case cerr == nil && slices.Contains(rep.Adopted, file):
			cr.Outcome = Adopted
		case cerr == nil && err != nil:
			cerr = fmt.Errorf("not published: store %s failed (see the repository's error)", store)
		case cerr == nil:
			cerr = errors.New("stored, but not in the store's listing yet: " + later)
		}
	}
	if cerr != nil && cr.Outcome != Failed {
		cr.Outcome, cr.Reason = Failed, failReason(cerr)
		cr.Err = fmt.Errorf("chart %q %s (%s): %w", cr.Name, cr.Version, cr.Dir, cerr)
	}
	return cr
}

// failReason classifies a publisher's per-chart error.
func failReason(err error) string {
	switch {
	case errors.Is(err, publisher.ErrContentDiffers):
		return metrics.ReasonContentDiffers
	case errors.Is(err, publisher.ErrNameClaimed):
		return metrics.ReasonConflict
	}
	return metrics.ReasonStore
}

// published returns this site's builds of chart versions that are already
// indexed, for the publisher to compare with the index, and their digests
// by directory: the digest from the build cache when the chart's content
// was built before (with a way to build the bytes should the publisher
// need them), else built now, in parallel. A chart that no longer builds
// is logged and left out: it is published already, and there is nothing to
// compare.
func (s *Syncer) published(ctx context.Context, fsys fs.FS, charts []packager.Chart, r config.Repository, commit string) ([]publisher.Package, map[string]string) {
	cache := s.builds[r.Name]
	var out []publisher.Package
	sums := map[string]string{}
	var fresh []packager.Chart
	var freshKeys []string
	for _, c := range charts {
		md := c.Metadata
		key := buildKey(commit, c.Dir, contentKey(fsys, c.Dir))
		sum, ok := cache.lookup(key, md.Name, md.Version)
		if !ok {
			fresh = append(fresh, c)
			freshKeys = append(freshKeys, key)
			continue
		}
		load := func(ctx context.Context) ([]byte, error) {
			b := s.build(ctx, fsys, []packager.Chart{c}, r, true)[0]
			if b.err != nil {
				return nil, b.err
			}
			return b.pkg.Data, nil
		}
		sums[c.Dir] = sum
		out = append(out, publisher.Package{Metadata: md, Digest: sum, Load: load})
	}
	for i, b := range s.build(ctx, fsys, fresh, r, true) {
		c := fresh[i]
		if b.err != nil {
			if ctx.Err() == nil {
				s.log.Warn("published chart version no longer builds: cannot compare it with the published package",
					"repository", r.Name, "chart", c.Metadata.Name, "version", c.Metadata.Version, "dir", c.Dir, "err", b.err)
			}
			continue
		}
		cache.put(freshKeys[i], builtEntry{Name: c.Metadata.Name, Version: c.Metadata.Version, Digest: b.pkg.Digest})
		sums[c.Dir] = b.pkg.Digest
		out = append(out, publisher.Package{Metadata: b.pkg.Metadata, Data: b.pkg.Data, Digest: b.pkg.Digest})
	}
	return out, sums
}

// build packages charts in parallel, one worker per core. out[i] is the
// result for charts[i].
//
// With compare set the builds are of published versions, only to compare
// digests: nothing is linted or signed (neither changes the package bytes).
func (s *Syncer) build(ctx context.Context, fsys fs.FS, charts []packager.Chart, r config.Repository, compare bool) []built {
	opts := packager.Options{Lint: packager.LintStrict, Signer: s.signers[r.Name], Linter: s.linter}
	if r.Lint == "warn" {
		opts.Lint = packager.LintWarn
	}
	if compare {
		opts.Signer, opts.Lint = nil, packager.LintSkip
	}
	out := make([]built, len(charts))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, c := range charts {
		g.Go(func() error {
			s.work.built.Add(1)
			out[i].pkg, out[i].err = packager.Build(ctx, fsys, c, opts)
			return nil
		})
	}
	g.Wait()
	return out
}

type built struct {
	pkg *packager.Package
	err error
}
