package packager

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
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

// Discover finds top-level charts: directories below root whose slash-separated
// path relative to root matches any of globs (path.Match syntax, e.g.
// "charts/*") and that contain Chart.yaml. A directory with an ancestor below
// root that contains Chart.yaml is a subchart and is skipped silently; a
// Chart.yaml in root itself only counts when a glob matches ".".
//
// Discover reads directories and Chart.yaml files only, and descends only as
// deep as the globs can match. It does not follow symlinked directories; a
// Chart.yaml that is a symlink must resolve inside root (else ReasonSymlink).
//
// Charts whose Chart.yaml is malformed or whose name is invalid
// (ReasonChartfile) or whose version is not strict semver (ReasonVersion) are
// returned as errors, not charts. A name or version that YAML 1.1 (which helm
// uses) parses as anything but a string, such as `name: y` (a boolean) or
// `version: 1.0` (a number), is rejected: helm would silently publish it as
// "true" or "1". Quoting it fixes it. Both results are sorted by Dir.
func Discover(root string, globs []string) ([]Chart, []*Error) {
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
		if !filepath.IsLocal(filepath.FromSlash(g)) {
			errs = append(errs, &Error{Dir: g, Reason: ReasonPackage, Err: fmt.Errorf("check glob %q: not relative to the tree root", g)})
			continue
		}
		if g == "." {
			patterns = append(patterns, nil)
			continue
		}
		patterns = append(patterns, strings.Split(g, "/"))
	}
	t, err := newTree(root)
	if err != nil {
		return nil, append(errs, &Error{Dir: ".", Reason: ReasonPackage, Err: err})
	}

	// Root itself: a chart only if a glob says ".", never a parent of subcharts.
	for _, p := range patterns {
		if p != nil {
			continue
		}
		if _, err := os.Lstat(filepath.Join(root, chartfileName)); err == nil {
			c, e := readChart(t, ".")
			if e != nil {
				errs = append(errs, e)
			} else {
				charts = append(charts, c)
			}
		}
		break
	}

	var walk func(rel []string)
	walk = func(rel []string) {
		dir := filepath.Join(append([]string{root}, rel...)...)
		entries, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, &Error{Dir: slashDir(rel), Reason: ReasonPackage, Err: fmt.Errorf("read directory: %w", unwrapPath(err))})
			return
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			sub := append(append([]string(nil), rel...), e.Name())
			full, deeper := matchPrefix(patterns, sub)
			if !full && !deeper {
				continue
			}
			if _, err := os.Lstat(filepath.Join(dir, e.Name(), chartfileName)); err == nil {
				// A chart: everything below it is a subchart.
				if full {
					c, cerr := readChart(t, slashDir(sub))
					if cerr != nil {
						errs = append(errs, cerr)
					} else {
						charts = append(charts, c)
					}
				}
				continue
			}
			if deeper {
				walk(sub)
			}
		}
	}
	walk(nil)

	sort.Slice(charts, func(i, j int) bool { return charts[i].Dir < charts[j].Dir })
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Dir < errs[j].Dir })
	return charts, errs
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

// realRoot resolves root to an absolute path with no symlinks: the boundary
// every symlink has to stay within.
func realRoot(root string) (string, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("resolve tree root: %w", err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("resolve tree root: %w", err)
	}
	return real, nil
}

// within reports whether path p (absolute, symlinks resolved) is base or
// below it.
func within(base, p string) bool {
	rel, err := filepath.Rel(base, p)
	return err == nil && filepath.IsLocal(rel)
}

// readChart reads and validates dir's Chart.yaml. dir is slash-separated and
// relative to root.
func readChart(t tree, dir string) (Chart, *Error) {
	file := filepath.Join(t.root, filepath.FromSlash(dir), chartfileName)
	data, reason, err := t.readFile(file)
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

// readFile reads a Chart.yaml, which may be a symlink that must resolve
// inside the tree.
func (t tree) readFile(file string) ([]byte, Reason, error) {
	fi, err := os.Lstat(file)
	if err != nil {
		return nil, ReasonChartfile, fmt.Errorf("read %s: %w", chartfileName, unwrapPath(err))
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if _, err := t.resolveLink(file); err != nil {
			return nil, ReasonSymlink, err
		}
	}
	data, err := os.ReadFile(file)
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
