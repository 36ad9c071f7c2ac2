package swift

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/chartsync/chartsync/internal/publisher/store"
)

// Open implements store.Store with one GET whose body is streamed. Close
// reports a body that does not match its ETag (MD5) or its length, once it
// was read to the end.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, store.Object, error) {
	if err := s.ready(ctx); err != nil {
		return nil, store.Object{}, fmt.Errorf("open %s: %w", key, err)
	}
	f, headers, err := s.conn.ObjectOpen(ctx, s.container, key, true, nil)
	if err != nil {
		return nil, store.Object{}, fmt.Errorf("open %s: %w", key, s.notFound(ctx, err))
	}
	size, err := f.Length(ctx) // from the GET's Content-Length
	if err != nil {
		f.Close()
		return nil, store.Object{}, fmt.Errorf("open %s: %w", key, err)
	}
	obj := store.Object{Key: key, Size: size, Version: strings.Trim(headers["Etag"], `"`)}
	// Only Read and Close: the library's Seek re-opens the object and could
	// mix two versions.
	return struct {
		io.Reader
		io.Closer
	}{f, f}, obj, nil
}
