// Package statefile writes the files chartsync keeps in its state dir:
// whole or not at all (a temporary file in the same directory, renamed
// into place), and private (0600 files in 0700 directories), as the whole
// state dir is: caches there may name what a store holds.
package statefile

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write creates or replaces file with what write writes, creating its
// directory if needed. On any failure the old file (if any) is left as it
// was and no temporary file remains. Concurrent writers of one file are
// safe: the last rename wins.
func Write(file string, write func(w io.Writer) error) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	w := bufio.NewWriterSize(f, 1<<16)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), file)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

// ReadJSON decodes the JSON in file, as WriteJSON wrote it, into v. It
// reports false when there is no such file or it does not decode: the
// caller then starts afresh (what these files keep only saves work).
func ReadJSON(file string, v any) bool {
	b, err := os.ReadFile(file)
	return err == nil && json.Unmarshal(b, v) == nil
}

// WriteJSON writes v's JSON encoding to file with Write.
func WriteJSON(file string, v any) error {
	return Write(file, func(w io.Writer) error { return json.NewEncoder(w).Encode(v) })
}
