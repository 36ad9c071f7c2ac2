package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/repo"

	"github.com/chartsync/chartsync/internal/publisher/local"
	"github.com/chartsync/chartsync/internal/publisher/s3"
	"github.com/chartsync/chartsync/internal/publisher/store"
	"github.com/chartsync/chartsync/internal/publisher/swift"
	"github.com/chartsync/chartsync/internal/testenv"
)

// objStore is a store under test: the [store.main] table chartsync is
// given, and a client of the test's own that reads what is really stored
// (straight from the server, never through a fault-injecting proxy).
type objStore struct {
	kind  string // "s3", "swift" or "local"
	where string // the bucket, container or directory
	toml  string
	st    store.Store
}

// secretFile writes a secret to a file of its own and returns its path.
func secretFile(t *testing.T, secret string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// s3Store describes bucket on srv; chartsync reaches it at endpoint (the
// server's, or a proxy's in front of it).
func s3Store(t *testing.T, srv *testenv.S3Server, bucket, endpoint string) objStore {
	t.Helper()
	toml := fmt.Sprintf(`[store.main]
type = "s3"
bucket = %q
region = %q
endpoint = %q
path_style = true
access_key_id_file = %q
secret_access_key_file = %q
`, bucket, srv.Region, endpoint, secretFile(t, srv.AccessKey), secretFile(t, srv.SecretKey))
	st, err := s3.New(context.Background(), s3.Config{
		Bucket: bucket, Region: srv.Region, Endpoint: srv.Endpoint, PathStyle: true,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	return objStore{kind: "s3", where: bucket, toml: toml, st: st}
}

// swiftStore describes container on srv; chartsync authenticates at
// authURL (the server's, or a proxy's in front of it).
func swiftStore(t *testing.T, srv *testenv.SwiftServer, container, authURL string) objStore {
	t.Helper()
	toml := fmt.Sprintf(`[store.main]
type = "swift"
auth_url = %q
auth_version = 1
container = %q
user = %q
key_file = %q
`, authURL, container, srv.User, secretFile(t, srv.Key))
	st, err := swift.New(context.Background(), swift.Config{
		AuthURL: srv.AuthURL, AuthVersion: 1, User: srv.User, Key: srv.Key, Container: container,
	})
	if err != nil {
		t.Fatal(err)
	}
	return objStore{kind: "swift", where: container, toml: toml, st: st}
}

// localStore is a fresh local directory store.
func localStore(t *testing.T) objStore {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	st, err := local.New(context.Background(), local.Config{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	return objStore{kind: "local", where: dir, toml: fmt.Sprintf("[store.main]\ntype = \"local\"\npath = %q\n", dir), st: st}
}

// newStoreSite configures chartsync to publish the charts/* of the git
// repository at gitURL to the repository at prefix in obj. Every site has
// its own state dir.
func newStoreSite(t *testing.T, gitURL string, obj objStore, prefix string) *site {
	t.Helper()
	return newSite(t, gitURL, prefix, obj.toml, "")
}

func pkey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "/" + name
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// storedIndex reads and parses prefix/index.yaml with helm's own loader.
func storedIndex(t *testing.T, st store.Store, prefix string) *repo.IndexFile {
	t.Helper()
	b, _, err := st.Get(ctxT(t), pkey(prefix, "index.yaml"))
	if errors.Is(err, store.ErrNotExist) {
		return repo.NewIndexFile()
	}
	if err != nil {
		t.Fatalf("read index.yaml: %v", err)
	}
	p := filepath.Join(t.TempDir(), "index.yaml")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	idx, err := repo.LoadIndexFile(p)
	if err != nil {
		t.Fatalf("stored index.yaml: %v\n%s", err, b)
	}
	return idx
}

// versions maps every stored key to its version.
func versions(t *testing.T, st store.Store) map[string]string {
	t.Helper()
	objs, err := st.List(ctxT(t), "")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	m := map[string]string{}
	for _, o := range objs {
		m[o.Key] = o.Version
	}
	return m
}

// storeState is what a repository in a store holds, computed from the
// stored bytes.
type storeState struct {
	idx      *repo.IndexFile
	packages map[string]string // package file name -> sha256 of the stored bytes
	other    []string          // stored keys under the prefix that are neither index nor depth-1 package
}

func readState(t *testing.T, st store.Store, prefix string) storeState {
	t.Helper()
	s := storeState{idx: storedIndex(t, st, prefix), packages: map[string]string{}}
	lp := pkey(prefix, "")
	objs, err := st.List(ctxT(t), lp)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	for _, o := range objs {
		name := strings.TrimPrefix(o.Key, lp)
		switch {
		case name == "index.yaml":
		case strings.HasSuffix(name, ".tgz") && !strings.Contains(name, "/"):
			b, _, err := st.Get(ctxT(t), o.Key)
			if err != nil {
				t.Fatalf("get %s: %v", o.Key, err)
			}
			s.packages[name] = sha(b)
		default:
			s.other = append(s.other, o.Key)
		}
	}
	return s
}

// indexed maps each index entry's file name (its relative url) to its
// digest.
func (s storeState) indexed(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for name, cvs := range s.idx.Entries {
		for _, cv := range cvs {
			if len(cv.URLs) != 1 {
				t.Errorf("%s %s: urls %v, want one relative url", name, cv.Version, cv.URLs)
				continue
			}
			file := name + "-" + cv.Version + ".tgz"
			if cv.URLs[0] != file {
				t.Errorf("%s %s: url %q, want %q (ChartMuseum's depth-1 layout)", name, cv.Version, cv.URLs[0], file)
			}
			m[file] = cv.Digest
		}
	}
	return m
}

// checkConverged fails t unless the repository holds exactly want (package
// file names), indexed, with every digest equal to the sha256 of the
// stored bytes, and nothing else. It returns the stored packages' digests.
func checkConverged(t *testing.T, st store.Store, prefix string, want []string) map[string]string {
	t.Helper()
	s := readState(t, st, prefix)
	idx := s.indexed(t)
	for _, f := range want {
		if _, ok := idx[f]; !ok {
			t.Errorf("%s is not in the index", f)
		}
		if _, ok := s.packages[f]; !ok {
			t.Errorf("%s is not stored", f)
		}
	}
	for f, d := range idx {
		got, ok := s.packages[f]
		switch {
		case !ok:
			t.Errorf("index entry %s has no stored package", f)
		case got != d:
			t.Errorf("%s: index digest %s, stored bytes %s", f, d, got)
		}
	}
	for f := range s.packages {
		if _, ok := idx[f]; !ok {
			t.Errorf("stored package %s is not in the index", f)
		}
	}
	if len(s.packages) != len(want) {
		t.Errorf("%d packages stored, want %d: %v", len(s.packages), len(want), keys(s.packages))
	}
	if len(s.other) > 0 {
		t.Errorf("unexpected objects in the repository: %v", s.other)
	}
	return s.packages
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// writes counts the requests through a proxy that can change the store.
func writes(p *testenv.Proxy) int {
	return p.Count(http.MethodPut) + p.Count(http.MethodPost) + p.Count(http.MethodDelete) +
		p.Count(http.MethodPatch) + p.Count("COPY")
}

func TestS3EndToEnd(t *testing.T) {
	srv := testenv.S3(t)
	proxy := testenv.NewProxy(t, srv.Endpoint, nil)
	endToEnd(t, s3Store(t, srv, srv.NewBucket(t), proxy.URL), proxy, "stable")
}

func TestSwiftEndToEnd(t *testing.T) {
	srv := testenv.Swift(t)
	proxy := testenv.NewProxy(t, strings.TrimSuffix(srv.AuthURL, "/auth/v1.0"), nil)
	endToEnd(t, swiftStore(t, srv, srv.NewContainer(t), proxy.URL+"/auth/v1.0"), proxy, "")
}

// endToEnd publishes fixture's charts to obj (reached through proxy, which
// counts requests) at prefix, consumes them with the helm CLI, then checks
// that a run without change writes nothing and a bump writes one package.
func endToEnd(t *testing.T, obj objStore, proxy *testenv.Proxy, prefix string) {
	r := fixture(t)
	s := newStoreSite(t, r.Dir, obj, prefix)
	out := s.mustRun("run", "--once")
	if !strings.Contains(out, "published 3, already published 0, failed 0") {
		t.Errorf("first run summary:\n%s", out)
	}
	want := []string{"hello-0.1.0.tgz", "web-1.0.0.tgz", "worker-0.3.0.tgz"}
	checkConverged(t, obj.st, prefix, want)
	// The layout is ChartMuseum's: the index and the packages side by side
	// under the prefix, nothing else in the bucket or container.
	stored := keys(versions(t, obj.st))
	wantKeys := []string{pkey(prefix, "hello-0.1.0.tgz"), pkey(prefix, "index.yaml"), pkey(prefix, "web-1.0.0.tgz"), pkey(prefix, "worker-0.3.0.tgz")}
	if fmt.Sprint(stored) != fmt.Sprint(wantKeys) {
		t.Errorf("stored keys %v, want %v", stored, wantKeys)
	}

	h := newHelm(t)
	h.run("repo", "add", "e2e", startServe(t, s)+"/stable")
	search := h.run("search", "repo", "e2e/", "--versions")
	for _, want := range []string{`e2e/hello\s+0\.1\.0`, `e2e/web\s+1\.0\.0`, `e2e/worker\s+0\.3\.0`} {
		if !regexp.MustCompile(want).MatchString(search) {
			t.Errorf("helm search repo lacks /%s/:\n%s", want, search)
		}
	}
	untar := t.TempDir()
	for _, c := range []string{"hello", "web", "worker"} {
		h.run("pull", "e2e/"+c, "--untar", "--untardir", untar)
	}
	if tpl := h.run("template", "rel", filepath.Join(untar, "hello")); !strings.Contains(tpl, "name: hello") {
		t.Errorf("helm template hello:\n%s", tpl)
	}
	tpl := h.run("template", "rel", filepath.Join(untar, "web"))
	for _, want := range []string{"rel-web", "rel-cache", "rel-db"} {
		if !strings.Contains(tpl, want) {
			t.Errorf("helm template web lacks %q:\n%s", want, tpl)
		}
	}
	if tpl := h.run("template", "rel", filepath.Join(untar, "worker")); !strings.Contains(tpl, "x: hello") {
		t.Errorf("helm template worker:\n%s", tpl)
	}

	// A second run with no new commit writes nothing.
	before := versions(t, obj.st)
	idxBefore := storedIndex(t, obj.st, prefix)
	w0 := writes(proxy)
	out = s.mustRun("run", "--once")
	if !strings.Contains(out, "published 0, already published 3, failed 0") {
		t.Errorf("second run summary:\n%s", out)
	}
	if n := writes(proxy) - w0; n != 0 {
		t.Errorf("a run without change sent %d write requests to the store", n)
	}
	if after := versions(t, obj.st); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("a run without change changed the store:\nbefore %v\nafter  %v", before, after)
	}

	// A bump publishes exactly one package and keeps every entry as it was.
	r.Write(testenv.Chart("charts/hello", "hello", "0.2.0"))
	r.Commit("bump hello")
	w0 = writes(proxy)
	out = s.mustRun("run", "--once")
	if !strings.Contains(out, "published 1, already published 2, failed 0") {
		t.Errorf("bump run summary:\n%s", out)
	}
	// On Swift a package is uploaded to a staging name, copied to its
	// final name and the staging object deleted (docs/consistency.md).
	wantWrites := 2
	if obj.kind == "swift" {
		wantWrites = 4
	}
	if n := writes(proxy) - w0; n != wantWrites {
		t.Errorf("the bump sent %d write requests, want %d (the package and the index; on Swift, staging upload, copy, staging delete, index)", n, wantWrites)
	}
	after := versions(t, obj.st)
	for k, v := range before {
		if k != pkey(prefix, "index.yaml") && after[k] != v {
			t.Errorf("%s changed after the bump", k)
		}
	}
	if len(after) != len(before)+1 {
		t.Errorf("want exactly one new object, have %v, had %v", keys(after), keys(before))
	}
	checkConverged(t, obj.st, prefix, append(want, "hello-0.2.0.tgz"))
	idxAfter := storedIndex(t, obj.st, prefix)
	for name, cvs := range idxBefore.Entries {
		for _, old := range cvs {
			cur, err := idxAfter.Get(name, old.Version)
			if err != nil {
				t.Fatalf("%s %s dropped from the index", name, old.Version)
			}
			if !cur.Created.Equal(old.Created) || cur.Digest != old.Digest {
				t.Errorf("%s %s changed: created %v -> %v, digest %s -> %s", name, old.Version, old.Created, cur.Created, old.Digest, cur.Digest)
			}
		}
	}
	h.run("repo", "update")
	if search := h.run("search", "repo", "e2e/hello", "--versions"); !strings.Contains(search, "0.2.0") || !strings.Contains(search, "0.1.0") {
		t.Errorf("helm does not see both hello versions:\n%s", search)
	}
}
