// Package check compares the charts of two commits of a repository for
// pre-merge CI (`chartsync check`): a chart changed without a version bump,
// two directories with one (name, version), a version that went down, and a
// chart that would fail to publish. It reads git objects only (no checkout,
// no store, no network) and builds packages with the packager, so "changed"
// means "the package chartsync would publish changed".
package check

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"runtime"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"golang.org/x/sync/errgroup"

	"github.com/chartsync/chartsync/internal/packager"
)

// Kind is the kind of a finding.
type Kind string

// Kinds of findings.
const (
	// Unbumped: the package built at head differs from the one built at
	// base and the version is the same. An error.
	Unbumped Kind = "unbumped"
	// Collision: another directory at head has the same (name, version),
	// or another chart the same package file name. An error.
	Collision Kind = "collision"
	// Downgrade: the version at head is lower than at base (semver order).
	// A warning.
	Downgrade Kind = "downgrade"
	// Broken: the chart would fail to package or lint at head, for the
	// same reason as `chartsync run`. An error.
	Broken Kind = "broken"
)

// Error reports whether a finding of this kind fails the check.
func (k Kind) Error() bool { return k != Downgrade }

// Finding is one problem of one chart at head.
type Finding struct {
	Kind       Kind   `json:"kind"`
	Severity   string `json:"severity"` // "error" or "warning"
	Repository string `json:"repository,omitempty"`
	Name       string `json:"name,omitempty"`
	Version    string `json:"version,omitempty"`
	Dir        string `json:"dir"` // the chart's directory at head
	// BaseDir and BaseVersion are the chart's directory and version at base
	// (unbumped, downgrade); BaseDir differs from Dir after a rename.
	BaseDir     string `json:"base_dir,omitempty"`
	BaseVersion string `json:"base_version,omitempty"`
	// Files are the package's files (as named in the package, without the
	// chart's top directory) whose content changed, was added or removed
	// (unbumped).
	Files []string `json:"files,omitempty"`
	// Others are the other directories at head with the same (name,
	// version) (collision).
	Others []string `json:"others,omitempty"`
	// Reason and Message say why the chart is broken (packager.Reason and
	// the same message `run` gives).
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message"`
}

// String is the one line shown to people, e.g.
// `error: unbumped: chart "foo" 1.0.0 (charts/foo): package changed without a version bump: templates/a.yaml`.
func (f Finding) String() string {
	repo := ""
	if f.Repository != "" {
		repo = "repository " + f.Repository + ": "
	}
	if f.Kind == Broken { // the packager's message names the chart
		return fmt.Sprintf("%s: %s: %s%s", f.Severity, f.Kind, repo, f.Message)
	}
	where := fmt.Sprintf("chart %q %s (%s)", f.Name, f.Version, f.Dir)
	if f.Name == "" {
		where = "chart in " + f.Dir
	}
	return fmt.Sprintf("%s: %s: %s%s: %s", f.Severity, f.Kind, repo, where, f.Message)
}

// Options say what to compare.
type Options struct {
	// Repository names the configured repository the globs belong to, for
	// the findings; empty with --charts.
	Repository string
	// Globs select the top-level chart directories, as in the config.
	Globs []string
	// Lint is the lint mode `run` uses for these charts (LintStrict or
	// LintWarn).
	Lint packager.LintMode
	// Linter lints as run does; nil uses packager's default (see
	// packager.Options).
	Linter *packager.Linter
	// Unchanged, if set, reports that a chart directory's files are the
	// same at base and head and nothing in it points outside
	// (Checkout.Unchanged): such a chart, unless it has a file://
	// dependency, is not built at all. Nil builds every chart.
	Unchanged func(dir string) bool
}

