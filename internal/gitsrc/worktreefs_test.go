package gitsrc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWorktreeFSRemove(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	outside := t.TempDir()
	mustWrite(t, filepath.Join(root, "file"), "x")
	mustWrite(t, filepath.Join(root, "dir/inner"), "x")
	mustWrite(t, filepath.Join(outside, "victim"), "x")
	for target, link := range map[string]string{
		"file":                             "link-to-file",
		"dir":                              "link-to-dir",
		filepath.Join(outside, "victim"):   "link-outside",
		outside:                            "dir-outside",
		filepath.Join(root, "dir", "none"): "dangling",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	fs := newWorktreeFS(root)

	tests := []struct {
		name    string
		path    string
		gone    string // removed by the call
		wantErr string
	}{
		{name: "symlink to file", path: "link-to-file", gone: "link-to-file"},
		{name: "symlink to dir", path: "link-to-dir", gone: "link-to-dir"},
		{name: "symlink outside", path: "link-outside", gone: "link-outside"},
		{name: "dangling symlink", path: "dangling", gone: "dangling"},
		{name: "regular file", path: "dir/inner", gone: "dir/inner"},
		{name: "through a symlinked parent outside", path: "dir-outside/victim", wantErr: "outside the work tree"},
		{name: "dot-dot", path: "../x", wantErr: "outside the work tree"},
		{name: "root", path: ".", wantErr: "outside the work tree"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fs.Remove(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Remove(%q) error = %v, want %q", tt.path, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Remove(%q): %v", tt.path, err)
			}
			if _, err := os.Lstat(filepath.Join(root, tt.gone)); !os.IsNotExist(err) {
				t.Errorf("%s still there: %v", tt.gone, err)
			}
		})
	}
	// Targets survive the removal of links to them.
	for _, p := range []string{filepath.Join(root, "file"), filepath.Join(root, "dir"), filepath.Join(outside, "victim")} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("link target %s was removed: %v", p, err)
		}
	}
}
