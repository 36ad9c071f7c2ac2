package gitsrc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/http/cgi"
	"net/http/httptest"
	"path/filepath"
	"testing"
)

// Size of the generated benchmark repository (issue 10: at least 10,000
// commits and 100 charts with vendored subcharts and symlinks, ~2,000 files).
const (
	benchCommits = 10000
	benchCharts  = 100
	benchFiles   = 17 // per chart, plus a vendored subchart and a symlink
)

// generatedRepo makes a repository of benchCommits commits in a temporary
// directory with git fast-import: the first commit adds benchCharts charts,
// each later one bumps one chart's version.
func generatedRepo(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	var in bytes.Buffer
	w := bufio.NewWriter(&in)
	blob := func(mode, path, content string) {
		fmt.Fprintf(w, "M %s inline %s\ndata %d\n%s\n", mode, path, len(content), content)
	}
	for i := 1; i <= benchCommits; i++ {
		msg := fmt.Sprintf("commit %d", i)
		fmt.Fprintf(w, "commit refs/heads/master\nmark :%d\ncommitter Bench <bench@example.org> %d +0000\ndata %d\n%s\n",
			i, 1700000000+i*60, len(msg), msg)
		if i > 1 {
			fmt.Fprintf(w, "from :%d\n", i-1)
		}
		if i == 1 {
			for c := range benchCharts {
				d := fmt.Sprintf("charts/c%03d", c)
				blob("100644", d+"/Chart.yaml", fmt.Sprintf("apiVersion: v2\nname: c%03d\nversion: 0.0.1\n", c))
				blob("100644", d+"/values.yaml", fmt.Sprintf("replicas: %d\n", c))
				for f := range benchFiles - 3 {
					blob("100644", fmt.Sprintf("%s/templates/t%02d.yaml", d, f),
						fmt.Sprintf("kind: ConfigMap\nmetadata:\n  name: c%03d-%02d\ndata:\n  x: \"{{ .Values.replicas }}\"\n", c, f))
				}
				blob("100644", d+"/charts/sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 1.0.0\n")
				blob("120000", d+"/templates/_common.tpl", "../../common/_common.tpl")
			}
			blob("100644", "charts/common/_common.tpl", "{{- define \"common\" }}{{ end }}\n")
			continue
		}
		c := i % benchCharts
		blob("100644", fmt.Sprintf("charts/c%03d/Chart.yaml", c),
			fmt.Sprintf("apiVersion: v2\nname: c%03d\nversion: 0.%d.0\n", c, i))
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	runGit(b, dir, "init", "-q", "-b", "master")
	gitStdinRaw(b, dir, in.Bytes(), "fast-import", "--quiet")
	runGit(b, dir, "repack", "-q", "-a", "-d")
	return dir
}

// httpURL serves repo with the real git http-backend on 127.0.0.1.
func httpURL(b *testing.B, repo string) string {
	b.Helper()
	execPath := runGit(b, "", "--exec-path")
	h := &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Dir(repo), "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"},
	}
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv.URL + "/" + filepath.Base(repo)
}

