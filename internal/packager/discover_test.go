package packager

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/chartsync/chartsync/internal/testenv"
)

func TestDiscover(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"Chart.yaml": "apiVersion: v2\nname: evil\nversion: 1.0.0\n"})

	tests := []struct {
		name     string
		files    map[string]string
		links    map[string]string // link -> target
		globs    []string
		wantDirs []string
		wantErrs map[string]Reason // Dir -> Reason
	}{
		{
			name:     "valid charts sorted by dir across globs",
			files:    testenv.Merge(chartFiles("charts/b", "b", "1.0.0", ""), chartFiles("charts/a", "a", "0.1.0", ""), chartFiles("stable/c", "c", "2.0.0-rc.1+build.5", "")),
			globs:    []string{"stable/*", "charts/*"},
			wantDirs: []string{"charts/a", "charts/b", "stable/c"},
		},
		{
			name: "subcharts are skipped, vendored or deeper-globbed",
			files: testenv.Merge(chartFiles("charts/foo", "foo", "1.0.0", ""),
				chartFiles("charts/foo/charts/bar", "bar", "1.0.0", ""),
				chartFiles("charts/foo/sub/deep", "deep", "1.0.0", "")),
			globs:    []string{"charts/*", "charts/*/charts/*", "charts/*/sub/*"},
			wantDirs: []string{"charts/foo"},
		},
		{
			name:     "directories without Chart.yaml and files are ignored",
			files:    map[string]string{"charts/empty/README.md": "x", "charts/file.txt": "x", "docs/Chart.yaml": "name: [\n"},
			globs:    []string{"charts/*"},
			wantDirs: nil,
		},
		{
			name:     "malformed Chart.yaml",
			files:    map[string]string{"charts/bad/Chart.yaml": "name: [\n"},
			globs:    []string{"charts/*"},
			wantErrs: map[string]Reason{"charts/bad": ReasonChartfile},
		},
		{
			name:     "Chart.yaml failing helm validation",
			files:    map[string]string{"charts/bad/Chart.yaml": "apiVersion: v2\nname: bad\nversion: 1.0.0\ntype: weird\n"},
			globs:    []string{"charts/*"},
			wantErrs: map[string]Reason{"charts/bad": ReasonChartfile},
		},
		{
			name: "versions that are not strict semver",
			files: map[string]string{
				"charts/float/Chart.yaml":  "apiVersion: v2\nname: float\nversion: 1.0\n",
				"charts/quoted/Chart.yaml": "apiVersion: v2\nname: quoted\nversion: \"1.0\"\n",
				"charts/banana/Chart.yaml": "apiVersion: v2\nname: banana\nversion: banana\n",
				"charts/vee/Chart.yaml":    "apiVersion: v2\nname: vee\nversion: v1.2.3\n",
				"charts/none/Chart.yaml":   "apiVersion: v2\nname: none\n",
			},
			globs: []string{"charts/*"},
			wantErrs: map[string]Reason{"charts/float": ReasonVersion, "charts/quoted": ReasonVersion,
				"charts/banana": ReasonVersion, "charts/vee": ReasonVersion, "charts/none": ReasonVersion},
		},
		{
			name: "invalid names",
			files: map[string]string{
				"charts/slash/Chart.yaml":  "apiVersion: v2\nname: a/b\nversion: 1.0.0\n",
				"charts/dots/Chart.yaml":   "apiVersion: v2\nname: ..\nversion: 1.0.0\n",
				"charts/inner/Chart.yaml":  "apiVersion: v2\nname: a..b\nversion: 1.0.0\n",
				"charts/dash/Chart.yaml":   "apiVersion: v2\nname: -x\nversion: 1.0.0\n",
				"charts/space/Chart.yaml":  "apiVersion: v2\nname: a b\nversion: 1.0.0\n",
				"charts/number/Chart.yaml": "apiVersion: v2\nname: 123\nversion: 1.0.0\n",
				"charts/empty/Chart.yaml":  "apiVersion: v2\nversion: 1.0.0\n",
				// YAML 1.1, which helm uses, reads y as the boolean true: helm would
				// publish it as "true". Rejected; quoting it makes it a string.
				"charts/y/Chart.yaml":       "apiVersion: v2\nname: y\nversion: 1.0.0\n",
				"charts/yquoted/Chart.yaml": "apiVersion: v2\nname: \"y\"\nversion: 1.0.0\n",
			},
			globs:    []string{"charts/*"},
			wantDirs: []string{"charts/yquoted"},
			wantErrs: map[string]Reason{"charts/slash": ReasonChartfile, "charts/dots": ReasonChartfile,
				"charts/inner": ReasonChartfile, "charts/dash": ReasonChartfile, "charts/space": ReasonChartfile,
				"charts/number": ReasonChartfile, "charts/empty": ReasonChartfile, "charts/y": ReasonChartfile},
		},
		{
			name:     "Chart.yaml symlinks: in tree works, out of tree and dangling fail",
			files:    testenv.Merge(chartFiles("shared/real", "real", "1.0.0", ""), map[string]string{"charts/in/values.yaml": "", "charts/out/values.yaml": "", "charts/dangling/values.yaml": ""}),
			links:    map[string]string{"charts/in/Chart.yaml": "../../shared/real/Chart.yaml", "charts/out/Chart.yaml": filepath.Join(outside, "Chart.yaml"), "charts/dangling/Chart.yaml": "../nowhere.yaml"},
			globs:    []string{"charts/*"},
			wantDirs: []string{"charts/in"},
			wantErrs: map[string]Reason{"charts/out": ReasonSymlink, "charts/dangling": ReasonSymlink},
		},
		{
			name:     "symlinked chart directories are reported, not followed",
			files:    testenv.Merge(chartFiles("shared/real", "real", "1.0.0", ""), map[string]string{"shared/plain/x.txt": "x"}),
			links:    map[string]string{"charts/link": "../shared/real", "charts/notachart": "../shared/plain", "charts/file": "../shared/plain/x.txt"},
			globs:    []string{"charts/*"},
			wantDirs: nil,
			wantErrs: map[string]Reason{"charts/link": ReasonSymlink},
		},
		{
			name:     "a symlinked directory on the way to charts is reported",
			files:    chartFiles("helm/charts/real", "real", "1.0.0", ""),
			links:    map[string]string{"charts": "helm/charts"},
			globs:    []string{"charts/*"},
			wantDirs: nil,
			wantErrs: map[string]Reason{"charts": ReasonSymlink},
		},
		{
			name:     "bad glob",
			files:    chartFiles("charts/a", "a", "1.0.0", ""),
			globs:    []string{"charts/[", "/charts/*", "../x/*", "charts/*"},
			wantDirs: []string{"charts/a"},
			wantErrs: map[string]Reason{"charts/[": ReasonPackage, "/charts/*": ReasonPackage, "../x/*": ReasonPackage},
		},
		{
			name:     "root chart only with glob \".\"",
			files:    testenv.Merge(chartFiles(".", "top", "1.0.0", ""), chartFiles("charts/a", "a", "1.0.0", "")),
			globs:    []string{".", "charts/*"},
			wantDirs: []string{".", "charts/a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tt.files)
			for link, target := range tt.links {
				symlink(t, root, target, link)
			}
			charts, errs := Discover(context.Background(), os.DirFS(root), tt.globs)
			var dirs []string
			for _, c := range charts {
				dirs = append(dirs, c.Dir)
				if c.Metadata == nil || c.Metadata.Name == "" || c.Metadata.Version == "" {
					t.Errorf("%s: incomplete metadata %+v", c.Dir, c.Metadata)
				}
			}
			if !reflect.DeepEqual(dirs, tt.wantDirs) {
				t.Errorf("charts = %q, want %q", dirs, tt.wantDirs)
			}
			got := map[string]Reason{}
			var prev string
			for _, e := range errs {
				got[e.Dir] = e.Reason
				if e.Dir < prev {
					t.Errorf("errors not sorted: %s after %s", e.Dir, prev)
				}
				prev = e.Dir
				if e.Err == nil || !strings.Contains(e.Error(), e.Dir) {
					t.Errorf("error %q does not name its dir %s", e.Error(), e.Dir)
				}
			}
			if len(got) != len(tt.wantErrs) || (len(got) > 0 && !reflect.DeepEqual(got, tt.wantErrs)) {
				for _, e := range errs {
					t.Logf("error: %v (%s)", e, e.Reason)
				}
				t.Errorf("errors = %v, want %v", got, tt.wantErrs)
			}
		})
	}
}

