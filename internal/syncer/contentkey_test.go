package syncer

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/chartsync/chartsync/internal/gitsrc"
)

// contentKey changes with the chart directory, with what a symlink in it
// points to and with a file:// dependency (and what that one pulls in),
// and not with anything else in the tree; a tree that cannot name content
// and a dangling link give no key.
func TestContentKey(t *testing.T) {
	u := newUpstream(t)
	u.chart("charts/app", "app", "1.0.0")
	u.write("charts/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n- name: lib\n  version: 1.0.0\n  repository: file://../../libs/lib\n")
	u.chart("libs/lib", "lib", "1.0.0")
	u.write("libs/lib/Chart.yaml", "apiVersion: v2\nname: lib\nversion: 1.0.0\ndependencies:\n- name: base\n  version: 1.0.0\n  repository: file://../base\n")
	u.chart("libs/base", "base", "1.0.0")
	u.write("shared/t.yaml", "a: 1\n")
	if err := os.Symlink("../../../shared/t.yaml", filepath.Join(u.dir, "charts/app/templates/t.yaml")); err != nil {
		t.Fatal(err)
	}
	u.write("unrelated.txt", "1\n")
	u.commit("one")
	state := filepath.Join(t.TempDir(), "git")
	key := func() string {
		t.Helper()
		tree, err := gitsrc.Sync(context.Background(), gitsrc.Options{URL: u.dir, Branch: "main", Dir: state})
		if err != nil {
			t.Fatal(err)
		}
		return contentKey(tree.FS, "charts/app")
	}
	first := key()
	if first == "" {
		t.Fatal("no content key for a chart read from git")
	}
	steps := []struct {
		name    string
		edit    string
		changes bool
	}{
		{"unrelated file", "unrelated.txt", false},
		{"the chart's values", "charts/app/values.yaml", true},
		{"a symlink's target", "shared/t.yaml", true},
		{"a file:// dependency", "libs/lib/values.yaml", true},
		{"the dependency's own file:// dependency", "libs/base/values.yaml", true},
	}
	prev := first
	for i, s := range steps {
		u.write(s.edit, "edited: "+s.name+"\n")
		u.commit(s.name)
		k := key()
		if (k != prev) != s.changes {
			t.Errorf("step %d, editing %s: key changed = %v, want %v", i, s.name, k != prev, s.changes)
		}
		if k == "" {
			t.Errorf("step %d: no key", i)
		}
		prev = k
	}

	if err := os.Remove(filepath.Join(u.dir, "shared/t.yaml")); err != nil {
		t.Fatal(err)
	}
	u.commit("dangling")
	if k := key(); k != "" {
		t.Errorf("key with a dangling symlink = %q, want none", k)
	}
	if k := contentKey(fstest.MapFS{"charts/app/Chart.yaml": {Data: []byte("name: app\n")}}, "charts/app"); k != "" {
		t.Errorf("key from a file system that cannot name content = %q, want none", k)
	}
}
