package packager

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/chart"
	"sigs.k8s.io/yaml"
)

// chartfileName is the name of a chart's metadata file.
const chartfileName = "Chart.yaml"

// validName is what a chart name must look like so that it is a safe single
// path segment in a storage prefix.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Discover finds top-level charts: directories of fsys whose slash-separated
// path matches any of globs (path.Match syntax, e.g. "charts/*") and that
// contain Chart.yaml. A directory with an ancestor that contains Chart.yaml
// is a subchart and is skipped silently; a Chart.yaml in the root itself
// only counts when a glob matches ".".
//
// Discover reads directories and Chart.yaml files only, and descends only as
// deep as the globs can match. It does not follow symlinked directories: a
// symlink where a chart directory would be, or on the way to one, is
// reported as an error (ReasonSymlink) naming it, since its charts would
// otherwise vanish in silence. A Chart.yaml that is a symlink must resolve
// inside the tree (else ReasonSymlink). ctx is checked for every directory:
// once it is done, Discover stops and adds one error wrapping ctx.Err().
//
// Charts whose Chart.yaml is malformed or whose name is invalid
// (ReasonChartfile) or whose version is not strict semver (ReasonVersion) are
// returned as errors, not charts. A name or version that YAML 1.1 (which helm
// uses) parses as anything but a string, such as `name: y` (a boolean) or
// `version: 1.0` (a number), is rejected: helm would silently publish it as
// "true" or "1". Quoting it fixes it. A chart whose package file name would
// be longer than MaxFilenameBytes is refused (ReasonChartfile): no store
// could hold it. Both results are sorted by Dir.
func Discover(ctx context.Context, fsys fs.FS, globs []string) ([]Chart, []*Error) {
	var (
		charts []Chart
		errs   []*Error
	)
	patterns := make([][]string, 0, len(globs))
	for _, g := range globs {
		g = path.Clean(filepath.ToSlash(g))
		if _, err := path.Match(g, ""); err != nil {
			errs = append(errs, &Error{Dir: g, Reason: ReasonPackage, Err: fmt.Errorf("check glob %q: %w", g, err)})
			continue
		}
		if !fs.ValidPath(g) {
			errs = append(errs, &Error{Dir: g, Reason: ReasonPackage, Err: fmt.Errorf("check glob %q: not relative to the tree root", g)})
			continue
		}
		if g == "." {
			patterns = append(patterns, nil)
			continue
		}
		patterns = append(patterns, strings.Split(g, "/"))
	}
	t := newTree(fsys, Limits{})
	add := func(c Chart, e *Error) {
		if e != nil {
			errs = append(errs, e)
		} else {
			charts = append(charts, c)
		}
	}

	// Root itself: a chart only if a glob says ".", never a parent of subcharts.
	if _, err := fs.ReadDir(fsys, "."); err != nil {
		return nil, append(errs, &Error{Dir: ".", Reason: ReasonPackage, Err: fmt.Errorf("read tree root: %w", unwrapPath(err))})
	}
	for _, p := range patterns {
		if p != nil {
			continue
		}
		if _, err := fs.Lstat(fsys, chartfileName); err == nil {
			add(readChart(t, "."))
		}
		break
	}

	var walk func(rel []string)
	walk = func(rel []string) {
		dir := slashDir(rel)
		if ctx.Err() != nil {
			return // reported once, below
		}
		entries, err := t.readDir(dir)
		if err != nil {
			errs = append(errs, &Error{Dir: dir, Reason: ReasonPackage, Err: err})
			return
		}
		for _, e := range entries {
			sub := append(append([]string(nil), rel...), e.Name())
			full, deeper := matchPrefix(patterns, sub)
			if !full && !deeper {
				continue
			}
			p := slashDir(sub)
			if e.Type()&fs.ModeSymlink != 0 {
				if err := symlinkedDir(t, p, full, deeper); err != nil {
					errs = append(errs, err)
				}
				continue
			}
			if !e.IsDir() {
				continue
			}
			if _, err := fs.Lstat(fsys, path.Join(p, chartfileName)); err == nil {
				// A chart: everything below it is a subchart.
				if full {
					add(readChart(t, p))
				}
				continue
			}
			if deeper {
				walk(sub)
			}
		}
	}
	walk(nil)
	if err := ctx.Err(); err != nil {
		errs = append(errs, &Error{Dir: ".", Reason: ReasonPackage, Err: fmt.Errorf("discover charts: %w", err)})
	}

	sort.Slice(charts, func(i, j int) bool { return charts[i].Dir < charts[j].Dir })
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Dir < errs[j].Dir })
	return charts, errs
}

// symlinkedDir reports a symlink at p that the globs match: as a chart
// directory (full) if it leads to a directory holding Chart.yaml, or on the
// way to charts (deeper) if it leads to a directory. Other symlinks are not
// charts and return nil.
func symlinkedDir(t *tree, p string, full, deeper bool) *Error {
	target, _ := fs.ReadLink(t.fsys, p)
	real, err := t.resolveLink(p)
	if err != nil {
		return nil // not a directory of this tree: not a chart either
	}
	fi, err := fs.Stat(t.fsys, real)
	if err != nil || !fi.IsDir() {
		return nil
	}
	if _, err := fs.Stat(t.fsys, path.Join(real, chartfileName)); err == nil && full {
		return &Error{Dir: p, Reason: ReasonSymlink, Err: fmt.Errorf("chart directory is a symlink (-> %s), which is not followed: move the chart here or point the globs at %s", target, real)}
	}
	if deeper {
		return &Error{Dir: p, Reason: ReasonSymlink, Err: fmt.Errorf("directory matched by the globs is a symlink (-> %s), which is not followed: charts below it are not published; point the globs at %s", target, real)}
	}
	return nil
}

