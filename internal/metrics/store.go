package metrics

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/chartsync/chartsync/internal/publisher/store"
)

// OpOpen is the operation label of Store.Open (a streamed read). Its
// duration is the time to the first byte: reading the body is the caller's.
const OpOpen = "open"

// InstrumentStore returns a store.Store that behaves exactly like s and
// measures each Get, Open, Create, Replace and List in chartsync_store_operations_total,
// chartsync_store_operation_duration_seconds and chartsync_store_errors_total,
// labelled with backend (a short fixed name such as "local", "s3" or "swift")
// and the operation. The series of every operation start at 0.
//
// These answers are not errors: ErrNotExist from Get and Open, ErrExist from Create,
// ErrConflict from Replace (a guarded write that lost to a concurrent writer,
// which the caller retries), and context.Canceled when the caller's context
// was cancelled (a shutdown, not a store fault). Atomic and String are passed
// through unmeasured.
func (m *Metrics) InstrumentStore(backend string, s store.Store) store.Store {
	for _, op := range []string{OpGet, OpOpen, OpCreate, OpReplace, OpList} {
		m.StoreOperations.WithLabelValues(backend, op)
		m.StoreErrors.WithLabelValues(backend, op)
		m.StoreDuration.WithLabelValues(backend, op)
	}
	return &instrumentedStore{s: s, m: m, backend: backend}
}

type instrumentedStore struct {
	s       store.Store
	m       *Metrics
	backend string
}

var _ store.Store = (*instrumentedStore)(nil)

// observe records one operation that started at start and returned err;
// normal is the sentinel that is an answer, not an error, for op.
func (i *instrumentedStore) observe(ctx context.Context, op string, start time.Time, err, normal error) {
	i.m.StoreDuration.WithLabelValues(i.backend, op).Observe(time.Since(start).Seconds())
	i.m.StoreOperations.WithLabelValues(i.backend, op).Inc()
	if err == nil || (normal != nil && errors.Is(err, normal)) {
		return
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return
	}
	i.m.StoreErrors.WithLabelValues(i.backend, op).Inc()
}

func (i *instrumentedStore) Get(ctx context.Context, key string) ([]byte, string, error) {
	start := time.Now()
	data, version, err := i.s.Get(ctx, key)
	i.observe(ctx, OpGet, start, err, store.ErrNotExist)
	return data, version, err
}

func (i *instrumentedStore) Open(ctx context.Context, key string) (io.ReadCloser, store.Object, error) {
	start := time.Now()
	r, obj, err := i.s.Open(ctx, key)
	i.observe(ctx, OpOpen, start, err, store.ErrNotExist)
	return r, obj, err
}

func (i *instrumentedStore) Create(ctx context.Context, key string, data []byte) error {
	start := time.Now()
	err := i.s.Create(ctx, key, data)
	i.observe(ctx, OpCreate, start, err, store.ErrExist)
	return err
}

func (i *instrumentedStore) Replace(ctx context.Context, key string, data []byte, version string) (string, error) {
	start := time.Now()
	newVersion, err := i.s.Replace(ctx, key, data, version)
	i.observe(ctx, OpReplace, start, err, store.ErrConflict)
	return newVersion, err
}

func (i *instrumentedStore) List(ctx context.Context, prefix string) ([]store.Object, error) {
	start := time.Now()
	objs, err := i.s.List(ctx, prefix)
	i.observe(ctx, OpList, start, err, nil)
	return objs, err
}

// Unwrap returns the measured store, for its optional interfaces (see
// store.AsVersioned). What goes through them directly is not measured.
func (i *instrumentedStore) Unwrap() store.Store { return i.s }

func (i *instrumentedStore) Atomic() bool   { return i.s.Atomic() }
func (i *instrumentedStore) String() string { return i.s.String() }
