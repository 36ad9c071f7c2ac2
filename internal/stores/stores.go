// Package stores builds the store backends that the [store.NAME] tables of
// the configuration describe. It is the one place that turns settings and
// secret files into a store.Store, so that `chartsync serve`, which only
// reads stores, needs nothing but the stores' own credentials.
package stores

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/chartsync/chartsync/internal/config"
	"github.com/chartsync/chartsync/internal/publisher/local"
	"github.com/chartsync/chartsync/internal/publisher/s3"
	"github.com/chartsync/chartsync/internal/publisher/store"
	"github.com/chartsync/chartsync/internal/publisher/swift"
)

// Check does everything Open does except creating the store: it reads the
// secret files sc names, takes the rest from getenv (the AWS and OpenStack
// conventions) and checks that the settings are complete. It creates
// nothing and contacts nobody.
func Check(sc config.Store, getenv func(string) string) error {
	_, err := build(context.Background(), sc, getenv, false)
	return err
}

// Open returns the store sc describes, each request bounded by sc.Timeout
// (see WithTimeout). A local store's directory is created; S3 and Swift
// are not contacted. Secrets come from the files sc names, else from
// getenv.
func Open(ctx context.Context, sc config.Store, getenv func(string) string) (store.Store, error) {
	return build(ctx, sc, getenv, true)
}

func build(ctx context.Context, sc config.Store, getenv func(string) string, open bool) (store.Store, error) {
	var st store.Store
	switch {
	case sc.Local != nil:
		if !open {
			return nil, nil
		}
		l, err := local.New(ctx, local.Config{Path: sc.Local.Path})
		if err != nil {
			return nil, err
		}
		st = l
	case sc.S3 != nil:
		c := sc.S3
		id, err := readSecret("access_key_id_file", c.AccessKeyIDFile)
		if err != nil {
			return nil, err
		}
		secret, err := readSecret("secret_access_key_file", c.SecretAccessKeyFile)
		if err != nil {
			return nil, err
		}
		s, err := s3.New(ctx, s3.Config{
			Bucket: c.Bucket, Region: c.Region, Endpoint: c.Endpoint, PathStyle: c.PathStyle,
			Profile: c.Profile, AccessKeyID: id, SecretAccessKey: secret,
		})
		if err != nil {
			return nil, err
		}
		st = s
	case sc.Swift != nil:
		c := sc.Swift
		cfg := swift.ConfigFromEnv(getenv)
		key, err := readSecret("key_file", c.KeyFile)
		if err != nil {
			return nil, err
		}
		appSecret, err := readSecret("application_credential_secret_file", c.ApplicationCredentialSecretFile)
		if err != nil {
			return nil, err
		}
		for _, f := range []struct {
			dst *string
			v   string
		}{
			{&cfg.AuthURL, c.AuthURL}, {&cfg.User, c.User}, {&cfg.Key, key},
			{&cfg.Project, c.Project}, {&cfg.ProjectID, c.ProjectID},
			{&cfg.Domain, c.Domain}, {&cfg.ProjectDomain, c.ProjectDomain},
			{&cfg.Region, c.SwiftRegion}, {&cfg.ApplicationCredentialID, c.ApplicationCredentialID},
			{&cfg.ApplicationCredentialSecret, appSecret},
		} {
			if f.v != "" {
				*f.dst = f.v
			}
		}
		if c.AuthVersion != 0 {
			cfg.AuthVersion = c.AuthVersion
		}
		cfg.Container = c.Container
		cfg.Timeout = sc.Timeout.Duration
		s, err := swift.New(ctx, cfg)
		if err != nil {
			return nil, err
		}
		st = s
	default:
		return nil, fmt.Errorf("type %q is not supported", sc.Type)
	}
	return WithTimeout(st, sc.Timeout.Duration), nil
}

// readSecret reads a secret file named by key; an empty name gives "".
// A file that is empty or only white space is an error: it is never what
// was meant, and an empty credential would silently fall back to another.
func readSecret(key, name string) (string, error) {
	s, err := config.ReadSecret(name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	if name != "" && s == "" {
		return "", fmt.Errorf("%s %s: the file is empty", key, name)
	}
	return s, nil
}

// ErrTimeout is wrapped, with context.DeadlineExceeded, by the error of a
// store request that ran out of its time.
var ErrTimeout = errors.New("store request timed out")

// WithTimeout returns a store.Store that gives each request of s at most d
// (no bound if d <= 0). A request that runs out of time returns an error
// wrapping ErrTimeout and context.DeadlineExceeded; the caller's own
// cancellation is passed on unchanged.
func WithTimeout(s store.Store, d time.Duration) store.Store {
	if d <= 0 {
		return s
	}
	return &timeoutStore{s: s, d: d}
}

type timeoutStore struct {
	s store.Store
	d time.Duration
}

var _ store.Store = (*timeoutStore)(nil)

func (t *timeoutStore) do(ctx context.Context, op, key string, f func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	err := f(cctx)
	if err != nil && ctx.Err() == nil && errors.Is(cctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w after %s: %w (%w)", op, key, ErrTimeout, t.d, context.DeadlineExceeded, err)
	}
	return err
}

func (t *timeoutStore) Get(ctx context.Context, key string) (data []byte, version string, err error) {
	err = t.do(ctx, "get", key, func(ctx context.Context) error {
		var err error
		data, version, err = t.s.Get(ctx, key)
		return err
	})
	return data, version, err
}

// Open bounds the time to open the object, not the reading of its body,
// which may be a long download to a slow client: the caller's context and
// Close end it.
func (t *timeoutStore) Open(ctx context.Context, key string) (io.ReadCloser, store.Object, error) {
	cctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(t.d, cancel)
	r, obj, err := t.s.Open(cctx, key)
	if !timer.Stop() && err != nil && ctx.Err() == nil {
		cancel()
		return nil, obj, fmt.Errorf("open %s: %w after %s: %w (%w)", key, ErrTimeout, t.d, context.DeadlineExceeded, err)
	}
	if err != nil {
		cancel()
		return nil, obj, err
	}
	return &cancelReader{ReadCloser: r, cancel: cancel}, obj, nil
}

// cancelReader ends its context when closed.
type cancelReader struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (r *cancelReader) Close() error {
	defer r.cancel()
	return r.ReadCloser.Close()
}

func (t *timeoutStore) Create(ctx context.Context, key string, data []byte) error {
	return t.do(ctx, "create", key, func(ctx context.Context) error { return t.s.Create(ctx, key, data) })
}

func (t *timeoutStore) Replace(ctx context.Context, key string, data []byte, version string) (newVersion string, err error) {
	err = t.do(ctx, "replace", key, func(ctx context.Context) error {
		var err error
		newVersion, err = t.s.Replace(ctx, key, data, version)
		return err
	})
	return newVersion, err
}

func (t *timeoutStore) List(ctx context.Context, prefix string) (objs []store.Object, err error) {
	err = t.do(ctx, "list", prefix, func(ctx context.Context) error {
		var err error
		objs, err = t.s.List(ctx, prefix)
		return err
	})
	return objs, err
}

func (t *timeoutStore) Atomic() bool   { return t.s.Atomic() }
func (t *timeoutStore) String() string { return t.s.String() }
