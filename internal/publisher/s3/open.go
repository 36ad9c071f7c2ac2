package s3

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/chartsync/chartsync/internal/publisher/store"
)

// Open implements store.Store with one GetObject whose body is streamed.
// A body shorter than its Content-Length is an error from Read.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, store.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, store.Object{}, fmt.Errorf("open %s: %w", key, err)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(key),
	})
	if err != nil {
		if objectNotFound(err) {
			return nil, store.Object{}, fmt.Errorf("open %s: %w", key, store.ErrNotExist)
		}
		return nil, store.Object{}, fmt.Errorf("open %s: %w", key, err)
	}
	obj := store.Object{Key: key, Size: aws.ToInt64(out.ContentLength), Version: unquote(aws.ToString(out.ETag))}
	return out.Body, obj, nil
}
