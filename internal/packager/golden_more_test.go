package packager

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/chartsync/chartsync/internal/testenv"
)

// goldenMoreDigests pins, like goldenDigests, the packages of reference
// charts for the parts of the archive layout goldenTree does not reach:
// values.schema.json, Chart.lock, and an apiVersion v1 chart (whose
// dependencies live in requirements.yaml and are dropped from Chart.yaml).
// Added with issue 11 (the package format is a promise): a change here is
// a bug, never an update of the table.
var goldenMoreDigests = map[string]string{
	"charts/legacy": "50e3923dce8dc3419c6d56624eb04cfa824e62f5f7621f2fc70c28ddc39a9d3c",
	"charts/schema": "89f7cb561e3113bbff000d9dffb52d199ecf0c879e07b1babf9b82d4ccd92159",
}

func goldenMoreTree(t testing.TB, root string) {
	t.Helper()
	writeTree(t, root, testenv.Merge(
		chartFiles("charts/schema", "schema", "1.2.3", "dependencies:\n- name: sub\n  version: 0.1.0\n  repository: https://charts.example.org\n"),
		chartFiles("charts/schema/charts/sub", "sub", "0.1.0", ""),
		map[string]string{
			"charts/schema/values.schema.json": `{"$schema": "https://json-schema.org/draft-07/schema#", "type": "object", "properties": {"replicas": {"type": "integer"}}}` + "\n",
			"charts/schema/Chart.lock":         "dependencies:\n- name: sub\n  repository: https://charts.example.org\n  version: 0.1.0\ndigest: sha256:0000000000000000000000000000000000000000000000000000000000000000\ngenerated: \"2020-01-01T00:00:00Z\"\n",
		},
		map[string]string{
			"charts/legacy/Chart.yaml":        "apiVersion: v1\nname: legacy\nversion: 0.9.0\ndescription: a helm 2 chart\n",
			"charts/legacy/requirements.yaml": "dependencies:\n- name: sub\n  version: 0.1.0\n  repository: https://charts.example.org\n",
			"charts/legacy/values.yaml":       "replicas: 1\n",
			"charts/legacy/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n",
		},
		chartFiles("charts/legacy/charts/sub", "sub", "0.1.0", ""),
	))
}

func TestGoldenMoreDigests(t *testing.T) {
	root := t.TempDir()
	goldenMoreTree(t, root)
	charts, errs := Discover(context.Background(), os.DirFS(root), []string{"charts/*"})
	if len(errs) > 0 {
		t.Fatalf("Discover: %v", errs)
	}
	got := map[string]string{}
	contentsOf := map[string]map[string]string{}
	for _, c := range charts {
		pkg, err := Build(context.Background(), os.DirFS(root), c, Options{})
		if err != nil {
			t.Fatalf("Build %s: %v", c.Dir, err)
		}
		got[c.Dir] = pkg.Digest
		_, contents := tgzEntries(t, pkg.Data)
		t.Logf("%s %s %v", c.Dir, pkg.Digest, keys(contents))
		contentsOf[c.Dir] = contents
	}
	// The reference charts hold what they are for.
	for _, name := range []string{"schema/Chart.lock", "schema/values.schema.json", "schema/charts/sub/Chart.yaml"} {
		if _, ok := contentsOf["charts/schema"][name]; !ok {
			t.Errorf("charts/schema: no %s in the package", name)
		}
	}
	if _, ok := contentsOf["charts/legacy"]["legacy/requirements.yaml"]; !ok {
		t.Errorf("charts/legacy: no requirements.yaml in the package")
	}
	if cy := contentsOf["charts/legacy"]["legacy/Chart.yaml"]; cy == "" || strings.Contains(cy, "dependencies") {
		t.Errorf("charts/legacy: Chart.yaml %q: want one without dependencies", cy)
	}
	for dir, want := range goldenMoreDigests {
		if got[dir] != want {
			t.Errorf("%s: digest %s, want %s", dir, got[dir], want)
		}
	}
	if len(goldenMoreDigests) != len(got) {
		t.Errorf("golden table has %d entries, built %d: %q", len(goldenMoreDigests), len(got), got)
	}
}
