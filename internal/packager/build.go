package packager

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
)

// Build loads, checks and packages the chart c found in fsys, the commit's
// tree and symlink boundary. In order it:
//
//   - re-reads and validates Chart.yaml as Discover does;
//   - measures the chart directory (and each file:// dependency) against
//     opts.Limits, following symlinks, and checks every symlink in it
//     resolves inside the tree, not into .git (ReasonSymlink names the link
//     and its target); a symlinked directory leading back into one being
//     read is a loop (ReasonSymlink);
//   - reads the chart's files as helm's loader.LoadDir does (honouring
//     .helmignore) and loads them with loader.LoadFiles; a Git LFS pointer
//     file fails the chart (ReasonPackage) unless opts.LFSWarn;
//   - satisfies every dependency declared in Chart.yaml (or requirements.yaml)
//     offline: vendored under charts/ as a directory or .tgz, or a
//     "file://<path>" repository inside the tree, which is loaded, checked
//     against the version constraint and attached (ReasonDependency names
//     what is missing);
//   - refuses a values.schema.json, of the chart or any subchart, that
//     refers to anything outside itself (ReasonLint), since helm would fetch
//     it over the network or read it from the local disk;
//   - writes the reproducible .tgz and runs helm's linter on exactly those
//     bytes (ReasonLint, unless opts.Lint is LintWarn), in opts.Linter;
//     with LintSkip neither the schema check nor lint runs;
//   - signs the .tgz if opts.Signer is set.
//
// A vendored dependency wins over a file:// one of the same name, and is
// taken as it is (its version is not checked against the constraint, as
// helm does not). The package's bytes depend only on the chart's content as
// helm's loader reads it: not on file times, modes, owners, where the tree
// lives, the clock or the machine (for one build of chartsync: gzip output
// may change between Go releases). Package.Warnings holds helm's
// warning-severity lint messages, in LintWarn mode its error-severity ones
// too, and any LFS pointer packaged under opts.LFSWarn. Build does no
// network I/O.
//
// Every chart failure is an *Error. ctx is checked for every directory read
// and between steps, and cancels the linter. If ctx is done Build returns
// ctx.Err() itself, not an *Error: a cancelled build says nothing about the
// chart. Build keeps no state between calls except in opts.Linter's cache.
func Build(ctx context.Context, fsys fs.FS, c Chart, opts Options) (*Package, error) {
	e := &Error{Dir: c.Dir}
	if c.Metadata != nil {
		e.Name, e.Version = c.Metadata.Name, c.Metadata.Version
	}
	fail := func(reason Reason, err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return ctxErr
		}
		e.Reason, e.Err = reason, err
		return e
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !fs.ValidPath(c.Dir) {
		return nil, fail(ReasonPackage, fmt.Errorf("chart directory %q is not inside the tree", c.Dir))
	}
	t := newTree(fsys, opts.Limits)

	found, cerr := readChart(t, c.Dir)
	if cerr != nil {
		return nil, cerr
	}
	md := found.Metadata
	if c.Metadata != nil && (md.Name != c.Metadata.Name || md.Version != c.Metadata.Version) {
		return nil, fail(ReasonPackage, fmt.Errorf("changed since discovery: Chart.yaml now says %q %s", md.Name, md.Version))
	}
	e.Name, e.Version = md.Name, md.Version

	files, lfs, err := t.loadDir(ctx, c.Dir, opts.LFSWarn)
	if err != nil {
		return nil, fail(classify(err), err)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fail(ReasonPackage, fmt.Errorf("load chart: %w", err))
	}
	dirReal, err := t.resolve(c.Dir)
	if err != nil {
		return nil, fail(ReasonPackage, describeResolve(c.Dir, err))
	}
	more, err := resolveDeps(ctx, t, ch, c.Dir, []string{dirReal}, opts.LFSWarn)
	if err != nil {
		return nil, fail(classify(err), err)
	}
	lfs = append(lfs, more...)
	if opts.Lint != LintSkip {
		if err := checkSchemas(ch); err != nil {
			return nil, fail(classify(err), err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	data, err := writeArchive(ch)
	if err != nil {
		return nil, fail(ReasonPackage, fmt.Errorf("package chart: %w", err))
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	var verdict Verdict
	if opts.Lint != LintSkip {
		if verdict, err = opts.Linter.lint(ctx, ch.Name(), data, digest); err != nil {
			return nil, fail(classify(err), err)
		}
	}
	if verdict.Exceeded != "" {
		return nil, fail(ReasonLint, errors.New(verdict.Exceeded))
	}
	warnings := verdict.Warnings
	if len(verdict.Errors) > 0 {
		if opts.Lint != LintWarn {
			return nil, fail(ReasonLint, fmt.Errorf("lint failed: %s", strings.Join(verdict.Errors, "; ")))
		}
		warnings = append(slices.Clone(verdict.Errors), warnings...)
	}
	for _, f := range lfs {
		warnings = append(warnings, fmt.Sprintf("[WARNING] %s: a Git LFS pointer, packaged as it is", f))
	}

	pkg := &Package{
		Metadata: ch.Metadata,
		Data:     data,
		Digest:   digest,
		Warnings: warnings,
	}
	if opts.Signer != nil {
		if pkg.Provenance, err = opts.Signer.Sign(pkg); err != nil {
			return nil, fail(ReasonPackage, err)
		}
	}
	return pkg, nil
}

// classify maps an error from the checks to its Reason.
func classify(err error) Reason {
	var re *reasonError
	if errors.As(err, &re) {
		return re.reason
	}
	return ReasonPackage
}

// resolveDeps makes sure every dependency ch declares is attached to it, the
// way helm's action.CheckDependencies requires at install time: a vendored
// chart under charts/ of that name, or else one loaded from a "file://"
// repository inside the tree. dir is ch's directory (a path in the tree as
// written, which may pass through symlinks); stack holds the resolved
// directories of the charts being resolved, to catch file:// cycles.
// Vendored subcharts are taken as they are, as helm does. It returns the
// LFS pointers packaged under lfsWarn.
func resolveDeps(ctx context.Context, t *tree, ch *chart.Chart, dir string, stack []string, lfsWarn bool) ([]string, error) {
	present := map[string]bool{}
	for _, d := range ch.Dependencies() {
		if present[d.Name()] {
			return nil, failf(ReasonDependency, "dependency %q is vendored twice under charts/", d.Name())
		}
		present[d.Name()] = true
	}
	var missing, lfs []string
	for _, d := range ch.Metadata.Dependencies {
		if present[d.Name] {
			continue
		}
		if !strings.HasPrefix(d.Repository, "file://") {
			missing = append(missing, describeDep(d))
			continue
		}
		sub, more, err := loadFileDep(ctx, t, dir, d, stack, lfsWarn)
		if err != nil {
			return nil, err
		}
		lfs = append(lfs, more...)
		ch.AddDependency(sub)
		present[d.Name] = true
	}
	if len(missing) > 0 {
		return nil, failf(ReasonDependency, "missing %s: not vendored under charts/ and not a file:// repository", strings.Join(missing, ", "))
	}
	return lfs, nil
}

func describeDep(d *chart.Dependency) string {
	return fmt.Sprintf("dependency %q version %q repository %q", d.Name, d.Version, d.Repository)
}

// loadFileDep loads the chart a "file://" dependency of the chart in dir
// points at: a directory or a .tgz inside the tree. The path is taken
// relative to dir, ".." applied to the path as written, as helm does;
// symlinks are then resolved inside the tree.
func loadFileDep(ctx context.Context, t *tree, dir string, d *chart.Dependency, stack []string, lfsWarn bool) (*chart.Chart, []string, error) {
	rel := strings.TrimPrefix(d.Repository, "file://")
	if path.IsAbs(rel) {
		return nil, nil, failf(ReasonDependency, "%s: an absolute path leaves the tree", describeDep(d))
	}
	p := path.Join(dir, rel)
	if !fs.ValidPath(p) {
		return nil, nil, failf(ReasonDependency, "%s: path leaves the tree", describeDep(d))
	}
	real, err := t.resolve(p)
	switch {
	case errors.Is(err, errEscapes), errors.Is(err, errIntoGit), errors.Is(err, errLoop):
		return nil, nil, failf(ReasonDependency, "%s: %s %v", describeDep(d), p, err)
	case err != nil:
		return nil, nil, failf(ReasonDependency, "%s: %s: %v", describeDep(d), p, err)
	}
	if slices.Contains(stack, real) {
		return nil, nil, failf(ReasonDependency, "%s: dependency cycle through %s", describeDep(d), real)
	}
	fi, err := fs.Stat(t.fsys, real)
	if err != nil {
		return nil, nil, failf(ReasonDependency, "%s: %v", describeDep(d), unwrapPath(err))
	}
	var (
		sub *chart.Chart
		lfs []string
	)
	if fi.IsDir() {
		var files []*loader.BufferedFile
		if files, lfs, err = t.loadDir(ctx, p, lfsWarn); err != nil {
			return nil, nil, err
		}
		sub, err = loader.LoadFiles(files)
	} else {
		if fi.Size() > loader.MaxDecompressedChartSize {
			return nil, nil, failf(ReasonDependency, "%s: %s is larger than %d bytes", describeDep(d), p, loader.MaxDecompressedChartSize)
		}
		var data []byte
		if data, err = t.readFile(real); err == nil {
			if err = t.charge(size{entries: 1, bytes: int64(len(data))}, p); err != nil {
				return nil, nil, err
			}
			sub, err = loader.LoadArchive(bytes.NewReader(data))
		}
	}
	if err != nil {
		return nil, nil, failf(ReasonDependency, "%s: load: %v", describeDep(d), err)
	}
	if sub.Name() != d.Name {
		return nil, nil, failf(ReasonDependency, "%s: %s holds chart %q", describeDep(d), p, sub.Name())
	}
	if d.Version != "" {
		constraint, err := semver.NewConstraint(d.Version)
		if err != nil {
			return nil, nil, failf(ReasonDependency, "%s: invalid version constraint: %v", describeDep(d), err)
		}
		v, err := semver.NewVersion(sub.Metadata.Version)
		if err != nil || !constraint.Check(v) {
			return nil, nil, failf(ReasonDependency, "%s: found version %s, which does not satisfy it", describeDep(d), sub.Metadata.Version)
		}
	}
	if fi.IsDir() {
		more, err := resolveDeps(ctx, t, sub, p, append(stack, real), lfsWarn)
		if err != nil {
			return nil, nil, err
		}
		lfs = append(lfs, more...)
	}
	return sub, lfs, nil
}
