package hostile

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"strings"
	"testing"

	"github.com/chartsync/chartsync/internal/testenv"
)

// tgz returns a gzipped tar of entries (name -> content), in the given order.
func tgz(t *testing.T, entries ...[2]string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e[0], Mode: 0o644, Size: int64(len(e[1]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e[1])); err != nil {
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

// TestEscapingSymlinks: a chart with a symlink out of the repository fails
// alone with the symlink reason; the good chart is published; nothing of
// the bad one is stored.
func TestEscapingSymlinks(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"),
		testenv.Chart("charts/abs", "abs", "1.0.0"), map[string]string{"charts/abs/templates/passwd.yaml": "-> /etc/passwd"},
		testenv.Chart("charts/rel", "rel", "1.0.0"), map[string]string{"charts/rel/files": "-> ../../../../../../../../etc"},
		testenv.Chart("charts/chartfile", "chartfile", "1.0.0"), map[string]string{"charts/chartfile/Chart.yaml": "-> /etc/hostname"},
	))
	r.Commit("escaping symlinks")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	res := s.mustRun(1, "run", "--once")
	res.published(t, "charts/ok")
	res.failed(t, "charts/abs", "symlink", "charts/abs/templates/passwd.yaml")
	res.failed(t, "charts/rel", "symlink", "charts/rel/files")
	res.failed(t, "charts/chartfile", "symlink", "charts/chartfile/Chart.yaml")
	res.only(t, "charts/ok", "charts/abs", "charts/rel", "charts/chartfile")
	want(t, "index", s.indexed(), "ok-1.0.0")
	want(t, "store", s.storedNames(), "ok-1.0.0.tgz")
}

// TestSymlinkLoops: a link to an ancestor and a pair of links pointing at
// each other fail their charts alone.
func TestSymlinkLoops(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"),
		testenv.Chart("charts/up", "up", "1.0.0"), map[string]string{"charts/up/templates/again": "-> .."},
		testenv.Chart("charts/pair", "pair", "1.0.0"), map[string]string{"charts/pair/a": "-> b", "charts/pair/b": "-> a"},
		testenv.Chart("charts/self", "self", "1.0.0"), map[string]string{"charts/self/me": "-> me"},
	))
	r.Commit("loops")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	res := s.mustRun(1, "run", "--once")
	res.published(t, "charts/ok")
	res.failed(t, "charts/up", "symlink", "charts/up/templates/again")
	res.failed(t, "charts/pair", "symlink", "charts/pair/")
	res.failed(t, "charts/self", "symlink", "charts/self/me")
	res.only(t, "charts/ok", "charts/up", "charts/pair", "charts/self")
	want(t, "index", s.indexed(), "ok-1.0.0")
	if res.elapsed.Seconds() > 60 {
		t.Errorf("took %v", res.elapsed)
	}
}

// TestTarTraversalInVendoredTgz: a vendored .tgz whose entries climb out of
// its chart fails the chart that vendors it; nothing is written outside.
func TestTarTraversalInVendoredTgz(t *testing.T) {
	r := newRepo(t)
	evil := tgz(t,
		[2]string{"sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 1.0.0\n"},
		[2]string{"sub/../../../../../../tmp/chartsync-hostile-pwned", "pwned\n"},
	)
	abs := tgz(t,
		[2]string{"/sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 1.0.0\n"},
	)
	r.Write(testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"),
		testenv.Chart("charts/dotdot", "dotdot", "1.0.0", "dependencies:\n- name: sub\n  version: 1.0.0"), map[string]string{"charts/dotdot/charts/sub-1.0.0.tgz": evil},
		testenv.Chart("charts/abs", "abs", "1.0.0", "dependencies:\n- name: sub\n  version: 1.0.0"), map[string]string{"charts/abs/charts/sub-1.0.0.tgz": abs},
	))
	r.Commit("tar traversal")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	res := s.mustRun(1, "run", "--once")
	res.published(t, "charts/ok")
	res.failed(t, "charts/dotdot", "package", "illegally references parent directory")
	res.failed(t, "charts/abs", "package")
	res.only(t, "charts/ok", "charts/dotdot", "charts/abs")
	want(t, "index", s.indexed(), "ok-1.0.0")
	want(t, "store", s.storedNames(), "ok-1.0.0.tgz")
}

