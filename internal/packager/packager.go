// Package packager turns chart directories of a commit's tree into Helm
// chart packages. It finds top-level charts (Discover), loads, checks, lints
// and packages one of them into a reproducible .tgz (Build), and reads the
// metadata of a stored package back (LoadArchive). It knows Helm charts and
// nothing of git or storage: the caller hands it the tree as an fs.FS and
// gets bytes back.
//
// The tree (fsys) holds exactly the files of one commit: slash-separated
// relative paths, "." the repository root. It must implement
// fs.ReadDirFS, fs.ReadFileFS and fs.ReadLinkFS; os.DirFS of a checkout
// does. The packager never relies on fsys to follow a symlink: it resolves
// each one itself, inside fsys (a relative target against the link's
// directory; an absolute target or one that climbs above "." leaves the
// tree), and reads no OS path. Any path component named ".git" (in any
// case, as git compares it) is absent: never listed, never packaged, and a
// symlink into it fails its chart.
//
// Every failure that belongs to one chart is an *Error carrying the chart and
// a fixed Reason, so one broken chart fails alone and can be counted.
package packager

import (
	"fmt"
	"time"

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
	// invalid (not a string, not ^[A-Za-z0-9][A-Za-z0-9._-]*$, contains
	// "..", or makes a package file name longer than MaxFilenameBytes).
	ReasonChartfile Reason = "chartfile"
	// ReasonVersion: the version is not a strict semantic version.
	ReasonVersion Reason = "version"
	// ReasonSymlink: a symlink is dangling, loops, resolves outside the tree
	// or into .git; or a chart directory is itself a symlink.
	ReasonSymlink Reason = "symlink"
	// ReasonDependency: a declared dependency cannot be satisfied offline.
	ReasonDependency Reason = "dependency"
	// ReasonLint: helm's linter reported errors (in LintStrict mode), ran
	// out of time or memory, or a values.schema.json refers to anything
	// outside itself (which helm would fetch).
	ReasonLint Reason = "lint"
	// ReasonPackage: anything else while loading or packaging, including
	// a limit exceeded ("limit: ...") and a Git LFS pointer file.
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
	// LintSkip does not lint (nor check values.schema.json, which only
	// lint reads): for a build whose package is only compared with one
	// already published, never published itself. Lint does not change the
	// package's bytes.
	LintSkip
)

// Options tune Build. The zero value is the strict default.
type Options struct {
	Lint LintMode
	// Signer, if set, signs each package: Package.Provenance.
	Signer *Signer
	// Limits bound the reading of one chart; zero fields take defaults.
	Limits Limits
	// LFSWarn turns a Git LFS pointer file in a chart from a failure into
	// a warning (the pointer is packaged as it is).
	LFSWarn bool
	// Linter runs helm's linter; nil uses one Linter for the process, made
	// by NewLinter("") on first use (its error fails the chart).
	Linter *Linter
}

// Limits bound what reading one chart may cost: the chart directory and
// every file:// dependency it loads, counted together, with symlinks
// followed (each occurrence of a linked file or directory counts again, as
// it would in the package). Exceeding one fails that chart (ReasonPackage,
// the message starts with "limit:"). A zero field takes its default.
type Limits struct {
	MaxEntries int64         // files and directories; default 20,000
	MaxBytes   int64         // bytes of files; default 100 MiB, helm's own limit for a chart archive
	MaxDepth   int           // directory levels below the chart directory; default 64
	MaxTime    time.Duration // time to read the chart; default 1 minute
}

// DefaultLimits are the limits a zero Limits field takes: far above any real
// chart (the largest in the model repository has a few hundred files).
var DefaultLimits = Limits{MaxEntries: 20000, MaxBytes: 100 << 20, MaxDepth: 64, MaxTime: time.Minute}

func (l Limits) withDefaults() Limits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultLimits.MaxEntries
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	if l.MaxTime <= 0 {
		l.MaxTime = DefaultLimits.MaxTime
	}
	return l
}

// check fails if s exceeds a limit; where names the directory or entry.
func (l Limits) check(s size, where string) error {
	switch {
	case s.entries > l.MaxEntries:
		return failf(ReasonPackage, "limit: more than %d files and directories (at %s)", l.MaxEntries, where)
	case s.bytes > l.MaxBytes:
		return failf(ReasonPackage, "limit: more than %d bytes of files (at %s)", l.MaxBytes, where)
	case s.depth > l.MaxDepth:
		return failf(ReasonPackage, "limit: more than %d directory levels (at %s)", l.MaxDepth, where)
	}
	return nil
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

// MaxFilenameBytes is the longest package file name Discover accepts: 255
// bytes (the limit of a file name on every common file system, which the
// local store has) less the ".prov" a signature's file name adds.
const MaxFilenameBytes = 255 - len(".prov")

// Filename returns the file name helm gives a package of this chart version:
// "<name>-<version>.tgz".
func Filename(name, version string) string { return name + "-" + version + ".tgz" }
