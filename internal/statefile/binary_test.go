package statefile

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
)

// TestBinary: what a BinaryWriter writes a BinaryReader reads back, and a
// file whose checksum holds but whose content does not is ErrCorrupt.
func TestBinary(t *testing.T) {
	const magic = "chartsync test 1\n"
	// Each file: a count of items (two bytes each), the text "abcd", then
	// uvarints that cut it.
	write := func(count uint64, cuts ...uint64) func(w *BinaryWriter) {
		return func(w *BinaryWriter) {
			w.Uvarint(count)
			w.Uvarint(4)
			w.String("abcd")
			for _, c := range cuts {
				w.Uvarint(c)
			}
			w.Bytes([]byte{7, 8})
		}
	}
	tests := []struct {
		name    string
		magic   string
		min     uint64 // bytes an item takes at least; 0: 2
		write   func(w *BinaryWriter)
		want    []string // the strings read, one a cut
		wantErr error
	}{
		{name: "whole", magic: magic, write: write(2, 1, 3), want: []string{"a", "bcd"}},
		{name: "empty strings", magic: magic, write: write(3, 0, 4, 0), want: []string{"", "abcd", ""}},
		{name: "other magic", magic: "chartsync test 2\n", write: write(2, 1, 3), wantErr: ErrCorrupt},
		{name: "count the file cannot hold", magic: magic, min: 20, write: write(2, 1, 3), wantErr: ErrCorrupt},
		{name: "text left over", magic: magic, write: write(2, 1, 2), wantErr: ErrCorrupt},
		{name: "string past the text", magic: magic, write: write(2, 1, 4), wantErr: ErrCorrupt},
		{name: "bytes left over", magic: magic, write: func(w *BinaryWriter) { write(2, 1, 3)(w); w.Bytes([]byte{0}) }, wantErr: ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "f.bin")
			if err := WriteBinary(file, tt.magic, tt.write); err != nil {
				t.Fatal(err)
			}
			var got []string
			var tail []byte
			err := ReadBinary(file, magic, func(r *BinaryReader) {
				n := r.Count(max(tt.min, 2))
				r.Text()
				for range n {
					got = append(got, r.String())
				}
				tail = append(tail, r.Bytes(2)...)
			})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && (len(got) != len(tt.want) || string(tail) != "\x07\x08") {
				t.Fatalf("read %q, %v; want %q, [7 8]", got, tail, tt.want)
			}
			for i := range tt.want {
				if got[i] != tt.want[i] {
					t.Errorf("string %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
	if err := ReadBinary(filepath.Join(t.TempDir(), "missing"), magic, func(*BinaryReader) {}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}