// Compare compares the charts of base and head (each the files of one
// commit) and returns the findings, sorted by head directory and kind.
// Only charts that differ between base and head are reported: a chart is
// matched with base by directory, or, when its directory is new (a
// rename), by chart name; it differs when its package (built without
// lint) differs, it is new, or it fails differently. Every chart is built
// twice at most (once per side, without lint) and linted only when it
// differs. The error is for a failure to compare at all (ctx done).
func Compare(ctx context.Context, log *slog.Logger, base, head fs.FS, opts Options) ([]Finding, error) {
	b, err := scan(ctx, base, opts.Globs, opts.Unchanged)
	if err != nil {
		return nil, err
	}
	h, err := scan(ctx, head, opts.Globs, opts.Unchanged)
	if err != nil {
		return nil, err
	}
	log.Debug("built charts", "base", b.built, "head", h.built)
	var out []Finding
	add := func(f Finding) {
		f.Repository = opts.Repository
		f.Severity = "warning"
		if f.Kind.Error() {
			f.Severity = "error"
		}
		out = append(out, f)
	}
	// Charts whose Chart.yaml cannot be read at head.
	for dir, e := range h.failed {
		if be, ok := b.failed[dir]; ok && be.Error() == e.Error() {
			continue
		}
		add(brokenFinding(dir, e))
	}
	// Directories by package file name: the same (name, version), or
	// another pair with the same file name (name "a-1.0.0" version
	// "1.0.0" and name "a" version "1.0.0-1.0.0"), as run counts conflicts.
	byFile := map[string][]string{}
	for _, c := range h.charts {
		f := packager.Filename(c.chart.Metadata.Name, c.chart.Metadata.Version)
		byFile[f] = append(byFile[f], c.chart.Dir)
	}
	for _, hc := range h.charts {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("check charts: %w", err)
		}
		bc := b.match(hc, h)
		if bc != nil && bc.chart.Dir == hc.chart.Dir && bc.same(hc) {
			continue // unchanged
		}
		if bc != nil && bc.same(hc) && bc.err == nil {
			continue // renamed, same package
		}
		name, version, dir := hc.chart.Metadata.Name, hc.chart.Metadata.Version, hc.chart.Dir
		log.Debug("chart differs", "chart", name, "version", version, "dir", dir)
		// broken: at head, with lint as run does.
		if hc.err == nil {
			_, hc.err = packager.Build(ctx, head, hc.chart, packager.Options{Lint: opts.Lint, Linter: opts.Linter})
			if errors.Is(hc.err, context.Canceled) || errors.Is(hc.err, context.DeadlineExceeded) {
				return nil, fmt.Errorf("check chart %s: %w", dir, hc.err)
			}
		}
		broken := hc.err != nil
		if broken {
			add(brokenFinding(dir, hc.err))
		}
		file := packager.Filename(name, version)
		if others := without(byFile[file], dir); len(others) > 0 {
			add(Finding{Kind: Collision, Name: name, Version: version, Dir: dir, Others: others,
				Message: fmt.Sprintf("other directories have the same package file %s (name and version): %s", file, strings.Join(others, ", "))})
		}
		if bc == nil || broken {
			continue // a broken chart is not published: its version does not matter yet
		}
		bv, hv := bc.chart.Metadata.Version, version
		f := Finding{Name: name, Version: version, Dir: dir, BaseDir: bc.chart.Dir, BaseVersion: bv}
		switch {
		case bv == hv && hc.digest != "" && bc.digest != "":
			files, err := changedFiles(bc.data, hc.data)
			if err != nil {
				return nil, fmt.Errorf("compare packages of %s: %w", dir, err)
			}
			f.Kind, f.Files = Unbumped, files
			f.Message = "package changed without a version bump: " + strings.Join(files, ", ")
			if bc.chart.Dir != dir {
				f.Message += " (was " + bc.chart.Dir + ")"
			}
			add(f)
		case lower(hv, bv):
			f.Kind = Downgrade
			f.Message = fmt.Sprintf("version %s is lower than %s at base", hv, bv)
			if bc.chart.Dir != dir {
				f.Message += " (" + bc.chart.Dir + ")"
			}
			add(f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Dir != out[j].Dir {
			return out[i].Dir < out[j].Dir
		}
		return out[i].Kind < out[j].Kind
	})
	return out, nil
}

func brokenFinding(dir string, err error) Finding {
	f := Finding{Kind: Broken, Dir: dir, Reason: string(packager.ReasonPackage), Message: err.Error()}
	var pe *packager.Error
	if errors.As(err, &pe) {
		f.Name, f.Version, f.Reason = pe.Name, pe.Version, string(pe.Reason)
	}
	return f
}

