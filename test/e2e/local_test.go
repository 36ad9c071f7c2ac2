package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/repo"

	"github.com/chartsync/chartsync/internal/testenv"
)

// fixture is a repository with the kinds of chart a real one has: a
// vendored subchart directory, a vendored .tgz dependency, a file://
// dependency and an in-tree symlink.
func fixture(t *testing.T) *gitRepo {
	r := newGitRepo(t)
	h := newHelm(t)
	// A .tgz dependency, packaged by helm itself, vendored into web/charts.
	src := t.TempDir()
	files := testenv.Chart("dbchart", "db", "2.0.0")
	for name, content := range files {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	h.run("package", filepath.Join(src, "dbchart"), "-d", filepath.Join(r.Dir, "charts/web/charts"))

	r.Write(testenv.Merge(
		testenv.Chart("charts/hello", "hello", "0.1.0"),
		map[string]string{
			"common/_helpers.tpl":                 `{{- define "common.name" -}}{{ .Chart.Name }}{{- end -}}`,
			"charts/hello/templates/_helpers.tpl": "-> ../../../common/_helpers.tpl",
			"charts/hello/templates/svc.yaml":     "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ include \"common.name\" . }}\n",
		},
		testenv.Chart("charts/web", "web", "1.0.0", "dependencies:\n- name: cache\n  version: 0.1.0\n- name: db\n  version: 2.0.0"),
		testenv.Chart("charts/web/charts/cache", "cache", "0.1.0"),
		testenv.Chart("charts/worker", "worker", "0.3.0", "dependencies:\n- name: lib\n  version: ~1.0.0\n  repository: file://../../libs/lib"),
		map[string]string{
			"libs/lib/Chart.yaml":             "apiVersion: v2\nname: lib\nversion: 1.0.1\ntype: library\n",
			"libs/lib/templates/_lib.tpl":     `{{- define "lib.hello" -}}hello{{- end -}}`,
			"charts/worker/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: w\ndata:\n  x: {{ include \"lib.hello\" . }}\n",
		},
	))
	r.Commit("initial charts")
	return r
}

func readIndex(t *testing.T, dir string) *repo.IndexFile {
	t.Helper()
	idx, err := repo.LoadIndexFile(filepath.Join(dir, "index.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func TestPublishAndConsumeWithHelm(t *testing.T) {
	r := fixture(t)
	s, store := newLocalSite(t, r, "")
	out := s.mustRun("run", "--once")
	for _, want := range []string{"hello", "web", "worker"} {
		if !regexp.MustCompile(`published\s+` + want + `\s`).MatchString(out) {
			t.Errorf("output does not say %s was published:\n%s", want, out)
		}
	}
	// Subcharts and libraries are not top-level charts.
	for _, name := range []string{"cache-0.1.0.tgz", "db-2.0.0.tgz", "lib-1.0.1.tgz"} {
		if _, err := os.Stat(filepath.Join(store, name)); err == nil {
			t.Errorf("%s was published as a top-level chart", name)
		}
	}
	idx := readIndex(t, store)
	for name, cvs := range idx.Entries {
		for _, cv := range cvs {
			b, err := os.ReadFile(filepath.Join(store, cv.URLs[0]))
			if err != nil {
				t.Fatal(err)
			}
			if cv.Digest != sha(b) {
				t.Errorf("%s: index digest %s, stored bytes %s", name, cv.Digest, sha(b))
			}
		}
	}

	h := newHelm(t)
	h.run("repo", "add", "e2e", serveDir(t, store))
	search := h.run("search", "repo", "e2e/", "--versions")
	for _, want := range []string{"e2e/hello", "0.1.0", "e2e/web", "1.0.0", "e2e/worker", "0.3.0"} {
		if !strings.Contains(search, want) {
			t.Errorf("helm search repo lacks %q:\n%s", want, search)
		}
	}
	untar := t.TempDir()
	for _, c := range []string{"hello", "web", "worker"} {
		h.run("pull", "e2e/"+c, "--untar", "--untardir", untar)
	}
	tpl := h.run("template", "rel", filepath.Join(untar, "hello"))
	if !strings.Contains(tpl, "name: hello") {
		t.Errorf("symlinked helper not rendered:\n%s", tpl)
	}
	tpl = h.run("template", "rel", filepath.Join(untar, "web"))
	for _, want := range []string{"rel-web", "rel-cache", "rel-db"} {
		if !strings.Contains(tpl, want) {
			t.Errorf("helm template web lacks %q (vendored dependency):\n%s", want, tpl)
		}
	}
	if tpl := h.run("template", "rel", filepath.Join(untar, "worker")); !strings.Contains(tpl, "x: hello") {
		t.Errorf("file:// dependency not rendered:\n%s", tpl)
	}
}

func TestNoChangeWritesNothingAndBumpPublishesOne(t *testing.T) {
	r := fixture(t)
	s, store := newLocalSite(t, r, "")
	s.mustRun("run", "--once")
	before := readIndex(t, store)
	snap := snapshot(t, store)

	// A second run with no new commit writes nothing.
	out := s.mustRun("run", "--once")
	if !strings.Contains(out, "published 0, already published 3, failed 0") {
		t.Errorf("second run summary:\n%s", out)
	}
	if got := snapshot(t, store); fmt.Sprint(got) != fmt.Sprint(snap) {
		t.Errorf("second run changed the store:\nbefore %v\nafter  %v", snap, got)
	}

	// Bump hello; change worker without a bump.
	time.Sleep(10 * time.Millisecond)
	r.Write(testenv.Merge(testenv.Chart("charts/hello", "hello", "0.2.0"), map[string]string{
		"charts/worker/values.yaml": "replicas: 5\n",
	}))
	r.Commit("bump hello, change worker without a bump")
	// The edit without a bump fails worker, every cycle (issue 8); its
	// published package stays.
	code, out := s.run("run", "--once")
	if code != 1 || !strings.Contains(out, "published 1, already published 1, failed 1") ||
		!strings.Contains(out, `chart "worker" 0.3.0 (charts/worker): content differs from the published package: bump the version`) {
		t.Errorf("bump run: exit %d\n%s", code, out)
	}
	after := readIndex(t, store)
	if !after.Has("hello", "0.2.0") {
		t.Fatalf("hello 0.2.0 not in index")
	}
	for name, cvs := range before.Entries {
		for _, old := range cvs {
			cur, err := after.Get(name, old.Version)
			if err != nil {
				t.Fatalf("%s %s dropped from index", name, old.Version)
			}
			if !cur.Created.Equal(old.Created) || cur.Digest != old.Digest {
				t.Errorf("%s %s changed: created %v -> %v, digest %s -> %s", name, old.Version, old.Created, cur.Created, old.Digest, cur.Digest)
			}
		}
	}
	now := snapshot(t, store)
	for p, v := range snap {
		if filepath.Base(p) != "index.yaml" && now[p] != v {
			t.Errorf("%s changed after the bump", p)
		}
	}
	if len(now) != len(snap)+1 {
		t.Errorf("want exactly one new file, have %d files, had %d", len(now), len(snap))
	}
}

func TestPlanPublishesNothing(t *testing.T) {
	r := fixture(t)
	s, store := newLocalSite(t, r, "")
	out := s.mustRun("plan")
	if !strings.Contains(out, "plan: 3 to publish, 0 already published, 0 failing") {
		t.Errorf("plan output:\n%s", out)
	}
	if entries, _ := os.ReadDir(store); len(entries) != 0 {
		t.Errorf("plan wrote %d files", len(entries))
	}
}

func TestBadInputFailsAloneAndNamesTheChart(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string // a regexp the output must match
	}{
		{"malformed Chart.yaml", map[string]string{"charts/bad/Chart.yaml": "apiVersion: v2\nname: [bad\n"},
			`charts/bad.*(yaml|Chart.yaml)`},
		{"version not semver", testenv.Chart("charts/bad", "bad", `"1.0"`),
			`"bad".*1\.0.*semver`},
		{"version unparseable", testenv.Chart("charts/bad", "bad", "banana"),
			`"bad".*banana.*semver`},
		{"name escaping the prefix", testenv.Chart("charts/bad", "../../etc/evil", "1.0.0"),
			`charts/bad.*name`},
		{"symlink out of the tree", testenv.Merge(testenv.Chart("charts/bad", "bad", "1.0.0"),
			map[string]string{"charts/bad/templates/x.yaml": "-> /etc/passwd"}),
			`"bad".*symlink.*x\.yaml`},
		{"missing dependency", testenv.Chart("charts/bad", "bad", "1.0.0", "dependencies:\n- name: nothere\n  version: 1.0.0\n  repository: https://charts.example.org"),
			`"bad".*nothere`},
		{"duplicate name and version", testenv.Merge(testenv.Chart("charts/bad", "good", "1.0.0"), testenv.Chart("charts/bad2", "good", "1.0.0")),
			`(?s)conflict.*charts/bad.*charts/bad2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newGitRepo(t)
			r.Write(testenv.Merge(testenv.Chart("charts/ok", "ok", "1.0.0"), tt.files))
			r.Commit(tt.name)
			s, store := newLocalSite(t, r, "")
			code, out := s.run("run", "--once")
			if code != 1 {
				t.Errorf("exit %d, want 1\n%s", code, out)
			}
			if !regexp.MustCompile(`FAILED stable: .*` + tt.want).MatchString(out) {
				t.Errorf("output does not name the chart and reason /%s/:\n%s", tt.want, out)
			}
			if !readIndex(t, store).Has("ok", "1.0.0") {
				t.Errorf("the good chart was not published:\n%s", out)
			}
			if _, err := os.Stat(filepath.Join(store, "ok-1.0.0.tgz")); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestUnreadableIndexStopsTheCycle(t *testing.T) {
	r := newGitRepo(t)
	r.Write(testenv.Chart("charts/ok", "ok", "1.0.0"))
	r.Commit("one chart")
	s, store := newLocalSite(t, r, "")
	os.MkdirAll(store, 0o755)
	bad := []byte("apiVersion: v1\nentries: [this is not\n")
	os.WriteFile(filepath.Join(store, "index.yaml"), bad, 0o644)
	snap := snapshot(t, store)
	code, out := s.run("run", "--once")
	if code != 1 || !strings.Contains(out, "index unreadable") {
		t.Errorf("exit %d, want 1 and 'index unreadable':\n%s", code, out)
	}
	if got := snapshot(t, store); fmt.Sprint(got) != fmt.Sprint(snap) {
		t.Errorf("the store was written to: %v", got)
	}
}

func TestReproducibleAcrossClonesUmasksAndTime(t *testing.T) {
	r := fixture(t)
	a, storeA := newLocalSite(t, r, "")
	a.mustRun("run", "--once")

	// A second site, a second upstream clone, a later time, another umask.
	clone := newGitRepo(t)
	clone.Git("fetch", "-q", r.Dir, "main")
	clone.Git("checkout", "-q", "-B", "main", "FETCH_HEAD")
	time.Sleep(1100 * time.Millisecond)
	b, storeB := newLocalSite(t, clone, "")
	cmd := exec.Command("sh", "-c", `umask 077; exec "$0" "$@"`, binary, "run", "--once", "--config", b.config)
	if code, out := runCmd(t, cmd); code != 0 {
		t.Fatalf("second site: exit %d\n%s", code, out)
	}
	pkgs, _ := filepath.Glob(filepath.Join(storeA, "*.tgz"))
	if len(pkgs) != 3 {
		t.Fatalf("want 3 packages, have %v", pkgs)
	}
	for _, p := range pkgs {
		x, _ := os.ReadFile(p)
		y, err := os.ReadFile(filepath.Join(storeB, filepath.Base(p)))
		if err != nil {
			t.Fatal(err)
		}
		if sha(x) != sha(y) {
			t.Errorf("%s: %s at site A, %s at site B", filepath.Base(p), sha(x), sha(y))
		}
	}
}

func TestSecondRunWaitsForTheLock(t *testing.T) {
	r := newGitRepo(t)
	r.Write(testenv.Chart("charts/ok", "ok", "1.0.0"))
	r.Commit("one chart")
	s, _ := newLocalSite(t, r, "")
	os.MkdirAll(s.stateDir, 0o755)
	f, err := os.OpenFile(filepath.Join(s.stateDir, "chartsync.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	code, out := s.run("run", "--once", "--lock-wait", "300ms")
	if code != 1 || !strings.Contains(out, "another chartsync is running") {
		t.Errorf("exit %d, want 1 and a clear message:\n%s", code, out)
	}
}

func TestSignedPackagesVerifyWithHelm(t *testing.T) {
	secring, pubring := testenv.Keyring(t, "Chart Publisher", "charts@example.org")
	r := newGitRepo(t)
	r.Write(testenv.Chart("charts/a", "a", "1.0.0"))
	r.Commit("a")
	s, store := newLocalSite(t, r, "")
	cfg, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	// Signing is a [[repository]] setting: append it to that table.
	cfg = bytes.Replace(cfg, []byte(`store = "main"`), []byte(fmt.Sprintf("store = \"main\"\nsign_key = \"charts@example.org\"\nkeyring_file = %q", secring)), 1)
	os.WriteFile(s.config, cfg, 0o644)
	s.mustRun("run", "--once")
	if _, err := os.Stat(filepath.Join(store, "a-1.0.0.tgz.prov")); err != nil {
		t.Fatal(err)
	}

	h := newHelm(t)
	h.run("repo", "add", "signed", serveDir(t, store))
	out := h.run("pull", "signed/a", "--verify", "--keyring", pubring, "-d", t.TempDir())
	if !strings.Contains(out, "Signed by: Chart Publisher") {
		t.Errorf("helm pull --verify:\n%s", out)
	}
	// A tampered package fails verification.
	os.WriteFile(filepath.Join(store, "a-1.0.0.tgz"), []byte("not the signed bytes"), 0o644)
	if code, out := runCmd(t, h.cmd("pull", "signed/a", "--verify", "--keyring", pubring, "-d", t.TempDir())); code == 0 {
		t.Errorf("helm pull --verify accepted a tampered package:\n%s", out)
	}
}

func TestServe(t *testing.T) {
	r := newGitRepo(t)
	r.Write(testenv.Chart("charts/a", "a", "1.0.0"))
	r.Commit("a")
	s, _ := newLocalSite(t, r, "")
	s.mustRun("run", "--once")
	url := startServe(t, s) + "/stable"

	get := func(method, path string, header ...string) *http.Response {
		req, _ := http.NewRequest(method, url+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := get("GET", "/a-1.0.0.tgz")
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || etag == "" || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("GET package: %d, ETag %q, Cache-Control %q", resp.StatusCode, etag, resp.Header.Get("Cache-Control"))
	}
	for _, c := range []struct {
		method, path string
		header       []string
		want         int
	}{
		{"GET", "/a-1.0.0.tgz", []string{"If-None-Match", etag}, http.StatusNotModified},
		{"HEAD", "/index.yaml", nil, http.StatusOK},
		{"GET", "/nothere-1.0.0.tgz", nil, http.StatusNotFound},
		{"GET", "/../../etc/passwd", nil, http.StatusNotFound},
		{"GET", "/sub/a-1.0.0.tgz", nil, http.StatusNotFound},
		{"PUT", "/a-1.0.0.tgz", nil, http.StatusMethodNotAllowed},
	} {
		if got := get(c.method, c.path, c.header...).StatusCode; got != c.want {
			t.Errorf("%s %s %v: %d, want %d", c.method, c.path, c.header, got, c.want)
		}
	}
	h := newHelm(t)
	h.run("repo", "add", "served", url)
	if out := h.run("search", "repo", "served/a"); !strings.Contains(out, "1.0.0") {
		t.Errorf("helm search through chartsync serve:\n%s", out)
	}
}
