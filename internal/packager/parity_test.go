package packager

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/chartsync/chartsync/internal/testenv"
)

// TestLoadDirMatchesHelm: for trees whose symlinks stay inside, the files
// read from the fs.FS are exactly those helm's loader.LoadDir reads from the
// checkout: same names, same bytes, same order, .helmignore quirks included.
func TestLoadDirMatchesHelm(t *testing.T) {
	trees := map[string]map[string]string{
		"negation quirk": {".helmignore": "*.txt\n!keep.txt\n", "keep.txt": "k", "other.txt": "o", "x.yaml": "x"},
		"dir rules":      {".helmignore": "docs/\n/top.md\nsub/*.md\n", "docs/a.md": "a", "top.md": "t", "a/top.md": "t", "sub/b.md": "b", "sub/c.txt": "c"},
		"bom":            {".helmignore": "\xEF\xBB\xBF*.bak\n", "a.bak": "a", "b.yaml": "\xEF\xBB\xBFb: 1\n"},
		"hidden":         {"templates/.x": "x", "templates/sub/.y": "y", ".z": "z"},
		"unicode":        {"données/été.txt": "é", "日本語.yaml": "k: v\n"},
	}
	for name, files := range trees {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, testenv.Merge(chartFiles("c", "c", "1.0.0", ""), prefixed("c/", files)))
			compareLoad(t, root, "c")
		})
	}
	t.Run("symlinks", func(t *testing.T) {
		root := t.TempDir()
		writeTree(t, root, testenv.Merge(chartFiles("c", "c", "1.0.0", ""), map[string]string{"shared/ignore": "*.bak\n", "shared/d/a.bak": "a", "shared/d/b.txt": "b", "shared/f.txt": "f"}))
		symlink(t, root, "../shared/ignore", "c/.helmignore")
		symlink(t, root, "../shared/d", "c/d")
		symlink(t, root, "../shared/f.txt", "c/f.txt")
		symlink(t, root, "d", "c/e")
		compareLoad(t, root, "c")
	})
	t.Run("golden tree", func(t *testing.T) {
		root := t.TempDir()
		goldenTree(t, root)
		for _, dir := range []string{"charts/plain", "charts/vendored", "charts/links", "charts/ignore", "charts/unicode", "charts/exec", "libs/common"} {
			compareLoad(t, root, dir)
		}
	})
}

func prefixed(p string, files map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range files {
		out[p+k] = v
	}
	return out
}

// compareLoad compares what loadDir and helm's LoadDir read from dir.
func compareLoad(t *testing.T, root, dir string) {
	t.Helper()
	files, _, err := newTree(os.DirFS(root), Limits{}).loadDir(context.Background(), dir, false)
	if err != nil {
		t.Fatalf("%s: loadDir: %v", dir, err)
	}
	ours, oerr := loader.LoadFiles(files)
	helms, herr := loader.LoadDir(filepath.Join(root, filepath.FromSlash(dir)))
	if oerr != nil || herr != nil {
		if oerr == nil || herr == nil || oerr.Error() != herr.Error() {
			t.Errorf("%s: LoadFiles: %v; helm's LoadDir: %v", dir, oerr, herr)
		}
		return
	}
	if !reflect.DeepEqual(ours.Raw, helms.Raw) {
		var a, b []string
		for _, f := range ours.Raw {
			a = append(a, f.Name)
		}
		for _, f := range helms.Raw {
			b = append(b, f.Name)
		}
		t.Errorf("%s: files differ:\n ours %q\nhelm's %q", dir, a, b)
	}
	oa, err := writeArchive(ours)
	if err != nil {
		t.Fatal(err)
	}
	ha, err := writeArchive(helms)
	if err != nil {
		t.Fatal(err)
	}
	if string(oa) != string(ha) {
		t.Errorf("%s: packages differ", dir)
	}
}