func without(dirs []string, dir string) []string {
	var out []string
	for _, d := range dirs {
		if d != dir {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

// lower reports whether version a is lower than b; false if either is not
// semver (Discover refuses such versions anyway).
func lower(a, b string) bool {
	va, err1 := semver.StrictNewVersion(a)
	vb, err2 := semver.StrictNewVersion(b)
	return err1 == nil && err2 == nil && va.LessThan(vb)
}

// built is one chart of one side, built without lint.
type built struct {
	chart  packager.Chart
	data   []byte
	digest string
	err    error // the build failed
	// skipped: not built, the chart is the same at base and head.
	skipped bool
}

// same reports whether two builds give the same result: the same bytes, or
// the same failure, or both were skipped as unchanged.
func (c *built) same(o *built) bool {
	if c.skipped || o.skipped {
		return c.skipped && o.skipped
	}
	if c.err != nil || o.err != nil {
		return c.err != nil && o.err != nil && c.err.Error() == o.err.Error()
	}
	return c.digest == o.digest
}

// side is every chart of one commit.
type side struct {
	charts []*built
	byDir  map[string]*built
	byName map[string][]*built
	failed map[string]error // Discover's errors by directory
	built  int              // charts built
}

// scan discovers the charts of one side and builds them without lint,
// except those unchanged reports (see Options.Unchanged).
func scan(ctx context.Context, fsys fs.FS, globs []string, unchanged func(string) bool) (*side, error) {
	charts, errs := packager.Discover(ctx, fsys, globs)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("discover charts: %w", err)
	}
	s := &side{byDir: map[string]*built{}, byName: map[string][]*built{}, failed: map[string]error{}}
	for _, e := range errs {
		s.failed[e.Dir] = e
	}
	s.charts = make([]*built, len(charts))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, c := range charts {
		b := &built{chart: c}
		s.charts[i] = b
		s.byDir[c.Dir] = b
		s.byName[c.Metadata.Name] = append(s.byName[c.Metadata.Name], b)
		if unchanged != nil && !fileDeps(c) && unchanged(c.Dir) {
			b.skipped = true
			continue
		}
		s.built++
		g.Go(func() error {
			pkg, err := packager.Build(ctx, fsys, c, packager.Options{Lint: packager.LintSkip})
			if err != nil {
				b.err = err
				return nil
			}
			b.data, b.digest = pkg.Data, pkg.Digest
			return nil
		})
	}
	g.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("build charts: %w", err)
	}
	return s, nil
}

// match returns the chart of this side that hc (of side other) is: the
// chart with the same name in the same directory; else, the directory
// having been renamed, a chart with the same name whose directory other
// no longer has (with the same version if there is one, else the first).
// Nil if the chart is new.
func (s *side) match(hc *built, other *side) *built {
	name := hc.chart.Metadata.Name
	if c := s.byDir[hc.chart.Dir]; c != nil && c.chart.Metadata.Name == name {
		return c
	}
	var cands []*built
	for _, c := range s.byName[name] {
		if o := other.byDir[c.chart.Dir]; o == nil || o.chart.Metadata.Name != name {
			cands = append(cands, c)
		}
	}
	for _, c := range cands {
		if c.chart.Metadata.Version == hc.chart.Metadata.Version {
			return c
		}
	}
	if len(cands) > 0 {
		return cands[0]
	}
	return nil
}

// changedFiles lists the files of two packages whose content or mode
// differs, or that only one has, by their name in the package without the
// chart's top directory.
func changedFiles(a, b []byte) ([]string, error) {
	fa, err := packageFiles(a)
	if err != nil {
		return nil, err
	}
	fb, err := packageFiles(b)
	if err != nil {
		return nil, err
	}
	var out []string
	for name, sum := range fa {
		if fb[name] != sum {
			out = append(out, name)
		}
	}
	for name := range fb {
		if _, ok := fa[name]; !ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		// Same files, same contents: only the archive's metadata differs.
		out = []string{"(archive headers)"}
	}
	return out, nil
}

// packageFiles maps each file of a package to the hash of its mode and
// content.
func packageFiles(data []byte) (map[string][32]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("read package: %w", err)
	}
	tr := tar.NewReader(zr)
	out := map[string][32]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read package: %w", err)
		}
		hash := sha256.New()
		fmt.Fprintf(hash, "%o %c\x00", h.Mode, h.Typeflag)
		if _, err := io.Copy(hash, tr); err != nil {
			return nil, fmt.Errorf("read package: %w", err)
		}
		name := h.Name
		if _, rest, ok := strings.Cut(name, "/"); ok {
			name = rest
		}
		var sum [32]byte
		copy(sum[:], hash.Sum(nil))
		out[path.Clean(name)] = sum
	}
}

// fileDeps reports whether c declares a file:// dependency, which the
// packager reads from outside the chart directory.
func fileDeps(c packager.Chart) bool {
	for _, d := range c.Metadata.Dependencies {
		if d != nil && strings.HasPrefix(d.Repository, "file://") {
			return true
		}
	}
	return false
}