// TestGzipBomb: a vendored .tgz that inflates to 1 GiB fails its chart
// quickly and in bounded memory.
func TestGzipBomb(t *testing.T) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bomb/Chart.yaml", Mode: 0o644, Size: 45})
	tw.Write([]byte("apiVersion: v2\nname: bomb\nversion: 1.0.0\n#..\n"))
	const size = 1 << 30
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bomb/zeros", Mode: 0o644, Size: size})
	zero := make([]byte, 1<<20)
	for i := 0; i < size/len(zero); i++ {
		tw.Write(zero)
	}
	tw.Close()
	zw.Close()
	t.Logf("bomb: %d bytes compressed, %d inflated", buf.Len(), size)

	r := newRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"),
		testenv.Chart("charts/boom", "boom", "1.0.0", "dependencies:\n- name: bomb\n  version: 1.0.0"), map[string]string{"charts/boom/charts/bomb-1.0.0.tgz": buf.String()},
	))
	r.Commit("gzip bomb")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	res := s.mustRun(1, "run", "--once")
	res.published(t, "charts/ok")
	res.failed(t, "charts/boom", "package", "maximum")
	res.only(t, "charts/ok", "charts/boom")
	want(t, "index", s.indexed(), "ok-1.0.0")
	t.Logf("gzip bomb: %v, peak RSS %d MB", res.elapsed, res.maxRSS>>20)
	if res.maxRSS > 1<<30 {
		t.Errorf("peak RSS %d MB, want under 1024 MB", res.maxRSS>>20)
	}
	if res.elapsed.Seconds() > 120 {
		t.Errorf("took %v, want under 120 s", res.elapsed)
	}
}

// laughs is a billion-laughs YAML document under key.
func laughs(key string) string {
	var b strings.Builder
	b.WriteString("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		b.WriteString(n + ": &" + n + " [")
		for i := 0; i < 9; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
		prev = n
	}
	b.WriteString(key + ": *i\n")
	return b.String()
}

// TestYAMLBombs: billion-laughs documents in Chart.yaml and values.yaml fail
// their charts alone, fast and in bounded memory.
func TestYAMLBombs(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"),
		map[string]string{"charts/chartbomb/Chart.yaml": "apiVersion: v2\nname: chartbomb\nversion: 1.0.0\n" + laughs("keywords")},
		testenv.Chart("charts/valuesbomb", "valuesbomb", "1.0.0"), map[string]string{"charts/valuesbomb/values.yaml": laughs("x")},
	))
	r.Commit("yaml bombs")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	res := s.mustRun(1, "run", "--once")
	res.published(t, "charts/ok")
	res.failed(t, "charts/chartbomb", "chartfile")
	res.failed(t, "charts/valuesbomb", "package")
	res.only(t, "charts/ok", "charts/chartbomb", "charts/valuesbomb")
	want(t, "index", s.indexed(), "ok-1.0.0")
	t.Logf("yaml bombs: %v, peak RSS %d MB", res.elapsed, res.maxRSS>>20)
	if res.maxRSS > 1<<30 || res.elapsed.Seconds() > 120 {
		t.Errorf("took %v and %d MB, want under 120 s and 1024 MB", res.elapsed, res.maxRSS>>20)
	}
}

// TestBadNames: names that are not one safe path segment, YAML 1.1 booleans
// and non-semver versions fail their charts alone.
func TestBadNames(t *testing.T) {
	r := newRepo(t)
	r.Write(testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"),
		testenv.Chart("charts/slash", "../../etc/evil", "1.0.0"),
		testenv.Chart("charts/dots", "a..b", "1.0.0"),
		testenv.Chart("charts/bool", "y", "1.0.0"),
		testenv.Chart("charts/num", "123", "1.0.0"),
		testenv.Chart("charts/float", "float", "1.0"),
		testenv.Chart("charts/semver", "semver", "v1.0.0"),
		testenv.Chart("charts/slashver", "slashver", "1.0.0-a/b"),
	))
	r.Commit("bad names")
	s := newSite(t, r, []string{"charts/*"}, "", "")
	res := s.mustRun(1, "run", "--once")
	res.published(t, "charts/ok")
	res.failed(t, "charts/slash", "chartfile", "invalid chart name")
	res.failed(t, "charts/dots", "chartfile", "invalid chart name")
	res.failed(t, "charts/bool", "chartfile", "boolean")
	res.failed(t, "charts/num", "chartfile", "number")
	res.failed(t, "charts/float", "version", "number")
	res.failed(t, "charts/semver", "version", "semver")
	res.failed(t, "charts/slashver", "version", "semver")
	res.only(t, "charts/ok", "charts/slash", "charts/dots", "charts/bool", "charts/num", "charts/float", "charts/semver", "charts/slashver")
	want(t, "index", s.indexed(), "ok-1.0.0")
	want(t, "store", s.storedNames(), "ok-1.0.0.tgz")
}
