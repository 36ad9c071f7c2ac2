package packager

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/chartsync/chartsync/internal/testenv"
)

// vendoredTgz packages a small chart with Build itself, for use as a
// vendored .tgz dependency.
func vendoredTgz(t *testing.T, name, version string) string {
	t.Helper()
	root := t.TempDir()
	writeTree(t, root, chartFiles("c", name, version, ""))
	pkg, err := Build(context.Background(), os.DirFS(root), Chart{Dir: "c"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return string(pkg.Data)
}

func TestBuild(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, testenv.Merge(chartFiles("ext", "ext", "1.0.0", ""), map[string]string{"secret.txt": "secret\n"}))

	dep := func(name, version, repo string) string {
		return "dependencies:\n- name: " + name + "\n  version: \"" + version + "\"\n  repository: " + repo + "\n"
	}
	tests := []struct {
		name       string
		dir        string // chart to build; default charts/foo
		files      map[string]string
		links      map[string]string // link -> target
		opts       Options
		wantReason Reason
		wantErr    []string // substrings of the error
		wantDeps   []string // dependency names inside the package
		wantFiles  []string // files that must be in the package, under <name>/
		wantWarn   string   // substring of some warning
	}{
		{
			name:      "plain chart",
			files:     chartFiles("charts/foo", "foo", "1.2.3", ""),
			wantFiles: []string{"Chart.yaml", "values.yaml", "templates/configmap.yaml"},
		},
		{
			name:     "vendored directory dependency",
			files:    testenv.Merge(chartFiles("charts/foo", "foo", "1.2.3", dep("bar", "^1.0.0", "https://charts.example.org")), chartFiles("charts/foo/charts/bar", "bar", "1.0.1", "")),
			wantDeps: []string{"bar"},
		},
		{
			name:     "vendored tgz dependency",
			files:    testenv.Merge(chartFiles("charts/foo", "foo", "1.2.3", dep("bar", "~1.0", "https://charts.example.org")), map[string]string{"charts/foo/charts/bar-1.0.0.tgz": vendoredTgz(t, "bar", "1.0.0")}),
			wantDeps: []string{"bar"},
		},
		{
			name: "file dependency inside the tree, with its own file dependency",
			files: testenv.Merge(chartFiles("charts/foo", "foo", "1.2.3", dep("lib", ">=0.1.0", "file://../../libs/lib")),
				chartFiles("libs/lib", "lib", "0.2.0", dep("base", "*", "file://../base")),
				chartFiles("libs/base", "base", "3.0.0", "")),
			wantDeps:  []string{"lib"},
			wantFiles: []string{"charts/lib/Chart.yaml", "charts/lib/charts/base/Chart.yaml"},
		},
		{
			name:       "file dependency escaping the tree",
			files:      chartFiles("charts/foo", "foo", "1.2.3", dep("ext", "1.0.0", "file://"+filepath.Join(outside, "ext"))),
			wantReason: ReasonDependency,
			wantErr:    []string{`chart "foo" 1.2.3 (charts/foo)`, `"ext"`, "leaves the tree"},
		},
		{
			name:       "file dependency escaping the tree with ..",
			files:      chartFiles("charts/foo", "foo", "1.2.3", dep("ext", "1.0.0", "file://../../../../../../../../../../../../"+filepath.Join(outside, "ext"))),
			wantReason: ReasonDependency,
			wantErr:    []string{`"ext"`, "leaves the tree"},
		},
		{
			name:       "file dependency with the wrong version",
			files:      testenv.Merge(chartFiles("charts/foo", "foo", "1.2.3", dep("lib", "^2.0.0", "file://../lib")), chartFiles("charts/lib", "lib", "1.0.0", "")),
			wantReason: ReasonDependency,
			wantErr:    []string{`dependency "lib" version "^2.0.0"`, "found version 1.0.0"},
		},
		{
			name:       "file dependency cycle",
			files:      testenv.Merge(chartFiles("charts/foo", "foo", "1.2.3", dep("lib", "*", "file://../lib")), chartFiles("charts/lib", "lib", "1.0.0", dep("foo", "*", "file://../foo"))),
			wantReason: ReasonDependency,
			wantErr:    []string{"cycle"},
		},
		{
			name:       "missing dependency",
			files:      chartFiles("charts/foo", "foo", "1.2.3", dep("bar", "~1.2", "https://charts.example.org")),
			wantReason: ReasonDependency,
			wantErr:    []string{`chart "foo" 1.2.3 (charts/foo): missing dependency "bar" version "~1.2" repository "https://charts.example.org"`},
		},
		{
			name: "in-tree symlinks are followed",
			files: testenv.Merge(chartFiles("charts/foo", "foo", "1.2.3", ""), map[string]string{
				"common_templates/0.4/_helpers.tpl": `{{- define "foo.name" -}}foo{{- end -}}` + "\n",
				"shared/files/a.txt":                "shared\n",
			}),
			links: map[string]string{
				"charts/foo/templates/_helpers.tpl": "../../../common_templates/0.4/_helpers.tpl",
				"charts/foo/files":                  "../../shared/files",
			},
			wantFiles: []string{"templates/_helpers.tpl", "files/a.txt"},
		},
		{
			name:       "symlink out of the tree",
			files:      chartFiles("charts/foo", "foo", "1.2.3", ""),
			links:      map[string]string{"charts/foo/secret.txt": filepath.Join(outside, "secret.txt")},
			wantReason: ReasonSymlink,
			wantErr:    []string{"charts/foo/secret.txt -> " + filepath.Join(outside, "secret.txt"), "leaves the tree"},
		},
		{
			name:       "symlinked directory out of the tree",
			files:      chartFiles("charts/foo", "foo", "1.2.3", ""),
			links:      map[string]string{"charts/foo/ext": outside},
			wantReason: ReasonSymlink,
			wantErr:    []string{"charts/foo/ext -> " + outside},
		},
		{
			name:       "dangling symlink",
			files:      chartFiles("charts/foo", "foo", "1.2.3", ""),
			links:      map[string]string{"charts/foo/templates/gone.yaml": "../../nowhere.yaml"},
			wantReason: ReasonSymlink,
			wantErr:    []string{"charts/foo/templates/gone.yaml -> ../../nowhere.yaml does not resolve"},
		},
		{
			name:       "symlink loop",
			files:      chartFiles("charts/foo", "foo", "1.2.3", ""),
			links:      map[string]string{"charts/foo/templates/again": ".."},
			wantReason: ReasonSymlink,
			wantErr:    []string{"loops back"},
		},
		{
			name: "symlink out of the tree inside a file dependency",
			files: testenv.Merge(chartFiles("charts/foo", "foo", "1.2.3", dep("lib", "*", "file://../lib")),
				chartFiles("charts/lib", "lib", "1.0.0", "")),
			links:      map[string]string{"charts/lib/secret.txt": filepath.Join(outside, "secret.txt")},
			wantReason: ReasonSymlink,
			wantErr:    []string{"charts/lib/secret.txt"},
		},
		{
			name: ".helmignore is honoured",
			files: testenv.Merge(chartFiles("charts/foo", "foo", "1.2.3", ""), map[string]string{
				"charts/foo/.helmignore": "*.bak\n", "charts/foo/notes.bak": "x", "charts/foo/keep.txt": "x",
			}),
			wantFiles: []string{"keep.txt"},
		},
		{
			name:       "lint error fails a strict build",
			files:      testenv.Merge(chartFiles("charts/foo", "foo", "1.2.3", ""), map[string]string{"charts/foo/templates/broken.yaml": "kind: [\n"}),
			wantReason: ReasonLint,
			wantErr:    []string{"[ERROR] templates/broken.yaml"},
		},
		{
			name:      "lint error is a warning with LintWarn",
			files:     testenv.Merge(chartFiles("charts/foo", "foo", "1.2.3", ""), map[string]string{"charts/foo/templates/broken.yaml": "kind: [\n"}),
			opts:      Options{Lint: LintWarn},
			wantWarn:  "[ERROR] templates/broken.yaml",
			wantFiles: []string{"templates/broken.yaml"},
		},
		{
			name: "apiVersion v1 with requirements.yaml",
			dir:  "charts/old",
			files: testenv.Merge(map[string]string{
				"charts/old/Chart.yaml":        "apiVersion: v1\nname: old\nversion: 0.1.0\ndescription: old style\n",
				"charts/old/requirements.yaml": dep("bar", "1.0.0", "file://../bar"),
				"charts/old/values.yaml":       "a: 1\n",
			}, chartFiles("charts/bar", "bar", "1.0.0", "")),
			wantDeps:  []string{"bar"},
			wantFiles: []string{"requirements.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tt.files)
			for link, target := range tt.links {
				symlink(t, root, target, link)
			}
			charts, derrs := Discover(context.Background(), os.DirFS(root), []string{"charts/*"})
			if len(derrs) > 0 {
				t.Fatalf("Discover: %v", derrs)
			}
			dir := tt.dir
			if dir == "" {
				dir = "charts/foo"
			}
			var c Chart
			for _, found := range charts {
				if found.Dir == dir {
					c = found
				}
			}
			if c.Metadata == nil {
				t.Fatalf("Discover did not find %s: %v", dir, charts)
			}
			pkg, err := Build(context.Background(), os.DirFS(root), c, tt.opts)
			if tt.wantReason != "" {
				var perr *Error
				if !errors.As(err, &perr) {
					t.Fatalf("Build error = %v (%T), want *Error with reason %s", err, err, tt.wantReason)
				}
				t.Logf("error: %v", err)
				if perr.Reason != tt.wantReason {
					t.Errorf("reason = %s, want %s (error: %v)", perr.Reason, tt.wantReason, err)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				if strings.Contains(err.Error(), root) {
					t.Errorf("error %q names the checkout path %s", err, root)
				}
				return
			}
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if pkg.Filename() != c.Metadata.Name+"-"+c.Metadata.Version+".tgz" {
				t.Errorf("Filename() = %q", pkg.Filename())
			}
			loaded, err := loader.LoadArchive(bytes.NewReader(pkg.Data))
			if err != nil {
				t.Fatalf("helm loader rejects the package: %v", err)
			}
			var deps []string
			for _, d := range loaded.Dependencies() {
				deps = append(deps, d.Name())
			}
			sort.Strings(deps)
			if strings.Join(deps, ",") != strings.Join(tt.wantDeps, ",") {
				t.Errorf("dependencies = %v, want %v", deps, tt.wantDeps)
			}
			_, contents := tgzEntries(t, pkg.Data)
			for _, f := range tt.wantFiles {
				if _, ok := contents[c.Metadata.Name+"/"+f]; !ok {
					t.Errorf("package lacks %s/%s; has %v", c.Metadata.Name, f, keys(contents))
				}
			}
			if _, ok := contents[c.Metadata.Name+"/notes.bak"]; ok {
				t.Errorf("package holds a .helmignored file")
			}
			if tt.wantWarn != "" && !strings.Contains(strings.Join(pkg.Warnings, "\n"), tt.wantWarn) {
				t.Errorf("warnings %q lack %q", pkg.Warnings, tt.wantWarn)
			}
		})
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestBuildCancelled(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, chartFiles("charts/foo", "foo", "1.0.0", ""))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Build(ctx, os.DirFS(root), Chart{Dir: "charts/foo"}, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Build(cancelled) = %v, want context.Canceled", err)
	}
	var perr *Error
	if errors.As(err, &perr) {
		t.Fatalf("Build(cancelled) returned a chart error %v", perr)
	}
}

func TestBuildRejectsChangedChart(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, chartFiles("charts/foo", "foo", "1.0.0", ""))
	charts, _ := Discover(context.Background(), os.DirFS(root), []string{"charts/*"})
	writeTree(t, root, chartFiles("charts/foo", "foo", "1.0.1", ""))
	if _, err := Build(context.Background(), os.DirFS(root), charts[0], Options{}); err == nil {
		t.Fatal("Build of a chart whose version changed after discovery succeeded")
	}
	if _, err := Build(context.Background(), os.DirFS(root), Chart{Dir: "../x"}, Options{}); err == nil {
		t.Fatal("Build of a directory outside the tree succeeded")
	}
	if err := os.WriteFile(filepath.Join(root, "charts/foo/Chart.yaml"), []byte("name: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var perr *Error
	if _, err := Build(context.Background(), os.DirFS(root), Chart{Dir: "charts/foo"}, Options{}); !errors.As(err, &perr) || perr.Reason != ReasonChartfile {
		t.Fatalf("Build of a malformed chart = %v, want ReasonChartfile", err)
	}
}

func TestBuildRootChart(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, chartFiles(".", "top", "1.0.0", ""))
	charts, errs := Discover(context.Background(), os.DirFS(root), []string{"."})
	if len(errs) > 0 || len(charts) != 1 || charts[0].Dir != "." {
		t.Fatalf("Discover = %v, %v", charts, errs)
	}
	pkg, err := Build(context.Background(), os.DirFS(root), charts[0], Options{})
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Filename() != "top-1.0.0.tgz" {
		t.Errorf("Filename() = %q", pkg.Filename())
	}
}
