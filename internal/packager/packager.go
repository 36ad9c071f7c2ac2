// Package packager turns chart directories of a checked-out tree into Helm
// chart packages. It finds top-level charts (Discover), loads, checks, lints
// and packages one of them into a reproducible .tgz (Build), and reads the
// metadata of a stored package back (LoadArchive). It knows Helm charts and
// nothing of git or storage: the caller hands it a directory tree and gets
// bytes back.
//
// Every failure that belongs to one chart is an *Error carrying the chart and
// a fixed Reason, so one broken chart fails alone and can be counted.
package packager

import (
	"fmt"

	"helm.sh/helm/v3/pkg/chart"
)

// Chart is a top-level chart directory found in the tree.
type Chart struct {
	Dir      string          // slash-separated, relative to the tree root, e.g. "charts/foo"
	Metadata *chart.Metadata // parsed Chart.yaml
}

// Reason classifies why a chart failed. The set is fixed and small, so it is
// usable as a metric label.
type Reason string

// Reasons a chart can fail.
const (
	// ReasonChartfile: Chart.yaml is unreadable or malformed, or its name is
	// invalid (not a string, not ^[A-Za-z0-9][A-Za-z0-9._-]*$, or contains "..").
	ReasonChartfile Reason = "chartfile"
	// ReasonVersion: the version is not a strict semantic version.
	ReasonVersion Reason = "version"
	// ReasonSymlink: a symlink is dangling, loops, or resolves outside the tree.
	ReasonSymlink Reason = "symlink"
	// ReasonDependency: a declared dependency cannot be satisfied offline.
	ReasonDependency Reason = "dependency"
	// ReasonLint: helm's linter reported errors (in LintStrict mode).
	ReasonLint Reason = "lint"
	// ReasonPackage: anything else while loading or packaging.
	ReasonPackage Reason = "package"
)

// Error is one chart's failure. Name and Version are empty when they could not
// be read. Errors not tied to one chart directory (a bad glob, an unreadable
// tree root) have Reason ReasonPackage and Dir set to the glob or ".".
type Error struct {
	Dir     string // slash-separated, relative to the tree root
	Name    string
	Version string
	Reason  Reason
	Err     error
}

// Error names the chart and says why it failed, e.g.
// `chart "foo" 1.2.3 (charts/foo): missing dependency "bar" ...`.
func (e *Error) Error() string {
	switch {
	case e.Name != "" && e.Version != "":
		return fmt.Sprintf("chart %q %s (%s): %v", e.Name, e.Version, e.Dir, e.Err)
	case e.Name != "":
		return fmt.Sprintf("chart %q (%s): %v", e.Name, e.Dir, e.Err)
	default:
		return fmt.Sprintf("chart in %s: %v", e.Dir, e.Err)
	}
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// LintMode says what lint errors do to a chart.
type LintMode int

const (
	// LintStrict fails the chart on any error-severity lint message. It is the
	// zero value.
	LintStrict LintMode = iota
	// LintWarn turns error-severity lint messages into Package.Warnings.
	LintWarn
)

// Options tune Build. The zero value is the strict default.
type Options struct {
	Lint LintMode
	// Signer, if set, signs each package: Package.Provenance.
	Signer *Signer
}

// Package is one packaged chart version, ready to store.
type Package struct {
	Metadata   *chart.Metadata
	Data       []byte   // the .tgz bytes
	Digest     string   // hex sha256 of Data
	Provenance []byte   // the .prov file, if Options.Signer was set
	Warnings   []string // lint findings that did not fail the chart
}

// Filename returns the package's file name, "<name>-<version>.tgz".
func (p *Package) Filename() string { return Filename(p.Metadata.Name, p.Metadata.Version) }

// Filename returns the file name helm gives a package of this chart version:
// "<name>-<version>.tgz".
func Filename(name, version string) string { return name + "-" + version + ".tgz" }
