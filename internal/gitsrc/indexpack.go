package gitsrc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// inMemoryMax is the largest object content indexPack keeps in memory while
// resolving deltas; larger contents go to a temporary file.
const inMemoryMax = 1 << 20

// packStorage is the repository's storage as a network fetch sees it: a
// received pack is spooled to disk and indexed by indexPack, whose memory
// does not grow with the size of an object, instead of by go-git's parser,
// which holds each object whole in memory (issue 9, case 9: a 300 MB file
// cost about 1 GB to clone).
type packStorage struct {
	*filesystem.Storage
	ctx context.Context // cancels the indexing too
}

// PackfileWriter implements storer.PackfileWriter.
func (s packStorage) PackfileWriter() (io.WriteCloser, error) {
	f, err := s.Filesystem().TempFile("objects/pack", "tmp_pack_")
	if err != nil {
		return nil, fmt.Errorf("spool pack: %w", err)
	}
	return &packSpool{ctx: s.ctx, st: s.Storage, f: f}, nil
}

// packSpool receives a pack into a temporary file and indexes it on Close.
type packSpool struct {
	ctx context.Context
	st  *filesystem.Storage
	f   billy.File
	n   int64
}

func (p *packSpool) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	p.n += int64(n)
	return n, err
}

func (p *packSpool) Close() error {
	fsys := p.st.Filesystem()
	name := p.f.Name()
	if err := p.f.Close(); err != nil {
		_ = fsys.Remove(name)
		return err
	}
	if p.n == 0 {
		return fsys.Remove(name)
	}
	keep, err := indexPack(p.ctx, p.st, name)
	if err != nil || !keep {
		_ = fsys.Remove(name)
	}
	return err
}

// packObject is one object of a pack being indexed.
type packObject struct {
	offset   int64
	crc      uint32
	typ      plumbing.ObjectType // resolved type once known
	delta    bool
	baseOff  int64         // OFS_DELTA base
	baseHash plumbing.Hash // REF_DELTA base
	hash     plumbing.Hash // known once resolved
	resolved bool
}

// content is an object's content held while its delta children are
// resolved: in memory if small, else in a temporary file.
type content interface {
	io.ReaderAt
	Size() int64
	Close() error
}

type memContent struct{ *bytes.Reader }

func (memContent) Close() error { return nil }

type fileContent struct {
	fsys billy.Filesystem
	f    billy.File
	size int64
}

func (c *fileContent) ReadAt(b []byte, off int64) (int, error) { return c.f.ReadAt(b, off) }
func (c *fileContent) Size() int64                             { return c.size }
func (c *fileContent) Close() error {
	err := c.f.Close()
	_ = c.fsys.Remove(c.f.Name())
	return err
}

// indexer resolves the objects of one pack file.
type indexer struct {
	ctx      context.Context
	st       *filesystem.Storage
	fsys     billy.Filesystem
	sc       *packfile.Scanner
	objs     []*packObject
	kids     map[int64][]*packObject         // delta children by base offset
	refKids  map[plumbing.Hash][]*packObject // REF_DELTA children by base id
	thin     bool                            // some base is not in the pack
	writeObj bool                            // write every object loose
	br       *bufio.Reader                   // reads a delta
	buf      []byte                          // scratch for patch
	win      window                          // base window for patch
}

