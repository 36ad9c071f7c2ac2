package check

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chartsync/chartsync/internal/testenv"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func chartFiles(dir, name, version, extra string) map[string]string {
	return map[string]string{
		dir + "/Chart.yaml":          "apiVersion: v2\nname: " + name + "\nversion: " + version + "\n" + extra,
		dir + "/values.yaml":         "a: 1\n",
		dir + "/templates/cm.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n",
		dir + "/.helmignore":         "*.bak\n",
		dir + "/notes.bak":           "one\n",
		"libs/lib/Chart.yaml":        "apiVersion: v2\nname: lib\nversion: 0.1.0\n",
		"libs/lib/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lib\n",
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestCompareUnchangedIsOnlyAHint: a directory reported unchanged is not
// built, unless it has a file:// dependency, whose change is still found;
// a .helmignore'd change is never a finding.
func TestCompareUnchangedIsOnlyAHint(t *testing.T) {
	dep := "dependencies:\n- name: lib\n  version: 0.1.0\n  repository: file://../../libs/lib\n"
	base := testenv.Merge(chartFiles("charts/a", "a", "1.0.0", ""), chartFiles("charts/b", "b", "1.0.0", dep))
	head := with(base,
		"charts/a/notes.bak", "two\n", // ignored
		"libs/lib/values.yaml", "b: 2\n", // read by charts/b through file://
	)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name      string
		unchanged func(string) bool
	}{
		{"every chart built", nil},
		{"directories unchanged", func(string) bool { return true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Compare(context.Background(), log, os.DirFS(writeTree(t, base)), os.DirFS(writeTree(t, head)),
				Options{Globs: []string{"charts/*"}, Unchanged: tc.unchanged})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Kind != Unbumped || got[0].Dir != "charts/b" || strings.Join(got[0].Files, ",") != "charts/lib/values.yaml" {
				t.Fatalf("findings %+v, want charts/b unbumped in charts/lib/values.yaml", got)
			}
		})
	}
}

func TestLowerAndString(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"1.9.0", "1.10.0", true}, {"1.0.0-rc.1", "1.0.0", true}, {"1.0.0", "1.0.0+build", false},
		{"2.0.0", "1.99.99", false}, {"1.0", "2.0.0", false},
	} {
		if got := lower(tc.a, tc.b); got != tc.want {
			t.Errorf("lower(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	f := Finding{Kind: Downgrade, Severity: "warning", Repository: "stable", Name: "a", Version: "1.0.0", Dir: "charts/a", Message: "version 1.0.0 is lower than 2.0.0 at base"}
	if got, want := f.String(), `warning: downgrade: repository stable: chart "a" 1.0.0 (charts/a): version 1.0.0 is lower than 2.0.0 at base`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
