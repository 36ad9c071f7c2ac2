package packager

import (
	"bytes"
	"compress/gzip"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/chartsync/chartsync/internal/testenv"
)

// typicalTree writes a tree with one chart made by helm's own scaffolding
// (what `helm create` writes), plus a vendored directory dependency, a
// vendored .tgz dependency, a .helmignore'd file and a plain file.
func typicalTree(t testing.TB, root string) Chart {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, "charts"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := chartutil.Create("web", filepath.Join(root, "charts"))
	if err != nil {
		t.Fatal(err)
	}
	chartYAML, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	libRoot := t.TempDir()
	writeTree(t, libRoot, chartFiles("c", "cache", "2.1.0", ""))
	lib, err := Build(context.Background(), os.DirFS(libRoot), Chart{Dir: "c"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, root, testenv.Merge(
		chartFiles("charts/web/charts/db", "db", "1.0.0", ""),
		map[string]string{
			"charts/web/Chart.yaml": string(chartYAML) + "dependencies:\n- name: db\n  version: 1.0.0\n  repository: https://charts.example.org\n" +
				"- name: cache\n  version: ^2.0.0\n  repository: https://charts.example.org\n",
			"charts/web/charts/cache-2.1.0.tgz": string(lib.Data),
			"charts/web/files/config.txt":       "key=value\n",
			"charts/web/scratch.swp":            "ignored by the default .helmignore\n",
		}))
	charts, errs := Discover(context.Background(), os.DirFS(root), []string{"charts/*"})
	if len(errs) > 0 || len(charts) != 1 {
		t.Fatalf("Discover = %v, %v", charts, errs)
	}
	return charts[0]
}

// copyTree copies src to dst with the given modes and a fixed odd mtime, to
// show that neither reaches the package.
func copyTree(t *testing.T, src, dst string, fileMode, dirMode fs.FileMode, mtime time.Time) {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			dirs = append(dirs, out)
			return os.MkdirAll(out, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(out, data, fileMode); err != nil {
			return err
		}
		if err := os.Chmod(out, fileMode); err != nil {
			return err
		}
		return os.Chtimes(out, mtime, mtime)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i], dirMode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dirs[i], mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBuildReproducible(t *testing.T) {
	ctx := context.Background()
	rootA := t.TempDir()
	c := typicalTree(t, rootA)
	first, err := Build(ctx, os.DirFS(rootA), c, Options{})
	if err != nil {
		t.Fatal(err)
	}

	// Another checkout path, other modes and mtimes.
	rootB := filepath.Join(t.TempDir(), "elsewhere", "checkout")
	copyTree(t, rootA, rootB, 0o600, 0o700, time.Date(2011, 3, 4, 5, 6, 7, 891, time.UTC))
	rootC := filepath.Join(t.TempDir(), "third")
	copyTree(t, rootA, rootC, 0o755, 0o755, time.Now().Add(-time.Hour))

	// Later in time, across a second boundary.
	time.Sleep(1100 * time.Millisecond)
	again, err := Build(ctx, os.DirFS(rootA), c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Data, again.Data) || first.Digest != again.Digest {
		t.Errorf("two builds of one tree differ: %s vs %s", first.Digest, again.Digest)
	}
	for _, root := range []string{rootB, rootC} {
		other, err := Build(ctx, os.DirFS(root), c, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first.Data, other.Data) {
			t.Errorf("build from %s differs: %s vs %s", root, other.Digest, first.Digest)
		}
	}

	// The entries carry no time, owner or mode of the machine.
	hdrs, _ := tgzEntries(t, first.Data)
	if len(hdrs) == 0 || hdrs[0].Name != "web/Chart.yaml" {
		t.Fatalf("first entry is not web/Chart.yaml: %v", hdrs)
	}
	for _, h := range hdrs {
		if h.Mode != 0o644 || !h.ModTime.Equal(time.Unix(0, 0)) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("entry %s: mode %o mtime %v uid %d gid %d uname %q gname %q", h.Name, h.Mode, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname)
		}
	}
	zr, err := gzip.NewReader(bytes.NewReader(first.Data))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header name %q mtime %v", zr.Name, zr.ModTime)
	}
}

