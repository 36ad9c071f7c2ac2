// Package store defines the append-only object store a chart repository is
// published to. Implementations live in sibling packages (local, s3, swift)
// and all pass the conformance suite in package storetest.
package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors returned by every Store. Callers test them with errors.Is.
var (
	// ErrNotExist: Get of a key that is not stored; Replace with a non-empty
	// version of a key that is not stored.
	ErrNotExist = errors.New("object does not exist")
	// ErrExist: Create of a key that is already stored.
	ErrExist = errors.New("object already exists")
	// ErrConflict: Replace whose version no longer matches the stored object.
	ErrConflict = errors.New("object changed concurrently")
	// ErrInvalidKey: Create or Replace of a key this backend cannot store
	// (a file name longer than the file system allows, a NUL byte, a key
	// that leaves the store). It concerns that key alone: other keys can
	// still be written. Get and Open of a key that cannot be stored report
	// ErrNotExist, since no object can exist under it, or ErrInvalidKey.
	ErrInvalidKey = errors.New("key cannot be stored")
)

// Object describes one stored object as a listing reports it.
type Object struct {
	Key  string // full key, including any prefix
	Size int64
	// Version changes whenever the stored bytes change (an ETag, or size and
	// modification time). It is opaque: compare it only for equality.
	Version string
}

// Store is an append-only object store: there is no delete, and the only
// object that is ever replaced is the one written with Replace (index.yaml).
// Keys use "/" as separator and never start with "/".
type Store interface {
	// Get returns the object's bytes and its version, or ErrNotExist.
	Get(ctx context.Context, key string) (data []byte, version string, err error)
	// Open returns a reader of the object's bytes and the object's size and
	// version, or ErrNotExist, without reading the bytes: a caller can
	// refuse an object by its size, or stream it. The reader yields the
	// bytes of that one version (Size of them, unless reading fails: a
	// broken connection or a corrupt body is an error from Read or Close,
	// never a silent short read). If it also implements io.Seeker, seeking
	// stays within that version. The caller must Close it; ctx bounds the
	// whole read.
	Open(ctx context.Context, key string) (io.ReadCloser, Object, error)
	// Create stores data under key if no object exists there, else returns
	// ErrExist and leaves the stored object untouched. On a backend without
	// atomic create (Swift) two racing Creates may both succeed; callers
	// re-read what they wrote. A Create of bytes identical to the stored
	// ones may return nil instead of ErrExist: after an unknown outcome (a
	// transport error or 5xx) the store reads back, and then cannot tell
	// "we wrote it" from "it was there"; either way those bytes are stored.
	Create(ctx context.Context, key string, data []byte) error
	// Replace stores data under key if the stored object's version is still
	// version ("" means: only if no object exists), and returns the new
	// version. Otherwise it returns ErrConflict (or ErrNotExist for a
	// vanished object). Backends that cannot guard the write (Swift) check
	// before writing and say so in Atomic.
	Replace(ctx context.Context, key string, data []byte, version string) (newVersion string, err error)
	// List returns every object whose key starts with prefix, in key order.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Atomic reports whether Create and Replace are atomic compare-and-swap
	// operations on this backend.
	Atomic() bool
	// String names the backend and location for logs, e.g. "s3://bucket/prefix".
	String() string
}

// Backoff waits before retry number attempt (1, 2, ...): base doubled per
// attempt, capped at max, with jitter so that racing writers spread out. It
// returns ctx's error if ctx ends first.
func Backoff(ctx context.Context, base, max time.Duration, attempt int) error {
	d := min(base<<(attempt-1), max)
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Recheck decides what a conditional write whose outcome was unknown (a
// transport error or 5xx) should do after a read-back that found the
// object (found, at current) without our bytes in it: nil means the guard
// still holds and the write may be retried; otherwise the error to return.
// version is the write's guard ("" = create), refused the error for a
// failed guard on an existing object (ErrExist for Create, ErrConflict for
// Replace).
func Recheck(found bool, current, version string, refused error) error {
	switch {
	case version == "" && found:
		return refused
	case version != "" && !found:
		return ErrNotExist
	case version != "" && current != version:
		return ErrConflict
	}
	return nil
}

// ContentType is the media type a backend stores an object with, from the
// key's extension: what a web server in front of the bucket then serves.
func ContentType(key string) string {
	switch path.Ext(key) {
	case ".tgz":
		return "application/gzip"
	case ".yaml":
		return "application/yaml"
	case ".prov":
		return "application/pgp-signature"
	}
	return "application/octet-stream"
}

// ErrTooLarge: an object is larger than the caller's limit for it. The
// error wrapping it names the key, the size and the limit.
var ErrTooLarge = errors.New("object too large")

// ReadLimited returns the bytes and version of the object at key, or an
// error wrapping ErrTooLarge when it holds more than limit bytes (limit <= 0
// means no limit). It refuses by the size Open reports, before reading
// anything, and stops reading a body that turns out longer than announced,
// so that memory stays within limit.
func ReadLimited(ctx context.Context, s Store, key string, limit int64) ([]byte, string, error) {
	r, obj, err := s.Open(ctx, key)
	if err != nil {
		return nil, "", err
	}
	defer r.Close()
	if limit > 0 && obj.Size > limit {
		return nil, "", TooLarge(key, obj.Size, limit)
	}
	var body io.Reader = r
	if limit > 0 {
		body = io.LimitReader(r, limit+1)
	}
	var buf bytes.Buffer
	buf.Grow(int(obj.Size) + bytes.MinRead) // within limit: checked above
	n, err := buf.ReadFrom(body)
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", key, err)
	}
	if limit > 0 && n > limit {
		return nil, "", TooLarge(key, n, limit)
	}
	if err := r.Close(); err != nil {
		return nil, "", fmt.Errorf("read %s: %w", key, err)
	}
	return buf.Bytes(), obj.Version, nil
}

// TooLarge returns the error for an object of size bytes (at least) at key
// that is above limit.
func TooLarge(key string, size, limit int64) error {
	return fmt.Errorf("%s: %s is above the limit of %s: %w", key, FormatSize(size), FormatSize(limit), ErrTooLarge)
}

// FormatSize writes a byte count for people: "20 MiB", "512 B", and the
// exact count after a rounded one: "1.5 GiB (1610612736 B)".
func FormatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0") + " " + string("KMGTPE"[exp]) + "iB"
	if n%div != 0 {
		s += fmt.Sprintf(" (%d B)", n)
	}
	return s
}
