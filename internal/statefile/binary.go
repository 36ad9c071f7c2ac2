package statefile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"strings"
)

// The binary files of the state dir are
//
//	a magic line naming the file's kind and format version
//	what the caller writes: uvarints, strings, fixed-size bytes
//	CRC-32C (Castagnoli) of all the above, 4 bytes big-endian
//
// Callers put all their strings in one text block (its length, then its
// bytes) ahead of the lengths that slice it, so that a load reads them into
// one string rather than allocating one string a field.

// ErrCorrupt is returned by ReadBinary for a file that is not whole and of
// the format asked for: cut short, changed, longer, or of another kind or
// format version.
var ErrCorrupt = errors.New("corrupt state file")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// A BinaryWriter writes the fields of a binary file; the first error of any
// write is returned by WriteBinary.
type BinaryWriter struct {
	bw  *bufio.Writer
	buf [binary.MaxVarintLen64]byte
}

// Uvarint writes x as a uvarint.
func (w *BinaryWriter) Uvarint(x uint64) { w.bw.Write(binary.AppendUvarint(w.buf[:0], x)) }

// String writes s's bytes, with no length.
func (w *BinaryWriter) String(s string) { w.bw.WriteString(s) }

// Bytes writes b, with no length. It copies b through the buffer's spare
// room, so that b does not escape: a caller's array stays on its stack.
func (w *BinaryWriter) Bytes(b []byte) { w.bw.Write(append(w.bw.AvailableBuffer(), b...)) }

// WriteBinary creates or replaces file with Write: magic, what write
// writes, then the CRC-32C of both.
func WriteBinary(file, magic string, write func(w *BinaryWriter)) error {
	return Write(file, func(f io.Writer) error {
		h := crc32.New(castagnoli)
		w := &BinaryWriter{bw: bufio.NewWriter(io.MultiWriter(f, h))}
		w.String(magic)
		write(w)
		if err := w.bw.Flush(); err != nil {
			return err
		}
		_, err := f.Write(binary.BigEndian.AppendUint32(nil, h.Sum32()))
		return err
	})
}

// A BinaryReader reads the fields of a binary file in one buffered pass.
// Its first failure is kept: from then on it reads zero values, and
// ReadBinary returns ErrCorrupt.
type BinaryReader struct {
	r    *bufio.Reader
	size uint64 // of the file but its checksum: no count or length is larger
	text string
	off  uint64 // of the next string in text
	bad  bool
}

// Corrupt marks the file corrupt, for what only the caller can tell
// (a key twice).
func (r *BinaryReader) Corrupt() { r.bad = true }

// Uvarint reads a uvarint.
func (r *BinaryReader) Uvarint() uint64 {
	x, err := binary.ReadUvarint(r.r)
	if err != nil {
		r.bad = true
		return 0
	}
	return x
}

// Count reads a uvarint count of items, each at least min bytes long
// (min > 0): a count the file cannot hold is corrupt, so that the caller
// does not allocate for it.
func (r *BinaryReader) Count(min uint64) int {
	n := r.Uvarint()
	if n > r.size/min {
		r.bad = true
		return 0
	}
	return int(n)
}

// Text reads the text block: its length, then its bytes, into one string
// that String slices.
func (r *BinaryReader) Text() {
	t := r.Uvarint()
	if r.bad || t > r.size {
		r.bad = true
		return
	}
	var sb strings.Builder
	sb.Grow(int(t))
	if _, err := io.CopyN(&sb, r.r, int64(t)); err != nil {
		r.bad = true
		return
	}
	r.text = sb.String()
}

// String reads a uvarint length and returns the next that many bytes of
// the text block.
func (r *BinaryReader) String() string {
	l := r.Uvarint()
	if r.bad || l > uint64(len(r.text))-r.off {
		r.bad = true
		return ""
	}
	s := r.text[r.off : r.off+l]
	r.off += l
	return s
}

// Bytes reads n bytes (at most the reader's buffer, 64 KiB); they are
// valid until the next read.
func (r *BinaryReader) Bytes(n int) []byte {
	b, err := r.r.Peek(n)
	if err != nil {
		r.bad = true
		return make([]byte, n)
	}
	r.r.Discard(n)
	return b
}

// ReadBinary reads file with read, which reads the fields that follow
// magic. It returns the error of opening file (fs.ErrNotExist for none),
// or ErrCorrupt if the file does not start with magic, read finds it
// corrupt, or read leaves bytes of the file or of its text block unread,
// or the checksum does not match.
func ReadBinary(file, magic string, read func(r *BinaryReader)) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size() - 4 // without the checksum
	if size < int64(len(magic)) {
		return ErrCorrupt
	}
	h := crc32.New(castagnoli)
	r := &BinaryReader{r: bufio.NewReaderSize(io.TeeReader(io.LimitReader(f, size), h), 1<<16), size: uint64(size)}
	if m := r.Bytes(len(magic)); string(m) != magic {
		return ErrCorrupt
	}
	read(r)
	if _, err := r.r.ReadByte(); r.bad || err != io.EOF || r.off != uint64(len(r.text)) {
		return ErrCorrupt
	}
	var sum [4]byte
	if _, err := io.ReadFull(f, sum[:]); err != nil || binary.BigEndian.Uint32(sum[:]) != h.Sum32() {
		return ErrCorrupt
	}
	return nil
}

// A BinaryFile is a binary state file, x.bin, that succeeds x.json, the
// JSON file of the format before: while x.bin does not exist, x.json is
// read instead, and the first Write removes it.
type BinaryFile struct {
	Name, Magic string
	legacy      string // x.json, until Write removed it
}

// NewBinaryFile returns the binary file name ("" for none: Read finds
// nothing, Write is not to be called) of the kind and format magic.
func NewBinaryFile(name, magic string) *BinaryFile {
	f := &BinaryFile{Name: name, Magic: magic}
	if base, ok := strings.CutSuffix(name, ".bin"); ok {
		f.legacy = base + ".json"
	}
	return f
}

// Read reads the file with read, as ReadBinary does. If it does not exist
// and the JSON file of the format before does, that is decoded into old
// (as ReadJSON does) and fromJSON is true: the caller converts it, and
// must Write the file anew.
func (f *BinaryFile) Read(read func(r *BinaryReader), old any) (fromJSON bool, err error) {
	err = ReadBinary(f.Name, f.Magic, read)
	if errors.Is(err, fs.ErrNotExist) && f.legacy != "" && ReadJSON(f.legacy, old) {
		return true, nil
	}
	return false, err
}

// Write writes the file with write, as WriteBinary does, then removes the
// JSON file of the format before, if any.
func (f *BinaryFile) Write(write func(w *BinaryWriter)) error {
	if err := WriteBinary(f.Name, f.Magic, write); err != nil {
		return err
	}
	if f.legacy != "" {
		if err := os.Remove(f.legacy); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove the file of the format before: %w", err)
		}
		f.legacy = ""
	}
	return nil
}
