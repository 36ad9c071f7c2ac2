package statefile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteJSONPrivateAndWhole(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sub", "cache.json")
	if err := WriteJSON(file, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil || string(b) != "{\"a\":1}\n" {
		t.Fatalf("file = %q, %v", b, err)
	}
	for p, want := range map[string]os.FileMode{file: 0o600, filepath.Dir(file): 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", p, fi.Mode().Perm(), err, want)
		}
	}

	// A failed write leaves the old file and no temporary file.
	boom := errors.New("boom")
	if err := Write(file, func(w io.Writer) error { w.Write([]byte("partial")); return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "{\"a\":1}\n" {
		t.Errorf("file after a failed write = %q", b)
	}
	if names, _ := os.ReadDir(filepath.Dir(file)); len(names) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(names))
	}
}

func TestReadJSON(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "cache.json")
	if err := WriteJSON(file, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	if !ReadJSON(file, &got) || got["a"] != 1 {
		t.Errorf("ReadJSON of what WriteJSON wrote: %v", got)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{\"a\":"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{bad, filepath.Join(dir, "missing.json"), ""} {
		if ReadJSON(f, &got) {
			t.Errorf("ReadJSON(%q) = true", f)
		}
	}
}
