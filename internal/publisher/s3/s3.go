// Package s3 implements store.Store on Amazon S3 and S3-compatible servers
// (versitygw, MinIO, Ceph RGW) with real compare-and-swap: conditional
// PutObject with If-None-Match: * and If-Match: <etag>.
//
// Guarantees, beyond the store contract:
//   - Create and Replace are atomic on the server: of racing writers exactly
//     one wins, the others get ErrExist or ErrConflict (S3 answers 412).
//   - A transport error, a 5xx or a throttling answer to a conditional write
//     means "outcome unknown": the request may or may not have been applied.
//     Before retrying or failing, the store reads the object back; if it
//     holds exactly the bytes being written, the write is reported as a
//     success (with the stored version). A write reported as a success has
//     landed; a write reported as an error may still have landed (the
//     server may apply a request after the client gave up on it), so
//     callers re-read, as the publisher does every cycle.
//   - A 412 is never retried. Transient failures are retried a bounded
//     number of times with exponential backoff (Config.MaxAttempts).
//   - Versions are the objects' ETags without quotes.
package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/chartsync/chartsync/internal/publisher/store"
)

// DefaultMaxAttempts is the number of attempts per operation when
// Config.MaxAttempts is zero.
const DefaultMaxAttempts = 4

// Config locates a bucket and says how to authenticate. Keys passed to the
// Store are full object keys: a repository prefix is the caller's business.
//
// Settings left empty come from the AWS SDK's default chain, read by New:
// the AWS_* environment variables (AWS_REGION, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE, AWS_ENDPOINT_URL_S3
// ...), the shared config and credentials files (~/.aws/config,
// ~/.aws/credentials), web identity and the EC2/ECS instance roles. Fields
// set here override that chain.
type Config struct {
	Bucket string // required
	// Region of the bucket. If neither the config nor the chain names one
	// and Endpoint is set, "us-east-1" is used (what S3-compatible servers
	// expect); without Endpoint a missing region is an error.
	Region string
	// Endpoint is the base URL of an S3-compatible server, e.g.
	// "http://127.0.0.1:7070". Empty means AWS.
	Endpoint string
	// PathStyle addresses the bucket as ENDPOINT/BUCKET/KEY instead of
	// BUCKET.ENDPOINT/KEY; most S3-compatible servers need it.
	PathStyle bool
	// Static credentials. AccessKeyID and SecretAccessKey are set together
	// or not at all; SessionToken is optional.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// Profile selects a profile of the shared config files.
	Profile string
	// MaxAttempts bounds the attempts of one operation, the first included,
	// when the server is unreachable, answers 5xx or throttles. 0 means
	// DefaultMaxAttempts; 1 disables retries.
	MaxAttempts int
}

// Store is a store.Store on one S3 bucket. It is safe for concurrent use.
type Store struct {
	client      *s3.Client
	bucket      string
	endpoint    string
	maxAttempts int
	// backoff is the wait before the second attempt; it doubles after each.
	backoff time.Duration
}

var _ store.Store = (*Store)(nil)

// New checks cfg, resolves the SDK's configuration chain and returns a Store.
// It does not contact the server: a wrong bucket or bad credentials show up
// at the first operation.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: bucket is required")
	}
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return nil, errors.New("s3: access key id and secret access key must be set together")
	}
	if cfg.SessionToken != "" && cfg.AccessKeyID == "" {
		return nil, errors.New("s3: session token needs an access key id and secret access key")
	}
	if cfg.MaxAttempts < 0 {
		return nil, fmt.Errorf("s3: max attempts %d is negative", cfg.MaxAttempts)
	}
	attempts := cfg.MaxAttempts
	if attempts == 0 {
		attempts = DefaultMaxAttempts
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryMaxAttempts(attempts),
		// Content-MD5 is sent on every write instead: every S3-compatible
		// server checks it, not all know the newer flexible checksums.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load aws config: %w", err)
	}
	if awsCfg.Region == "" {
		if cfg.Endpoint == "" && awsCfg.BaseEndpoint == nil {
			return nil, errors.New("s3: no region: set region in the config or AWS_REGION")
		}
		awsCfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	})
	return &Store{
		client:      client,
		bucket:      cfg.Bucket,
		endpoint:    cfg.Endpoint,
		maxAttempts: attempts,
		backoff:     100 * time.Millisecond,
	}, nil
}

// String returns "s3://BUCKET", followed by the endpoint if one is set.
func (s *Store) String() string {
	if s.endpoint != "" {
		return "s3://" + s.bucket + " at " + s.endpoint
	}
	return "s3://" + s.bucket
}