// indexPack indexes the pack file name (in st's file system) with bounded
// memory: each object is hashed as it streams out of the pack, deltas are
// applied from a base held in memory only if it is small and otherwise read
// from a temporary file. A complete pack gets its .idx and moves into
// objects/pack (keep is true). A thin pack (deltas against objects st
// already has, which go-git asks servers for) cannot be kept as it is, so
// its objects are written as loose objects instead (keep is false).
func indexPack(ctx context.Context, st *filesystem.Storage, name string) (keep bool, err error) {
	fsys := st.Filesystem()
	f, err := fsys.Open(name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	ix := &indexer{ctx: ctx, st: st, fsys: fsys, sc: packfile.NewScanner(f),
		kids: map[int64][]*packObject{}, refKids: map[plumbing.Hash][]*packObject{}}
	checksum, err := ix.scan()
	if err != nil {
		return false, fmt.Errorf("index pack: %w", err)
	}
	ix.writeObj = ix.thin
	if ix.writeObj {
		if err := ix.writeBases(); err != nil {
			return false, fmt.Errorf("index pack: %w", err)
		}
	}
	if err := ix.resolveAll(); err != nil {
		return false, fmt.Errorf("index pack: %w", err)
	}
	if ix.writeObj {
		ix.st.ObjectStorage.Reindex()
		return false, nil
	}
	w := new(idxfile.Writer)
	if err := w.OnHeader(uint32(len(ix.objs))); err != nil {
		return false, err
	}
	for _, o := range ix.objs {
		w.Add(o.hash, uint64(o.offset), o.crc)
	}
	if err := w.OnFooter(checksum); err != nil {
		return false, fmt.Errorf("index pack: %w", err)
	}
	idx, err := w.Index()
	if err != nil {
		return false, fmt.Errorf("index pack: %w", err)
	}
	base := path.Join("objects/pack", "pack-"+checksum.String())
	tmp, err := fsys.TempFile("objects/pack", "tmp_idx_")
	if err != nil {
		return false, err
	}
	if _, err := idxfile.NewEncoder(tmp).Encode(idx); err != nil {
		tmp.Close()
		_ = fsys.Remove(tmp.Name())
		return false, fmt.Errorf("write pack index: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	// The pack first, so that no reader finds an index without its pack.
	if err := fsys.Rename(name, base+".pack"); err != nil {
		_ = fsys.Remove(tmp.Name())
		return false, err
	}
	if err := fsys.Rename(tmp.Name(), base+".idx"); err != nil {
		return false, err
	}
	ix.st.ObjectStorage.Reindex()
	return true, nil
}

// scan reads every object header once, hashing non-delta objects as they
// stream by, and returns the pack's checksum.
func (ix *indexer) scan() (plumbing.Hash, error) {
	_, count, err := ix.sc.Header()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	inPack := map[plumbing.Hash]bool{}
	var refs []*packObject
	for range count {
		if err := ix.ctx.Err(); err != nil {
			return plumbing.ZeroHash, err
		}
		oh, err := ix.sc.NextObjectHeader()
		if err != nil {
			return plumbing.ZeroHash, err
		}
		o := &packObject{offset: oh.Offset, typ: oh.Type}
		switch oh.Type {
		case plumbing.OFSDeltaObject:
			o.delta, o.baseOff = true, oh.OffsetReference
			ix.kids[o.baseOff] = append(ix.kids[o.baseOff], o)
			_, o.crc, err = ix.sc.NextObject(io.Discard)
		case plumbing.REFDeltaObject:
			o.delta, o.baseHash = true, oh.Reference
			refs = append(refs, o)
			_, o.crc, err = ix.sc.NextObject(io.Discard)
		default:
			h := plumbing.NewHasher(oh.Type, oh.Length)
			_, o.crc, err = ix.sc.NextObject(h)
			o.hash, o.resolved = h.Sum(), true
			inPack[o.hash] = true
		}
		if err != nil {
			return plumbing.ZeroHash, err
		}
		ix.objs = append(ix.objs, o)
	}
	for _, o := range refs {
		ix.refKids[o.baseHash] = append(ix.refKids[o.baseHash], o)
		if !inPack[o.baseHash] {
			ix.thin = true // or a base that is itself a delta: resolved below
		}
	}
	return ix.sc.Checksum()
}

// writeBases writes the non-delta objects of the pack as loose objects.
func (ix *indexer) writeBases() error {
	for _, o := range ix.objs {
		if o.delta || ix.st.HasEncodedObject(o.hash) == nil {
			continue
		}
		oh, err := ix.sc.SeekObjectHeader(o.offset)
		if err != nil {
			return err
		}
		w, header, err := ix.st.ObjectStorage.LazyWriter()
		if err != nil {
			return err
		}
		if err = header(o.typ, oh.Length); err == nil {
			_, _, err = ix.sc.NextObject(w)
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write object %s: %w", o.hash, err)
		}
	}
	return nil
}

// resolveAll resolves every delta, walking each base's children depth
// first, so a base is held only while its children are resolved.
func (ix *indexer) resolveAll() error {
	for _, o := range ix.objs {
		if o.delta || (len(ix.kids[o.offset]) == 0 && len(ix.refKids[o.hash]) == 0) {
			continue
		}
		data, err := ix.readBase(o)
		if err != nil {
			return err
		}
		err = ix.walk(o, data)
		data.Close()
		if err != nil {
			return err
		}
	}
	// REF_DELTA bases outside the pack: objects st already has (thin pack).
	for h, kids := range ix.refKids {
		if len(kids) == 0 {
			continue
		}
		data, typ, err := ix.readStored(h)
		if err != nil {
			return fmt.Errorf("delta base %s: %w", h, err)
		}
		base := &packObject{hash: h, typ: typ, resolved: true, offset: -1}
		err = ix.walk(base, data)
		data.Close()
		if err != nil {
			return err
		}
	}
	for _, o := range ix.objs {
		if !o.resolved {
			return fmt.Errorf("delta at offset %d: base never found", o.offset)
		}
	}
	return nil
}

// walk resolves the children of base, whose content is data.
func (ix *indexer) walk(base *packObject, data content) error {
	kids := append(ix.kids[base.offset], ix.refKids[base.hash]...)
	delete(ix.refKids, base.hash)
	if base.offset >= 0 {
		delete(ix.kids, base.offset)
	}
	for _, k := range kids {
		if err := ix.ctx.Err(); err != nil {
			return err
		}
		keep := len(ix.kids[k.offset]) > 0
		got, err := ix.apply(base, data, k, keep)
		if err != nil {
			return err
		}
		if got == nil && len(ix.refKids[k.hash]) > 0 {
			if got, err = ix.apply(base, data, k, true); err != nil {
				return err
			}
		}
		if got != nil {
			err = ix.walk(k, got)
			got.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// apply resolves delta k against base's content data, hashing the result
// (and writing it loose if the pack is thin); with keep, it returns the
// result's content.
func (ix *indexer) apply(base *packObject, data content, k *packObject, keep bool) (content, error) {
	if _, err := ix.sc.SeekObjectHeader(k.offset); err != nil {
		return nil, err
	}
	r, err := ix.sc.ReadObject()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if ix.br == nil {
		ix.br = bufio.NewReaderSize(r, 0x10000)
	}
	br := ix.br
	br.Reset(r)
	srcSize, err := readDeltaSize(br)
	if err != nil {
		return nil, err
	}
	if srcSize != data.Size() {
		return nil, fmt.Errorf("delta at offset %d: base size %d, want %d", k.offset, data.Size(), srcSize)
	}
	size, err := readDeltaSize(br)
	if err != nil {
		return nil, err
	}
	k.typ = base.typ
	h := plumbing.NewHasher(k.typ, size)
	writers := []io.Writer{h}
	var out content
	var sink io.Writer
	if keep {
		if out, sink, err = ix.newContent(size); err != nil {
			return nil, err
		}
		writers = append(writers, sink)
	}
	var loose io.WriteCloser // closed exactly once: go-git pools its zlib writer
	closeLoose := func() error {
		if loose == nil {
			return nil
		}
		l := loose
		loose = nil
		return l.Close()
	}
	fail := func(err error) (content, error) {
		_ = closeLoose()
		if out != nil {
			out.Close()
		}
		return nil, err
	}
	if ix.writeObj {
		w, header, err := ix.st.ObjectStorage.LazyWriter()
		if err != nil {
			return fail(err)
		}
		loose = w
		if err := header(k.typ, size); err != nil {
			return fail(err)
		}
		writers = append(writers, w)
	}
	if err := ix.patch(io.MultiWriter(writers...), data, br, size); err != nil {
		return fail(fmt.Errorf("delta at offset %d: %w", k.offset, err))
	}
	if err := closeLoose(); err != nil {
		return fail(err)
	}
	k.hash, k.resolved = h.Sum(), true
	if b, ok := sink.(*bytes.Buffer); ok {
		out = memContent{bytes.NewReader(b.Bytes())}
	}
	return out, nil
}

// newContent returns a place for size bytes of content and the writer that
// fills it.
func (ix *indexer) newContent(size int64) (content, io.Writer, error) {
	if size <= inMemoryMax {
		b := bytes.NewBuffer(make([]byte, 0, size))
		return memContent{bytes.NewReader(nil)}, b, nil
	}
	f, err := ix.fsys.TempFile("objects/pack", "tmp_delta_")
	if err != nil {
		return nil, nil, err
	}
	return &fileContent{fsys: ix.fsys, f: f, size: size}, f, nil
}

// readBase returns the content of non-delta object o of the pack.
func (ix *indexer) readBase(o *packObject) (content, error) {
	oh, err := ix.sc.SeekObjectHeader(o.offset)
	if err != nil {
		return nil, err
	}
	out, sink, err := ix.newContent(oh.Length)
	if err != nil {
		return nil, err
	}
	if _, _, err := ix.sc.NextObject(sink); err != nil {
		out.Close()
		return nil, err
	}
	if b, ok := sink.(*bytes.Buffer); ok {
		return memContent{bytes.NewReader(b.Bytes())}, nil
	}
	return out, nil
}

// readStored returns the content and type of object h from st.
func (ix *indexer) readStored(h plumbing.Hash) (content, plumbing.ObjectType, error) {
	obj, err := ix.st.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return nil, 0, err
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	out, sink, err := ix.newContent(obj.Size())
	if err != nil {
		return nil, 0, err
	}
	if _, err := io.Copy(sink, r); err != nil {
		out.Close()
		return nil, 0, err
	}
	if b, ok := sink.(*bytes.Buffer); ok {
		return memContent{bytes.NewReader(b.Bytes())}, obj.Type(), nil
	}
	return out, obj.Type(), nil
}

var errBadDelta = errors.New("malformed delta")

// readDeltaSize reads one of the two sizes at the start of a delta: 7 bits
// per byte, least significant first, high bit set on all but the last.
func readDeltaSize(r io.ByteReader) (int64, error) {
	var size int64
	for shift := uint(0); shift < 63; shift += 7 {
		b, err := r.ReadByte()
		if err != nil {
			return 0, errBadDelta
		}
		size |= int64(b&0x7f) << shift
		if b&0x80 == 0 {
			return size, nil
		}
	}
	return 0, errBadDelta
}

// patch writes the delta's target to w: copy instructions read from base,
// insert instructions from the delta stream itself. Deltas of text files
// are millions of short instructions, so nothing here allocates per
// instruction and base is read through a window.
func (ix *indexer) patch(w io.Writer, base content, delta *bufio.Reader, size int64) error {
	if ix.buf == nil {
		ix.buf = make([]byte, 0x10000)
	}
	buf, win := ix.buf, &ix.win
	win.r, win.buf, win.start = base, win.buf[:0], 0
	if _, inMemory := base.(memContent); !inMemory && win.buf == nil {
		win.buf = make([]byte, 0, inMemoryMax)
	}
	var written int64
	for {
		cmd, err := delta.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		var chunk []byte
		switch {
		case cmd&0x80 != 0:
			var off, n int64
			for i := range 4 {
				if cmd&(1<<i) != 0 {
					b, err := delta.ReadByte()
					if err != nil {
						return errBadDelta
					}
					off |= int64(b) << (8 * i)
				}
			}
			for i := range 3 {
				if cmd&(0x10<<i) != 0 {
					b, err := delta.ReadByte()
					if err != nil {
						return errBadDelta
					}
					n |= int64(b) << (8 * i)
				}
			}
			if n == 0 {
				n = 0x10000
			}
			if chunk, err = win.slice(off, n, buf); err != nil {
				return err
			}
		case cmd != 0:
			chunk = buf[:cmd]
			if _, err := io.ReadFull(delta, chunk); err != nil {
				return errBadDelta
			}
		default:
			return errBadDelta
		}
		if written += int64(len(chunk)); written > size {
			return errBadDelta
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
	}
	if written != size {
		return errBadDelta
	}
	return nil
}

// window reads a ReaderAt through a buffer: copy instructions mostly move
// forward through the base, so most of them are served without a read.
type window struct {
	r     io.ReaderAt
	buf   []byte
	start int64
}

// slice returns the n bytes at off, from the window or else in scratch
// (which must hold n bytes).
func (w *window) slice(off, n int64, scratch []byte) ([]byte, error) {
	if off >= w.start && off+n <= w.start+int64(len(w.buf)) {
		return w.buf[off-w.start : off-w.start+n], nil
	}
	if _, inMemory := w.r.(memContent); inMemory || n > int64(cap(w.buf)) {
		k, err := w.r.ReadAt(scratch[:n], off)
		if int64(k) != n {
			return nil, fmt.Errorf("%w: copy past the end of the base (%v)", errBadDelta, err)
		}
		return scratch[:n], nil
	}
	k, err := w.r.ReadAt(w.buf[:cap(w.buf)], off)
	w.buf, w.start = w.buf[:k], off
	if int64(k) < n {
		return nil, fmt.Errorf("%w: copy past the end of the base (%v)", errBadDelta, err)
	}
	return w.buf[:n], nil
}
