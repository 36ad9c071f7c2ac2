package syncer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrLocked: another chartsync holds the state directory's lock.
var ErrLocked = errors.New("another chartsync is running")

// Lock takes the state directory's lock, waiting up to wait for a running
// cycle to end, so that two runs on one machine never overlap. The lock is
// flock(2): it is released when the process exits, however it exits.
func Lock(ctx context.Context, stateDir string, wait time.Duration) (unlock func(), err error) {
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	name := filepath.Join(stateDir, "chartsync.lock")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(name)
			f.Close()
			holder := strings.TrimSpace(string(b))
			return nil, fmt.Errorf("%w: %s is held by pid %s (waited %s)", ErrLocked, name, holder, wait)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