// Atomic reports true: S3 conditional writes are compare-and-swap.
func (s *Store) Atomic() bool { return true }

// Get returns the object's bytes and ETag, or store.ErrNotExist.
func (s *Store) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("get %s: %w", key, err)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(key),
	})
	if err != nil {
		if objectNotFound(err) {
			return nil, "", fmt.Errorf("get %s: %w", key, store.ErrNotExist)
		}
		return nil, "", fmt.Errorf("get %s: %w", key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, "", fmt.Errorf("get %s: read body: %w", key, err)
	}
	return data, unquote(aws.ToString(out.ETag)), nil
}

// Create stores data under key with If-None-Match: *, or returns
// store.ErrExist. See the package comment for what an unknown outcome means.
func (s *Store) Create(ctx context.Context, key string, data []byte) error {
	_, err := s.put(ctx, key, data, "", store.ErrExist)
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	return nil
}

// Replace stores data under key with If-Match: "version" (If-None-Match: *
// when version is ""). A 412 gives store.ErrConflict, a missing object with
// a non-empty version store.ErrNotExist.
func (s *Store) Replace(ctx context.Context, key string, data []byte, version string) (string, error) {
	newVersion, err := s.put(ctx, key, data, version, store.ErrConflict)
	if err != nil {
		return "", fmt.Errorf("replace %s: %w", key, err)
	}
	return newVersion, nil
}

// put writes data under key if the stored object's version is version (""
// means: no object). A refused write returns refused (or ErrNotExist when
// the object is missing). It returns the new version.
func (s *Store) put(ctx context.Context, key string, data []byte, version string, refused error) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	sum := md5.Sum(data)
	in := &s3.PutObjectInput{
		Bucket:      aws.String(s.bucket),
		Key:         aws.String(key),
		ContentMD5:  aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		ContentType: aws.String(store.ContentType(key)),
	}
	if version == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(`"` + version + `"`)
	}
	// Do retries, so the SDK must not: its retry of a conditional write that
	// did land would come back as a 412 for our own write.
	noRetry := func(o *s3.Options) { o.RetryMaxAttempts = 1 }
	return store.ConditionalWrite{
		Key: key, Data: data, Version: version, Refused: refused,
		Attempts: s.maxAttempts, Backoff: s.backoff,
		Put: func(ctx context.Context) (string, error) {
			in.Body = bytes.NewReader(data)
			out, err := s.client.PutObject(ctx, in, noRetry)
			if err != nil {
				return "", err
			}
			return unquote(aws.ToString(out.ETag)), nil
		},
		Classify: func(err error) (store.Verdict, error) {
			code := statusCode(err)
			switch {
			case code == http.StatusPreconditionFailed:
				return store.Refused, nil
			case objectNotFound(err) && version != "":
				return store.Failed, store.ErrNotExist
			case transient(err, code):
				return store.Unknown, nil
			}
			return store.Failed, err
		},
		Get: s.Get,
	}.Do(ctx)
}

// List returns the objects whose keys start with prefix, in key order.
func (s *Store) List(ctx context.Context, prefix string) ([]store.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	var objects []store.Object
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(prefix),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			objects = append(objects, store.Object{
				Key:     aws.ToString(o.Key),
				Size:    aws.ToInt64(o.Size),
				Version: unquote(aws.ToString(o.ETag)),
			})
		}
	}
	slices.SortFunc(objects, func(a, b store.Object) int { return strings.Compare(a.Key, b.Key) })
	return objects, nil
}

// statusCode returns the HTTP status of a failed request, or 0 when no
// response was received.
func statusCode(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// objectNotFound reports whether err says the object (not the bucket) is
// missing.
func objectNotFound(err error) bool {
	if statusCode(err) != http.StatusNotFound {
		return false
	}
	var apiErr smithy.APIError
	return !errors.As(err, &apiErr) || apiErr.ErrorCode() != "NoSuchBucket"
}

// transient reports whether a failed write may be retried: no response at
// all, a server error, throttling, or a conflicting concurrent request (409
// ConditionalRequestConflict, which S3 asks clients to retry).
func transient(err error, code int) bool {
	switch {
	case code == 0, code >= 500, code == http.StatusTooManyRequests, code == http.StatusConflict:
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "RequestTimeout", "SlowDown", "Throttling", "ThrottlingException", "RequestThrottled":
			return true
		}
	}
	return false
}

func unquote(etag string) string {
	return strings.Trim(etag, `"`)
}
