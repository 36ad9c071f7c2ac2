package packager

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/testenv"
)

// buildOne discovers charts/* under root and builds the chart in dir.
func buildOne(t *testing.T, root, dir string, opts Options) (*Package, error) {
	t.Helper()
	fsys := os.DirFS(root)
	charts, errs := Discover(context.Background(), fsys, []string{"charts/*", "."})
	for _, c := range charts {
		if c.Dir == dir {
			return Build(context.Background(), fsys, c, opts)
		}
	}
	t.Fatalf("Discover did not find %s: %v %v", dir, charts, errs)
	return nil, nil
}

// wantFail asserts err is an *Error of reason whose message holds every
// one of want.
func wantFail(t *testing.T, err error, reason Reason, want ...string) {
	t.Helper()
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("error = %v (%T), want *Error with reason %s", err, err, reason)
	}
	t.Logf("error: %v", err)
	if perr.Reason != reason {
		t.Errorf("reason = %s, want %s", perr.Reason, reason)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

// TestGitNeverPackaged: a chart at the root of a checkout, and symlinks
// into .git, never bring .git into a package (issue 9 case 2).
func TestGitNeverPackaged(t *testing.T) {
	build := func(gitConfig string) *Package {
		root := t.TempDir()
		writeTree(t, root, testenv.Merge(chartFiles(".", "top", "1.0.0", ""), map[string]string{
			".git/config": gitConfig, ".git/HEAD": "ref: refs/heads/main\n", ".GIT/x": "x", "sub/.Git/y": "y",
		}))
		pkg, err := buildOne(t, root, ".", Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, contents := tgzEntries(t, pkg.Data)
		for name := range contents {
			if strings.Contains(strings.ToLower(name), ".git/") {
				t.Errorf("package holds %s", name)
			}
		}
		return pkg
	}
	a, b := build("[core]\n\tsecret = one\n"), build("[remote]\n\turl = two\n")
	if a.Digest != b.Digest {
		t.Errorf("one commit, two checkouts, two digests: %s %s", a.Digest, b.Digest)
	}

	for _, link := range []string{"../../.git", "../../.git/config", "../../.GIT/config", "../../sub/../.git"} {
		root := t.TempDir()
		writeTree(t, root, testenv.Merge(chartFiles("charts/foo", "foo", "1.0.0", ""), map[string]string{".git/config": "secret", "sub/keep": ""}))
		symlink(t, root, link, "charts/foo/leak")
		_, err := buildOne(t, root, "charts/foo", Options{})
		wantFail(t, err, ReasonSymlink, "charts/foo/leak -> "+link, "points into .git")
	}
}

// TestLongNamesRefused: a package file name longer than a store can hold is
// refused in Discover, naming the chart (case 4).
func TestLongNamesRefused(t *testing.T) {
	root := t.TempDir()
	long := strings.Repeat("n", MaxFilenameBytes-len("-1.0.0.tgz"))
	writeTree(t, root, testenv.Merge(chartFiles("charts/fits", long, "1.0.0", ""), chartFiles("charts/long", long+"x", "1.0.0", "")))
	charts, errs := Discover(context.Background(), os.DirFS(root), []string{"charts/*"})
	if len(charts) != 1 || charts[0].Dir != "charts/fits" || len(charts[0].Metadata.Name) != MaxFilenameBytes-10 {
		t.Errorf("charts = %v", charts)
	}
	if len(errs) != 1 || errs[0].Dir != "charts/long" || errs[0].Reason != ReasonChartfile || !strings.Contains(errs[0].Error(), "too long") {
		t.Fatalf("errors = %v", errs)
	}
	t.Log(errs[0])
}

// TestLimits: each bound fails the chart alone with a "limit:" message
// (case 5).
func TestLimits(t *testing.T) {
	deep := "charts/foo/files/" + strings.Repeat("d/", 70) + "f.txt"
	many := map[string]string{}
	for i := range 300 {
		many[fmt.Sprintf("charts/foo/files/%03d.txt", i)] = "x"
	}
	tests := []struct {
		name  string
		files map[string]string
		lim   Limits
		want  string
	}{
		{"depth (default)", map[string]string{deep: "x"}, Limits{}, "more than 64 directory levels"},
		{"entries", many, Limits{MaxEntries: 200}, "more than 200 files and directories"},
		{"bytes", map[string]string{"charts/foo/files/big": strings.Repeat("x", 4096)}, Limits{MaxBytes: 4000}, "more than 4000 bytes"},
		{"time", many, Limits{MaxTime: time.Nanosecond}, "took longer than 1ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, testenv.Merge(chartFiles("charts/foo", "foo", "1.0.0", ""), tt.files))
			_, err := buildOne(t, root, "charts/foo", Options{Limits: tt.lim})
			wantFail(t, err, ReasonPackage, "limit: ", tt.want)
		})
	}
	t.Run("within the defaults", func(t *testing.T) {
		root := t.TempDir()
		writeTree(t, root, testenv.Merge(chartFiles("charts/foo", "foo", "1.0.0", ""), many, map[string]string{"charts/foo/files/" + strings.Repeat("d/", 60) + "f.txt": "x"}))
		if _, err := buildOne(t, root, "charts/foo", Options{}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSymlinkFanOut: a DAG of symlinks doubling what each level brings is
// measured once per directory: at 30 levels (2^30 paths) the chart fails on
// the entries limit in well under a second, instead of walking forever.
func TestSymlinkFanOut(t *testing.T) {
	for _, levels := range []int{8, 30} {
		root := t.TempDir()
		writeTree(t, root, testenv.Merge(chartFiles("charts/foo", "foo", "1.0.0", ""), map[string]string{"fan/l0/f.txt": "leaf\n"}))
		for i := 1; i <= levels; i++ {
			writeTree(t, root, map[string]string{fmt.Sprintf("fan/l%d/keep", i): ""})
			symlink(t, root, fmt.Sprintf("../l%d", i-1), fmt.Sprintf("fan/l%d/a", i))
			symlink(t, root, fmt.Sprintf("../l%d", i-1), fmt.Sprintf("fan/l%d/b", i))
		}
		symlink(t, root, fmt.Sprintf("../../fan/l%d", levels), "charts/foo/files")
		start := time.Now()
		pkg, err := buildOne(t, root, "charts/foo", Options{})
		t.Logf("%d levels: %v", levels, time.Since(start))
		if levels == 8 {
			if err != nil {
				t.Fatal(err)
			}
			_, contents := tgzEntries(t, pkg.Data)
			if n := len(contents); n != 3+256+(256-1) {
				t.Errorf("8 levels: %d entries, want %d", n, 3+256+255)
			}
			continue
		}
		wantFail(t, err, ReasonPackage, "limit: more than 20000 files and directories")
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("30 levels took %v", d)
		}
	}
}

// TestLFSPointers: an LFS pointer fails the chart, or is a warning with
// LFSWarn (case 14).
func TestLFSPointers(t *testing.T) {
	root := t.TempDir()
	pointer := "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n"
	writeTree(t, root, testenv.Merge(chartFiles("charts/foo", "foo", "1.0.0", ""), map[string]string{"charts/foo/files/big.bin": pointer}))
	_, err := buildOne(t, root, "charts/foo", Options{})
	wantFail(t, err, ReasonPackage, "charts/foo/files/big.bin is a Git LFS pointer")
	pkg, err := buildOne(t, root, "charts/foo", Options{LFSWarn: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(pkg.Warnings, "\n"), "charts/foo/files/big.bin: a Git LFS pointer") {
		t.Errorf("warnings = %q", pkg.Warnings)
	}
}

// listener accepts and counts connections on 127.0.0.1 until the test ends.
func listener(t *testing.T) (string, *atomic.Int64) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l.Addr().String(), &n
}

// TestSchemaRefsRefused: a values.schema.json referring outside itself, in
// the chart or a subchart, fails the chart before lint, and nothing
// connects (case 7).
func TestSchemaRefsRefused(t *testing.T) {
	addr, conns := listener(t)
	url := "http://" + addr + "/schema.json"
	schema := func(s string) string { return `{"type": "object", "properties": {"a": ` + s + `}}` }
	linter := testLinter(t)
	tests := []struct {
		name, file, content, want string
	}{
		{"http $ref", "charts/foo/values.schema.json", schema(`{"$ref": "` + url + `"}`), `"$ref" "` + url + `"`},
		{"relative $ref", "charts/foo/values.schema.json", schema(`{"$ref": "other.json"}`), `"$ref" "other.json"`},
		{"file $ref", "charts/foo/values.schema.json", schema(`{"$ref": "file:///etc/passwd"}`), "refers outside the file"},
		{"unknown $schema", "charts/foo/values.schema.json", `{"$schema": "` + url + `", "type": "object"}`, `"$schema"`},
		{"subchart $ref", "charts/foo/charts/sub/values.schema.json", schema(`{"$ref": "` + url + `#/x"}`), "foo/charts/sub/values.schema.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, testenv.Merge(chartFiles("charts/foo", "foo", "1.0.0", ""), chartFiles("charts/foo/charts/sub", "sub", "1.0.0", ""),
				map[string]string{tt.file: tt.content}))
			for _, opts := range []Options{{}, {Lint: LintWarn, Linter: linter}} {
				_, err := buildOne(t, root, "charts/foo", opts)
				wantFail(t, err, ReasonLint, tt.want)
			}
		})
	}
	t.Run("local references and built-in drafts are fine", func(t *testing.T) {
		root := t.TempDir()
		writeTree(t, root, testenv.Merge(chartFiles("charts/foo", "foo", "1.0.0", ""), map[string]string{"charts/foo/values.schema.json": `{
			"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
			"definitions": {"g": {"type": "string"}}, "properties": {"greeting": {"$ref": "#/definitions/g"}}}`}))
		if _, err := buildOne(t, root, "charts/foo", Options{Linter: linter}); err != nil {
			t.Fatal(err)
		}
	})
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections to %s", n, addr)
	}
}

// testLinter is a Linter caching in a temporary directory.
func testLinter(t *testing.T) *Linter {
	l, err := NewLinter(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return l
}
