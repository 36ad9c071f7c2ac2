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
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/chartsync/chartsync/internal/config"
	"github.com/chartsync/chartsync/internal/gitsrc"
	"github.com/chartsync/chartsync/internal/metrics"
	"github.com/chartsync/chartsync/internal/packager"
	"github.com/chartsync/chartsync/internal/publisher"
	"github.com/chartsync/chartsync/internal/publisher/store"
)

// Outcome is what happened to one chart version in a cycle.
type Outcome string

const (
	Published Outcome = "published" // stored and indexed by this cycle
	Pending   Outcome = "pending"   // plan only: would be published
	Skipped   Outcome = "skipped"   // already in the index
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
	Entries     int // chart versions in the index
	GitCharts   int // distinct chart names found in git
	GitVersions int // distinct (name, version) pairs found in git
	Conflicts   int // directories in a (name, version) conflict
	Repaired    []string
	Missing     []string
	Modified    []string
	Err         error // the repository could not be processed at all
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
		if len(rr.Modified) > 0 {
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
	signers map[string]*packager.Signer // by repository; absent: unsigned
}

// New opens the configured stores (without touching them) and returns a
// Syncer. m may be nil.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, m *metrics.Metrics) (*Syncer, error) {
	auth, err := gitAuth(cfg.Git)
	if err != nil {
		return nil, err
	}
	s := &Syncer{cfg: cfg, stores: map[string]store.Store{}, auth: auth, log: log, metrics: m,
		digests: map[string]*publisher.DigestCache{}, signers: map[string]*packager.Signer{}}
	for name, sc := range cfg.Stores {
		st, err := openStore(ctx, sc)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", name, err)
		}
		if m != nil {
			st = m.InstrumentStore(sc.Type, st)
		}
		s.stores[name] = st
	}
	for _, r := range cfg.Repositories {
		if r.SignKey != "" {
			passphrase, err := config.ReadSecret(r.PassphraseFile)
			if err != nil {
				return nil, fmt.Errorf("repository %s: %w", r.Name, err)
			}
			if s.signers[r.Name], err = packager.NewSigner(r.KeyringFile, r.SignKey, []byte(passphrase)); err != nil {
				return nil, fmt.Errorf("repository %s: %w", r.Name, err)
			}
		}
		s.digests[r.Name] = publisher.LoadDigestCache(filepath.Join(cfg.StateDir, "digests", r.Name+".json"))
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
	var root string
	if err == nil {
		res.Commit, res.CommitTime = tree.Commit, tree.Time
		root, err = writeTree(tree.FS, filepath.Join(s.cfg.StateDir, "tree"))
	}
	if err != nil {
		res.Err = err
	} else {
		for _, r := range s.cfg.Repositories {
			s.repository(ctx, root, r, publish, res)
		}
	}
	if publish {
		s.record(start, res)
	}
	return res
}

func (s *Syncer) fetch(ctx context.Context) (*gitsrc.Tree, error) {
	start := time.Now()
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
		return nil, fmt.Errorf("git: %w", err)
	}
	s.log.Info("git checkout", "repo", s.cfg.Git.URL, "commit", tree.Commit)
	for _, p := range tree.Problems() {
		s.log.Warn("git tree entry left out", "commit", tree.Commit, "err", p)
	}
	return tree, nil
}

// writeTree writes the commit's files to dir (replacing what is there) for
// the packager, which reads charts from a directory, and returns dir.
func writeTree(fsys fs.FS, dir string) (string, error) {
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("git: clear %s: %w", dir, err)
	}
	if err := os.CopyFS(dir, fsys); err != nil {
		return "", fmt.Errorf("git: write tree to %s: %w", dir, err)
	}
	return dir, nil
}

