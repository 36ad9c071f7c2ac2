package packager

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

// Build loads, checks and packages the chart c found under root, the tree
// root and symlink boundary. In order it:
//
//   - re-reads and validates Chart.yaml as Discover does;
//   - checks every symlink in the chart (and in any file:// dependency) resolves
//     inside root (ReasonSymlink names the link and its target);
//   - loads the chart with helm's loader, which honours .helmignore;
//   - satisfies every dependency declared in Chart.yaml (or requirements.yaml)
//     offline: vendored under charts/ as a directory or .tgz, or a
//     "file://<path>" repository inside root, which is loaded, checked
//     against the version constraint and attached (ReasonDependency names
//     what is missing);
//   - writes the reproducible .tgz and runs helm's linter on exactly those
//     bytes, unpacked (ReasonLint, unless opts.Lint is LintWarn);
//   - signs the .tgz if opts.Signer is set.
//
// A vendored dependency wins over a file:// one of the same name, and is
// taken as it is (its version is not checked against the constraint, as
// helm does not). The package's bytes depend only on the chart's content as
// helm's loader reads it: not on file times, modes, owners, the checkout
// path, the clock or the machine (for one build of chartsync: gzip output
// may change between Go releases). Package.Warnings holds helm's
// warning-severity lint messages, and in LintWarn mode its error-severity
// ones too. Lint runs offline except for what the chart asks for: a
// values.schema.json that $refs an http(s) URL is fetched by helm.
//
// Every chart failure is an *Error. ctx is checked between steps and during
// the symlink walk; loading and linting one chart are not interrupted. If
// ctx is done Build returns ctx.Err() itself, not an *Error: a cancelled
// build says nothing about the chart. Build keeps no state between calls.
func Build(ctx context.Context, root string, c Chart, opts Options) (*Package, error) {
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

	t, err := newTree(root)
	if err != nil {
		return nil, fail(ReasonPackage, err)
	}
	if !filepath.IsLocal(filepath.FromSlash(c.Dir)) {
		return nil, fail(ReasonPackage, fmt.Errorf("chart directory %q is not inside the tree", c.Dir))
	}
	dir := filepath.Join(t.root, filepath.FromSlash(c.Dir))

	found, cerr := readChart(t, c.Dir)
	if cerr != nil {
		return nil, cerr
	}
	md := found.Metadata
	if c.Metadata != nil && (md.Name != c.Metadata.Name || md.Version != c.Metadata.Version) {
		return nil, fail(ReasonPackage, fmt.Errorf("changed since discovery: Chart.yaml now says %q %s", md.Name, md.Version))
	}
	e.Name, e.Version = md.Name, md.Version

	if err := t.checkDir(ctx, dir); err != nil {
		return nil, fail(classify(err), err)
	}
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return nil, fail(ReasonPackage, fmt.Errorf("load chart: %w", err))
	}
	dirReal, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fail(ReasonPackage, fmt.Errorf("resolve chart directory: %w", err))
	}
	if err := resolveDeps(ctx, t, ch, dir, []string{dirReal}); err != nil {
		return nil, fail(classify(err), err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	data, err := writeArchive(ch)
	if err != nil {
		return nil, fail(ReasonPackage, fmt.Errorf("package chart: %w", err))
	}
	lintErrs, warnings, err := lintArchive(ch.Name(), data)
	if err != nil {
		return nil, fail(ReasonPackage, err)
	}
	if len(lintErrs) > 0 {
		if opts.Lint != LintWarn {
			return nil, fail(ReasonLint, fmt.Errorf("lint failed: %s", strings.Join(lintErrs, "; ")))
		}
		warnings = append(lintErrs, warnings...)
	}

	sum := sha256.Sum256(data)
	pkg := &Package{
		Metadata: ch.Metadata,
		Data:     data,
		Digest:   hex.EncodeToString(sum[:]),
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
// repository inside the tree. dir is ch's directory; stack holds the resolved
// directories of the charts being resolved, to catch file:// cycles.
// Vendored subcharts are taken as they are, as helm does.
func resolveDeps(ctx context.Context, t tree, ch *chart.Chart, dir string, stack []string) error {
	present := map[string]bool{}
	for _, d := range ch.Dependencies() {
		if present[d.Name()] {
			return failf(ReasonDependency, "dependency %q is vendored twice under charts/", d.Name())
		}
		present[d.Name()] = true
	}
	var missing []string
	for _, d := range ch.Metadata.Dependencies {
		if present[d.Name] {
			continue
		}
		if !strings.HasPrefix(d.Repository, "file://") {
			missing = append(missing, describeDep(d))
			continue
		}
		sub, err := loadFileDep(ctx, t, dir, d, stack)
		if err != nil {
			return err
		}
		ch.AddDependency(sub)
		present[d.Name] = true
	}
	if len(missing) > 0 {
		return failf(ReasonDependency, "missing %s: not vendored under charts/ and not a file:// repository", strings.Join(missing, ", "))
	}
	return nil
}

func describeDep(d *chart.Dependency) string {
	return fmt.Sprintf("dependency %q version %q repository %q", d.Name, d.Version, d.Repository)
}

// loadFileDep loads the chart a "file://" dependency of the chart in dir
// points at, after checking that it and its symlinks stay in the tree, and
// resolves its own dependencies.
func loadFileDep(ctx context.Context, t tree, dir string, d *chart.Dependency, stack []string) (*chart.Chart, error) {
	p := filepath.FromSlash(strings.TrimPrefix(d.Repository, "file://"))
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil, failf(ReasonDependency, "%s: %v", describeDep(d), unwrapPath(err))
	}
	if !within(t.rootReal, real) {
		return nil, failf(ReasonDependency, "%s: path leaves the tree (resolves to %s)", describeDep(d), real)
	}
	if slices.Contains(stack, real) {
		return nil, failf(ReasonDependency, "%s: dependency cycle through %s", describeDep(d), t.show(real))
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, failf(ReasonDependency, "%s: %v", describeDep(d), unwrapPath(err))
	}
	var sub *chart.Chart
	if fi.IsDir() {
		if err := t.checkDir(ctx, p); err != nil {
			return nil, err
		}
		sub, err = loader.LoadDir(p)
	} else {
		sub, err = loader.LoadFile(p)
	}
	if err != nil {
		return nil, failf(ReasonDependency, "%s: load: %v", describeDep(d), err)
	}
	if sub.Name() != d.Name {
		return nil, failf(ReasonDependency, "%s: %s holds chart %q", describeDep(d), t.show(real), sub.Name())
	}
	if d.Version != "" {
		constraint, err := semver.NewConstraint(d.Version)
		if err != nil {
			return nil, failf(ReasonDependency, "%s: invalid version constraint: %v", describeDep(d), err)
		}
		v, err := semver.NewVersion(sub.Metadata.Version)
		if err != nil || !constraint.Check(v) {
			return nil, failf(ReasonDependency, "%s: found version %s, which does not satisfy it", describeDep(d), sub.Metadata.Version)
		}
	}
	if fi.IsDir() {
		if err := resolveDeps(ctx, t, sub, p, append(stack, real)); err != nil {
			return nil, err
		}
	}
	return sub, nil
}

// lintArchive unpacks the package data into a temporary directory and runs
// helm's linter on it, so what is linted is exactly what is published. It
// returns the error-severity and warning-severity findings; info findings
// are dropped.
func lintArchive(name string, data []byte) (errs, warnings []string, err error) {
	tmp, err := os.MkdirTemp("", "chartsync-lint-")
	if err != nil {
		return nil, nil, fmt.Errorf("lint: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := chartutil.Expand(tmp, bytes.NewReader(data)); err != nil {
		return nil, nil, fmt.Errorf("lint: unpack package: %w", err)
	}
	chartDir := filepath.Join(tmp, name)
	linter := lint.AllWithKubeVersionAndSchemaValidation(chartDir, map[string]interface{}{}, "default", nil, false)
	for _, m := range linter.Messages {
		where := m.Path
		if rel, err := filepath.Rel(chartDir, where); err == nil && filepath.IsAbs(where) {
			where = filepath.ToSlash(rel)
		}
		text := strings.ReplaceAll(m.Err.Error(), chartDir+string(filepath.Separator), "")
		text = strings.ReplaceAll(text, chartDir, ".")
		text = strings.Join(strings.Fields(text), " ")
		switch m.Severity {
		case support.ErrorSev:
			errs = append(errs, fmt.Sprintf("[ERROR] %s: %s", where, text))
		case support.WarningSev:
			warnings = append(warnings, fmt.Sprintf("[WARNING] %s: %s", where, text))
		}
	}
	return errs, warnings, nil
}