func TestDiscoverErrorMessages(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"charts/y/Chart.yaml":      "apiVersion: v2\nname: y\nversion: 1.0.0\n",
		"charts/float/Chart.yaml":  "apiVersion: v2\nname: float\nversion: 1.0\n",
		"charts/banana/Chart.yaml": "apiVersion: v2\nname: banana\nversion: banana\n",
	})
	_, errs := Discover(context.Background(), os.DirFS(root), []string{"charts/*"})
	want := map[string]string{
		"charts/y":      `chart in charts/y: invalid chart name: YAML reads it as the boolean true, not a string; quote it`,
		"charts/float":  `chart "float" (charts/float): invalid chart version: YAML reads it as the number 1, not a string; quote it`,
		"charts/banana": `chart "banana" banana (charts/banana): invalid chart version "banana": not strict semver`,
	}
	for _, e := range errs {
		if !strings.HasPrefix(e.Error(), want[e.Dir]) {
			t.Errorf("%s: error %q, want prefix %q", e.Dir, e.Error(), want[e.Dir])
		}
	}
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d", len(errs), len(want))
	}
}

func TestDiscoverMissingRoot(t *testing.T) {
	charts, errs := Discover(context.Background(), os.DirFS(filepath.Join(t.TempDir(), "nope")), []string{"charts/*"})
	if len(charts) != 0 || len(errs) != 1 || errs[0].Reason != ReasonPackage {
		t.Fatalf("Discover(missing root) = %v, %v", charts, errs)
	}
}

func TestDiscoverCancelled(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, testenv.Merge(chartFiles("charts/a", "a", "1.0.0", ""), chartFiles("charts/b", "b", "1.0.0", "")))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	charts, errs := Discover(ctx, os.DirFS(root), []string{"charts/*"})
	if len(charts) != 0 || len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("Discover(cancelled) = %v, %v", charts, errs)
	}
}
