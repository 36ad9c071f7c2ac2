package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// Verdict classifies a failed attempt of a conditional write.
type Verdict int

const (
	// Failed: the write was refused for a reason of its own; the error is
	// returned as the backend gives it.
	Failed Verdict = iota
	// Refused: the write's guard did not hold (HTTP 412).
	Refused
	// Unknown: no answer, or one that does not say whether the write
	// landed (a transport error, a 5xx, throttling).
	Unknown
)

// ConditionalWrite is one write of Data under Key, guarded by Version (""
// = only if absent), on a backend where an attempt's outcome may be
// unknown. The S3 and Swift stores describe their requests with it and run
// it with Do, so that both keep the same rules.
type ConditionalWrite struct {
	Key     string
	Data    []byte
	Version string
	// Refused is returned when the guard does not hold: ErrExist for a
	// create, ErrConflict for a replace.
	Refused error
	// Attempts bounds the attempts (at least 1); Backoff is the wait
	// before the second one, doubled after each (see Backoff).
	Attempts int
	Backoff  time.Duration
	// Put makes one attempt and returns the new version.
	Put func(ctx context.Context) (version string, err error)
	// Classify says what a failed attempt means. With Failed, the error it
	// returns (err itself, or a clearer one) is Do's result.
	Classify func(err error) (Verdict, error)
	// Get reads the object back, as Store.Get.
	Get func(ctx context.Context, key string) ([]byte, string, error)
}

// Do runs the write. After an unknown outcome it reads the object back
// before anything else: holding exactly Data means the write landed (a
// success, even if it was another writer's identical bytes); otherwise the
// guard is checked again (Recheck) and, if it still holds, the write is
// retried. A refusal after an earlier unknown outcome is checked the same
// way, since it may answer our own landed write. Retries are bounded by
// Attempts; running out, or ctx ending, gives an "outcome unknown" error.
func (w ConditionalWrite) Do(ctx context.Context) (string, error) {
	var (
		lastErr error
		unknown bool // the last attempt may have landed
		tried   bool // some attempt may have landed
	)
	for attempt := range max(w.Attempts, 1) {
		if attempt > 0 {
			if err := Backoff(ctx, w.Backoff, 5*time.Second, attempt); err != nil {
				return "", fmt.Errorf("outcome unknown: %w (after %w)", err, lastErr)
			}
		}
		if unknown {
			stored, current, err := w.Get(ctx, w.Key)
			found := err == nil
			switch {
			case errors.Is(err, ErrNotExist):
			case err != nil:
				lastErr = fmt.Errorf("read back after unknown outcome: %w", err)
				continue
			case bytes.Equal(stored, w.Data):
				return current, nil
			}
			// Our write has not landed (if it lands later it is still
			// conditional, where the backend can guard it).
			if err := Recheck(found, current, w.Version, w.Refused); err != nil {
				return "", err
			}
			unknown = false
		}
		version, err := w.Put(ctx)
		if err == nil {
			return version, nil
		}
		lastErr = err
		verdict, final := w.Classify(err)
		switch {
		case verdict == Refused:
			if tried {
				if stored, current, gerr := w.Get(ctx, w.Key); gerr == nil && bytes.Equal(stored, w.Data) {
					return current, nil
				}
			}
			return "", w.Refused
		case ctx.Err() != nil:
			return "", fmt.Errorf("outcome unknown: %w", err)
		case verdict == Failed:
			return "", final
		}
		unknown, tried = true, true
	}
	return "", fmt.Errorf("outcome unknown after %d attempts: %w", max(w.Attempts, 1), lastErr)
}