// matchPrefix reports whether the path segments rel match a whole pattern
// (full), and whether some longer pattern matches rel as its prefix, so that
// the walk has to go deeper.
func matchPrefix(patterns [][]string, rel []string) (full, deeper bool) {
	for _, p := range patterns {
		if len(p) < len(rel) {
			continue
		}
		ok := true
		for i, seg := range rel {
			if m, _ := path.Match(p[i], seg); !m {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if len(p) == len(rel) {
			full = true
		} else {
			deeper = true
		}
	}
	return full, deeper
}

func slashDir(rel []string) string {
	if len(rel) == 0 {
		return "."
	}
	return strings.Join(rel, "/")
}

// readChart reads and validates dir's Chart.yaml.
func readChart(t *tree, dir string) (Chart, *Error) {
	data, reason, err := t.readChartfile(dir)
	if err != nil {
		return Chart{}, &Error{Dir: dir, Reason: reason, Err: err}
	}
	md, reason, err := parseChartfile(data)
	if err != nil {
		e := &Error{Dir: dir, Reason: reason, Err: err}
		if md != nil {
			e.Name, e.Version = md.Name, md.Version
		}
		return Chart{}, e
	}
	return Chart{Dir: dir, Metadata: md}, nil
}

// readChartfile reads dir's Chart.yaml, which may be a symlink that must
// resolve inside the tree.
func (t *tree) readChartfile(dir string) ([]byte, Reason, error) {
	real, err := t.resolve(dir)
	if err != nil {
		return nil, ReasonSymlink, describeResolve(dir, err)
	}
	real = path.Join(real, chartfileName)
	fi, err := fs.Lstat(t.fsys, real)
	if err != nil {
		return nil, ReasonChartfile, fmt.Errorf("read %s: %w", chartfileName, unwrapPath(err))
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if real, err = t.resolveLink(real); err != nil {
			return nil, ReasonSymlink, err
		}
	}
	data, err := fs.ReadFile(t.fsys, real)
	if err != nil {
		return nil, ReasonChartfile, fmt.Errorf("read %s: %w", chartfileName, unwrapPath(err))
	}
	return data, "", nil
}

// parseChartfile parses and validates the bytes of a Chart.yaml the way helm's
// loader does, plus the stricter name and version rules of Discover. On failure
// it returns whatever metadata it could read, for the error message.
func parseChartfile(data []byte) (*chart.Metadata, Reason, error) {
	// Helm reads Chart.yaml with YAML 1.1 rules into JSON, then into strings;
	// look at the generic form first so that a non-string scalar is caught
	// before it is quietly stringified.
	var raw map[string]interface{}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, ReasonChartfile, fmt.Errorf("parse %s: %w", chartfileName, err)
	}
	md := new(chart.Metadata)
	if err := yaml.Unmarshal(data, md); err != nil {
		return nil, ReasonChartfile, fmt.Errorf("parse %s: %w", chartfileName, err)
	}
	if md.APIVersion == "" {
		md.APIVersion = chart.APIVersionV1 // as helm's loader does
	}

	// On failure, report only the name and version that are known good.
	known := new(chart.Metadata)
	name, ok := raw["name"].(string)
	switch {
	case raw["name"] == nil:
		return known, ReasonChartfile, errors.New("invalid chart name: name is missing")
	case !ok:
		return known, ReasonChartfile, fmt.Errorf("invalid chart name: YAML reads it as the %s %v, not a string; quote it", yamlKind(raw["name"]), raw["name"])
	case !validName.MatchString(name) || strings.Contains(name, ".."):
		return known, ReasonChartfile, fmt.Errorf("invalid chart name %q: must match %s and not contain \"..\"", name, validName)
	}
	known.Name = name

	version, ok := raw["version"].(string)
	switch {
	case raw["version"] == nil:
		return known, ReasonVersion, errors.New("invalid chart version: version is missing")
	case !ok:
		return known, ReasonVersion, fmt.Errorf("invalid chart version: YAML reads it as the %s %v, not a string; quote it", yamlKind(raw["version"]), raw["version"])
	}
	known.Version = version
	if _, err := semver.StrictNewVersion(version); err != nil {
		return known, ReasonVersion, fmt.Errorf("invalid chart version %q: not strict semver: %w", version, err)
	}

	if n := len(Filename(name, version)); n > MaxFilenameBytes {
		return known, ReasonChartfile, fmt.Errorf("name and version too long: the package file name would be %d bytes, more than the %d a store can hold", n, MaxFilenameBytes)
	}
	if err := md.Validate(); err != nil {
		return known, ReasonChartfile, fmt.Errorf("validate %s: %w", chartfileName, err)
	}
	return md, "", nil
}

// yamlKind names the kind of a value decoded from YAML, for messages.
func yamlKind(v interface{}) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case float64, int, int64:
		return "number"
	case []interface{}:
		return "list"
	case map[string]interface{}:
		return "map"
	default:
		return fmt.Sprintf("%T", v)
	}
}