// TestPackageMatchesHelm checks the package holds exactly the files, with
// exactly the contents, that `helm package` writes for the same chart, and
// that the real helm CLI accepts it.
func TestPackageMatchesHelm(t *testing.T) {
	helm := testenv.Tool(t, "helm")
	root := t.TempDir()
	c := typicalTree(t, root)
	pkg, err := Build(context.Background(), os.DirFS(root), c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	ours := filepath.Join(out, pkg.Filename())
	if err := os.WriteFile(ours, pkg.Data, 0o644); err != nil {
		t.Fatal(err)
	}

	helmOut := t.TempDir()
	run(t, helm, "package", filepath.Join(root, "charts", "web"), "--destination", helmOut)
	helmData, err := os.ReadFile(filepath.Join(helmOut, pkg.Filename()))
	if err != nil {
		t.Fatalf("helm package did not write %s: %v", pkg.Filename(), err)
	}
	_, want := tgzEntries(t, helmData)
	_, got := tgzEntries(t, pkg.Data)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("package entries differ from helm's:\n ours %v\nhelm's %v", keys(got), keys(want))
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s differs:\n ours %q\nhelm's %q", k, got[k], v)
			}
		}
	}

	show := run(t, helm, "show", "chart", ours)
	if !strings.Contains(show, "name: web") || !strings.Contains(show, "version: 0.1.0") {
		t.Errorf("helm show chart:\n%s", show)
	}
	tmpl := run(t, helm, "template", "rel", ours)
	for _, want := range []string{"kind: Deployment", "name: rel-web", "name: rel-db", "name: rel-cache"} {
		if !strings.Contains(tmpl, want) {
			t.Errorf("helm template output lacks %q:\n%s", want, tmpl)
		}
	}
	run(t, helm, "lint", ours)

	// What `helm pull --untar` does: unpack, then use the directory.
	untar := t.TempDir()
	run(t, testenv.Tool(t, "tar"), "-xzf", ours, "-C", untar)
	run(t, helm, "lint", filepath.Join(untar, "web"))
	if again := run(t, helm, "template", "rel", filepath.Join(untar, "web")); again != tmpl {
		t.Errorf("helm template of the unpacked chart differs from the package's")
	}
}

func TestLoadArchive(t *testing.T) {
	root := t.TempDir()
	c := typicalTree(t, root)
	pkg, err := Build(context.Background(), os.DirFS(root), c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	md, err := LoadArchive(pkg.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(md, pkg.Metadata) {
		t.Errorf("LoadArchive = %+v, want %+v", md, pkg.Metadata)
	}
	if Filename(md.Name, md.Version) != "web-0.1.0.tgz" || len(md.Dependencies) != 2 {
		t.Errorf("LoadArchive = %s %s with %d dependencies", md.Name, md.Version, len(md.Dependencies))
	}

	var noChart bytes.Buffer
	zw := gzip.NewWriter(&noChart)
	if _, err := zw.Write(make([]byte, 1024)); err != nil { // an empty tar
		t.Fatal(err)
	}
	zw.Close()
	for name, data := range map[string][]byte{
		"empty":     nil,
		"not gzip":  []byte("apiVersion: v2\nname: x\nversion: 1.0.0\n"),
		"truncated": pkg.Data[:len(pkg.Data)/2],
		"no chart":  noChart.Bytes(),
	} {
		if md, err := LoadArchive(data); err == nil {
			t.Errorf("LoadArchive(%s) = %+v, want an error", name, md)
		}
	}
}

func BenchmarkBuild(b *testing.B) {
	root := b.TempDir()
	c := typicalTree(b, root)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(ctx, os.DirFS(root), c, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildLintWorker is BenchmarkBuild with lint in a child process
// and no cached verdict: the price of the bound.
func BenchmarkBuildLintWorker(b *testing.B) {
	root := b.TempDir()
	c := typicalTree(b, root)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l, err := NewLinter("")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Build(ctx, os.DirFS(root), c, Options{Linter: l}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildLintCached is BenchmarkBuild with the verdict cached: what
// an unchanged chart costs.
func BenchmarkBuildLintCached(b *testing.B) {
	root := b.TempDir()
	c := typicalTree(b, root)
	ctx := context.Background()
	l, err := NewLinter("")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(ctx, os.DirFS(root), c, Options{Linter: l}); err != nil {
			b.Fatal(err)
		}
	}
}