// repository processes one [[repository]]: discover, decide, package,
// publish.
func (s *Syncer) repository(ctx context.Context, root string, r config.Repository, publish bool, res *Result) {
	rr := RepoResult{Name: r.Name}
	defer func() { res.Repos = append(res.Repos, rr) }()
	add := func(c ChartResult) {
		c.Repository = r.Name
		res.Charts = append(res.Charts, c)
	}

	charts, errs := packager.Discover(root, r.Charts)
	for _, e := range errs {
		add(ChartResult{Dir: e.Dir, Name: e.Name, Version: e.Version, Outcome: Failed, Reason: string(e.Reason), Err: e})
	}
	st := s.stores[r.Store]
	storeErr := func(err error) error { return fmt.Errorf("store %s (%s): %w", r.Store, st, err) }
	pub := publisher.New(st, publisher.Config{Prefix: r.Prefix, BaseURL: r.BaseURL, Digests: s.digests[r.Name]}, s.log)
	idx, _, err := pub.Index(ctx)
	if err != nil {
		rr.Err = storeErr(err)
		return
	}
	rr.Entries = publisher.Entries(idx)

	// Decide: group directories by (name, version).
	type nv struct{ name, version string }
	dirs := map[nv][]packager.Chart{}
	names := map[string]bool{}
	for _, c := range charts {
		k := nv{c.Metadata.Name, c.Metadata.Version}
		dirs[k] = append(dirs[k], c)
		names[k.name] = true
	}
	rr.GitCharts, rr.GitVersions = len(names), len(dirs)
	var todo []packager.Chart // in Discover's order: by directory
	for _, c := range charts {
		k := nv{c.Metadata.Name, c.Metadata.Version}
		switch cs := dirs[k]; {
		case len(cs) > 1:
			rr.Conflicts++
			where := make([]string, len(cs))
			for i, c := range cs {
				where[i] = c.Dir
			}
			add(ChartResult{Dir: c.Dir, Name: k.name, Version: k.version, Outcome: Failed, Reason: metrics.ReasonConflict,
				Err: fmt.Errorf("chart %q %s (%s): conflict: %d directories claim this name and version: %s",
					k.name, k.version, c.Dir, len(cs), strings.Join(where, ", "))})
		case publisher.Lookup(idx, k.name, k.version) != nil:
			add(ChartResult{Dir: c.Dir, Name: k.name, Version: k.version, Outcome: Skipped})
		default:
			todo = append(todo, c)
		}
	}

	built := s.build(ctx, root, todo, r)
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
			add(cr)
			continue
		}
		cr.Warnings = built[i].pkg.Warnings
		pkg := built[i].pkg
		pkgs = append(pkgs, publisher.Package{Metadata: pkg.Metadata, Data: pkg.Data, Provenance: pkg.Provenance})
		pending = append(pending, cr)
	}
	if !publish {
		for _, cr := range pending {
			add(cr)
		}
		return
	}

	rep, err := pub.Publish(ctx, pkgs)
	if err != nil {
		rr.Err = storeErr(err)
	}
	rr.Entries = rep.Entries
	rr.Repaired, rr.Missing, rr.Modified = rep.Repaired, rep.Missing, rep.Modified
	for _, cr := range pending {
		file := publisher.Filename(cr.Name, cr.Version)
		cerr := rep.Failed[file]
		switch {
		case cerr == nil && slices.Contains(rep.Published, file):
			cr.Outcome = Published
		case cerr == nil && err != nil:
			cerr = fmt.Errorf("not published: store %s failed (see the repository's error)", r.Store)
		case cerr == nil:
			cerr = errors.New("not in the index after publishing")
		}
		if cerr != nil {
			cr.Outcome, cr.Reason = Failed, metrics.ReasonStore
			cr.Err = fmt.Errorf("chart %q %s (%s): %w", cr.Name, cr.Version, cr.Dir, cerr)
		}
		add(cr)
	}
}

// build packages charts in parallel, one worker per core. out[i] is the
// result for charts[i].
func (s *Syncer) build(ctx context.Context, root string, charts []packager.Chart, r config.Repository) []built {
	opts := packager.Options{Lint: packager.LintStrict, Signer: s.signers[r.Name]}
	if r.Lint == "warn" {
		opts.Lint = packager.LintWarn
	}
	out := make([]built, len(charts))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, c := range charts {
		g.Go(func() error {
			out[i].pkg, out[i].err = packager.Build(ctx, root, c, opts)
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

// Handler serves every repository read-only, each under /<name>/, from its
// store: what `chartsync serve` serves. GET / lists the repositories.
func (s *Syncer) Handler() http.Handler {
	mux := http.NewServeMux()
	var names []string
	for _, r := range s.cfg.Repositories {
		pub := publisher.New(s.stores[r.Store], publisher.Config{Prefix: r.Prefix}, s.log)
		mux.Handle("/"+r.Name+"/", http.StripPrefix("/"+r.Name, pub.Handler()))
		names = append(names, r.Name)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		for _, n := range names {
			fmt.Fprintf(w, "%s/\n", n)
		}
	})
	return mux
}
