package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/chartsync/chartsync/internal/testenv"
)

// Issue 12: with index_format = "json" chartsync writes index.yaml as
// JSON; the real helm CLI adds the repository, searches it and pulls from
// it; a YAML 1.2 parser (what ChartMuseum-style readers use) reads it.
// Switching to "yaml" and back rewrites it with every entry.
func TestJSONIndexReadByHelm(t *testing.T) {
	repo := newGitRepo(t)
	repo.Write(testenv.Merge(testenv.Chart("charts/a", "a", "1.0.0"), testenv.Chart("charts/on", `"on"`, "0.1.0")))
	repo.Commit("two charts")
	format := func(f string) string {
		return fmt.Sprintf("index_format = %q\n", f)
	}
	store := filepath.Join(t.TempDir(), "repo")
	storeTOML := fmt.Sprintf("[store.main]\ntype = \"local\"\npath = %q\n", store)
	s := newSite(t, repo.Dir, "", format("json")+storeTOML, "")
	s.mustRun("run", "--once")
	index := func() []byte {
		b, err := os.ReadFile(filepath.Join(store, "index.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if b := index(); !json.Valid(b) {
		t.Fatalf("index_format json wrote:\n%s", b)
	}

	h := newHelm(t)
	h.run("repo", "add", "e2e", serveDir(t, store))
	search := h.run("search", "repo", "e2e/", "--versions")
	for _, want := range []string{"e2e/a", "1.0.0", "e2e/on", "0.1.0"} {
		if !strings.Contains(search, want) {
			t.Errorf("helm search repo lacks %q:\n%s", want, search)
		}
	}
	untar := t.TempDir()
	h.run("pull", "e2e/on", "--version", "0.1.0", "--untar", "--untardir", untar)
	if _, err := os.Stat(filepath.Join(untar, "on", "Chart.yaml")); err != nil {
		t.Errorf("helm pull from the JSON index: %v", err)
	}

	var doc struct {
		APIVersion string                      `yaml:"apiVersion"`
		Entries    map[string][]map[string]any `yaml:"entries"`
	}
	if err := yaml.Unmarshal(index(), &doc); err != nil || doc.APIVersion != "v1" || len(doc.Entries["a"]) != 1 || doc.Entries["on"][0]["name"] != "on" {
		t.Fatalf("YAML 1.2 reader on the JSON index: %v %+v", err, doc)
	}

	// A new version, still JSON; then yaml, then json again: every entry.
	repo.Write(testenv.Chart("charts/a", "a", "1.1.0"))
	repo.Commit("a 1.1.0")
	s.mustRun("run", "--once")
	for _, f := range []string{"json", "yaml", "json"} {
		s = newSite(t, repo.Dir, "", format(f)+storeTOML, "")
		s.mustRun("run", "--once")
		b := index()
		if json.Valid(b) != (f == "json") {
			t.Fatalf("index_format %s wrote:\n%s", f, b)
		}
		h.run("repo", "update", "e2e")
		search := h.run("search", "repo", "e2e/", "--versions")
		for _, want := range []string{"e2e/a \t1.1.0", "e2e/a \t1.0.0", "e2e/on\t0.1.0"} {
			if !strings.Contains(strings.Join(strings.Fields(search), " "), strings.Join(strings.Fields(want), " ")) {
				t.Errorf("%s: helm search repo lacks %q:\n%s", f, want, search)
			}
		}
		if f == "yaml" && !bytes.Contains(b, []byte(`"on"`)) {
			t.Errorf("chart name on not quoted for YAML 1.1 readers:\n%s", b)
		}
	}

	// plan --output json: the whole result, one JSON document.
	var plan struct {
		OK     bool `json:"ok"`
		Charts []struct {
			Name, Version, Outcome string
		} `json:"charts"`
		Repositories []struct {
			Name    string `json:"name"`
			Entries int    `json:"entries"`
		} `json:"repositories"`
	}
	stdout, err := exec.Command(binary, "plan", "--output", "json", "--config", s.config).Output()
	if err != nil {
		t.Fatalf("plan --output json: %v", err)
	}
	if err := json.Unmarshal(stdout, &plan); err != nil {
		t.Fatalf("plan --output json: %v\n%s", err, stdout)
	}
	if !plan.OK || len(plan.Charts) != 2 || len(plan.Repositories) != 1 || plan.Repositories[0].Entries != 3 {
		t.Errorf("plan --output json: %+v", plan)
	}
}