// BenchmarkSyncNoChange measures a Sync with nothing new upstream, on the
// generated repository: what every no-op cycle pays for git. Compare
// BenchmarkGitCLINoChange.
func BenchmarkSyncNoChange(b *testing.B) {
	repo := generatedRepo(b)
	for _, tc := range []struct{ name, url string }{
		{"local", repo},
		{"http", httpURL(b, repo)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			opts := Options{URL: tc.url, Branch: "master", Dir: filepath.Join(b.TempDir(), "repo")}
			if _, err := Sync(context.Background(), opts); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := Sync(context.Background(), opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGitCLINoChange is the git CLI doing the equivalent of a no-op
// Sync: git fetch of the branch into a bare clone, then git rev-parse.
func BenchmarkGitCLINoChange(b *testing.B) {
	repo := generatedRepo(b)
	for _, tc := range []struct{ name, url string }{
		{"local", repo},
		{"http", httpURL(b, repo)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "repo")
			runGit(b, "", "clone", "-q", "--bare", "--single-branch", "-b", "master", tc.url, dir)
			for b.Loop() {
				runGit(b, dir, "fetch", "-q", "origin", "+refs/heads/master:refs/heads/master")
				runGit(b, dir, "rev-parse", "master")
			}
		})
	}
}

// BenchmarkFirstClone measures the first Sync of the generated repository,
// in a child process, and reports its peak RSS next to the size of the
// upstream's pack files (issue 10: within twice that size).
func BenchmarkFirstClone(b *testing.B) {
	repo := generatedRepo(b)
	packMiB := objectsMiB(b, filepath.Join(repo, ".git"))
	for _, tc := range []struct{ name, url string }{
		{"local", repo},
		{"http", httpURL(b, repo)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var rss float64
			for b.Loop() {
				rss = max(rss, childPeakRSS(b, tc.url, filepath.Join(b.TempDir(), "repo")))
			}
			b.ReportMetric(rss, "peak-RSS-MiB")
			b.ReportMetric(packMiB, "upstream-objects-MiB")
		})
	}
}

// BenchmarkGitCLIFirstClone is the git CLI's bare clone of the branch, for
// comparison with BenchmarkFirstClone.
func BenchmarkGitCLIFirstClone(b *testing.B) {
	repo := generatedRepo(b)
	for _, tc := range []struct{ name, url string }{
		{"local", "file://" + repo},
		{"http", httpURL(b, repo)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				runGit(b, "", "clone", "-q", "--bare", "--single-branch", "--no-tags", "-b", "master", tc.url, filepath.Join(b.TempDir(), "repo"))
			}
		})
	}
}

// BenchmarkTreeFSReadChart reads one chart of a fresh Tree (every file and
// the symlink's target), as the packager does.
func BenchmarkTreeFSReadChart(b *testing.B) {
	repo := generatedRepo(b)
	dir := filepath.Join(b.TempDir(), "repo")
	if _, err := Sync(context.Background(), Options{URL: repo, Branch: "master", Dir: dir}); err != nil {
		b.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for b.Loop() {
		tree, err := r.Tree("master")
		if err != nil {
			b.Fatal(err)
		}
		err = fs.WalkDir(tree.FS, "charts/c042", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if d.Type() == fs.ModeSymlink {
				_, err = fs.ReadLink(tree.FS, p)
				return err
			}
			_, err = fs.ReadFile(tree.FS, p)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFirstParents lists the whole first-parent history.
func BenchmarkFirstParents(b *testing.B) {
	repo := generatedRepo(b)
	dir := filepath.Join(b.TempDir(), "repo")
	if _, err := Sync(context.Background(), Options{URL: repo, Branch: "master", Dir: dir}); err != nil {
		b.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for b.Loop() {
		cs, err := r.FirstParents(context.Background(), "", "master")
		if err != nil {
			b.Fatal(err)
		}
		if len(cs) != benchCommits {
			b.Fatalf("%d commits, want %d", len(cs), benchCommits)
		}
	}
}

// BenchmarkIndexPack indexes a full pack of the generated repository (what
// a first clone over http(s) or ssh receives), as received from a server.
func BenchmarkIndexPack(b *testing.B) {
	repo := generatedRepo(b)
	pack := []byte(gitStdinRaw(b, repo, []byte("master\n"), "pack-objects", "-q", "--stdout", "--revs", "--delta-base-offset"))
	b.SetBytes(int64(len(pack)))
	for b.Loop() {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "repo")
		runGit(b, "", "init", "-q", "--bare", dir)
		b.StartTimer()
		w, err := packStorage{newStorage(dir), context.Background()}.PackfileWriter()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(pack); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTreeProblems checks a fresh Tree for entries git would refuse:
// every tree object of the commit is read.
func BenchmarkTreeProblems(b *testing.B) {
	repo := generatedRepo(b)
	dir := filepath.Join(b.TempDir(), "repo")
	if _, err := Sync(context.Background(), Options{URL: repo, Branch: "master", Dir: dir}); err != nil {
		b.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for b.Loop() {
		tree, err := r.Tree("master")
		if err != nil {
			b.Fatal(err)
		}
		if p := tree.Problems(); p != nil {
			b.Fatal(p)
		}
	}
}
