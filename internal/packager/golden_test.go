package packager

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/testenv"
)

// goldenDigests pins the sha256 of the packages of the reference charts in
// goldenTree, as chartsync has built them since its first release. A change
// here changes the bytes of packages already published: it is a bug, never
// an update of the table.
var goldenDigests = map[string]string{
	"charts/exec":     "17d9656005e36279f3733c493d7ecc92bc6ca9a01a273c00a471e94cb694f71d",
	"charts/filedep":  "d1d39a59388b3f6cf2cd2ebe53b6880d7b034d8e1074a75cca87a270c5451a68",
	"charts/ignore":   "c02a074f37340dac0ca738f9c4250f6add2b090bf7e6df4e620eb18cfacc7e55",
	"charts/links":    "3530ce7a66e9379ddc92f8d6c07992fce65d1762302367a01522beb1208fd91d",
	"charts/plain":    "88969172c8d811abd80ad05b27766c60765a40e3c173153ac5c5bbd7caebf4fa",
	"charts/unicode":  "dd2b1b3fae0c19f07997b5376c13030768eef575c91d980d545fbde3f6f99cd9",
	"charts/vendored": "6f5073feb4e8d89cf07a4b88243eedc810c392c1417aab7bdf00d6aa7528547f",
}

// goldenTypical pins the package of typicalTree (helm create's scaffold of
// helm v3.22.0 with vendored subcharts).
const goldenTypical = "419c8386662d9c6bfb02e6d76a01f19ea019056b859a794632947c8e24f9c54c"

// handTgz returns a .tgz holding files (path -> content) with fixed headers,
// made without the packager, so that a vendored archive is the same input
// whatever the packager does.
func handTgz(t testing.TB, files [][2]string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: f[0], Mode: 0o644, Size: int64(len(f[1])), ModTime: time.Unix(1e9, 0)}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// goldenTree writes the reference charts under root: one per feature that
// shapes a package's bytes.
func goldenTree(t testing.TB, root string) {
	t.Helper()
	dep := func(name, version, repo string) string {
		return "dependencies:\n- name: " + name + "\n  version: \"" + version + "\"\n  repository: " + repo + "\n"
	}
	writeTree(t, root, testenv.Merge(
		chartFiles("charts/plain", "plain", "1.0.0", "keywords:\n- a\n- b\nmaintainers:\n- name: me\n  email: me@example.org\n"),
		map[string]string{"charts/plain/templates/NOTES.txt": "hello {{ .Release.Name }}\n", "charts/plain/README.md": "\xEF\xBB\xBF# plain, with a BOM\n"},

		chartFiles("charts/vendored", "vendored", "2.0.0", dep("sub", "1.0.0", "https://charts.example.org")+"- name: lib\n  version: \"~1.0\"\n  repository: https://charts.example.org\n"),
		chartFiles("charts/vendored/charts/sub", "sub", "1.0.0", ""),
		map[string]string{
			"charts/vendored/charts/sub/files/x.txt": "x\n",
			"charts/vendored/charts/lib-1.0.0.tgz": handTgz(t, [][2]string{
				{"lib/Chart.yaml", "apiVersion: v2\nname: lib\nversion: 1.0.0\ntype: library\n"},
				{"lib/templates/_lib.tpl", "{{- define \"lib.x\" -}}x{{- end -}}\n"},
				{"lib/values.yaml", "a: 1\n"},
			}),
		},

		chartFiles("charts/filedep", "filedep", "0.3.0", dep("common", "^0.1.0", "file://../../libs/common")),
		chartFiles("libs/common", "common", "0.1.2", ""),
		map[string]string{"libs/common/files/c.txt": "common\n"},

		chartFiles("charts/links", "links", "1.1.0", ""),
		map[string]string{
			"shared/_helpers.tpl":    "{{- define \"links.name\" -}}links{{- end -}}\n",
			"shared/conf/a.conf":     "a=1\n",
			"shared/conf/sub/b.conf": "b=2\n",
		},

		chartFiles("charts/ignore", "ignore", "0.0.1", ""),
		map[string]string{
			"charts/ignore/.helmignore":                "# comment\n*.bak\n/top.txt\nsecret/\ndocs/*.md\n.git\n",
			"charts/ignore/a.bak":                      "x",
			"charts/ignore/top.txt":                    "x",
			"charts/ignore/nested/top.txt":             "kept\n",
			"charts/ignore/secret/key":                 "x",
			"charts/ignore/docs/a.md":                  "x",
			"charts/ignore/docs/a.txt":                 "kept\n",
			"charts/ignore/templates/.hidden":          "x",
			"charts/ignore/templates/sub/.hidden.yaml": "# kept: the default rule ignores only direct children\n",
		},

		chartFiles("charts/unicode", "unicode", "1.0.0-rc.1+build.5", ""),
		map[string]string{
			"charts/unicode/files/données/été.txt":  "été\n",
			"charts/unicode/files/日本語.yaml":         "k: v\n",
			"charts/unicode/files/" + longName(120): "long\n",
		},

		chartFiles("charts/exec", "exec", "3.0.0", ""),
	))
	symlink(t, root, "../../../shared/_helpers.tpl", "charts/links/templates/_helpers.tpl")
	symlink(t, root, "../../shared/conf", "charts/links/conf")
	symlink(t, root, "values.yaml", "charts/links/values-copy.yaml")
	for name, content := range map[string]string{"charts/exec/scripts/run.sh": "#!/bin/sh\necho hi\n", "charts/exec/scripts/plain.txt": "p\n"} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func longName(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b) + ".txt"
}

// TestGoldenDigests builds every reference chart and compares its digest
// with the pinned one: packages stay byte-identical across rewrites.
func TestGoldenDigests(t *testing.T) {
	root := t.TempDir()
	goldenTree(t, root)
	charts, errs := Discover(context.Background(), os.DirFS(root), []string{"charts/*"})
	if len(errs) > 0 {
		t.Fatalf("Discover: %v", errs)
	}
	got := map[string]string{}
	for _, c := range charts {
		pkg, err := Build(context.Background(), os.DirFS(root), c, Options{})
		if err != nil {
			t.Fatalf("Build %s: %v", c.Dir, err)
		}
		got[c.Dir] = pkg.Digest
		_, contents := tgzEntries(t, pkg.Data)
		t.Logf("%s %s %v", c.Dir, pkg.Digest, keys(contents))
	}
	if len(got) != 7 {
		t.Errorf("built %d charts, want 7", len(got))
	}
	for dir, want := range goldenDigests {
		if got[dir] != want {
			t.Errorf("%s: digest %s, want %s", dir, got[dir], want)
		}
	}
	if len(goldenDigests) != len(got) {
		t.Errorf("golden table has %d entries, built %d: %q", len(goldenDigests), len(got), got)
	}
}

func TestGoldenTypical(t *testing.T) {
	root := t.TempDir()
	c := typicalTree(t, root)
	pkg, err := Build(context.Background(), os.DirFS(root), c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Digest != goldenTypical {
		t.Errorf("digest %s, want %s", pkg.Digest, goldenTypical)
	}
}
