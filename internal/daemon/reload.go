package daemon

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"

	"github.com/chartsync/chartsync/internal/metrics"
)

// ReloadOnSignal calls reload each time one of sigs (typically SIGHUP)
// arrives, until ctx is done or stop is called. Each outcome is recorded with
// m.RecordConfigReload; a failure is logged (the old configuration stays in
// force: reload must apply nothing when it fails, as Reconfigure does). The
// signals are registered before ReloadOnSignal returns, so one sent right
// after cannot kill the process. Reloads run one at a time. stop unregisters
// the signals and waits for a running reload to return.
func ReloadOnSignal(ctx context.Context, reload func(context.Context) error, m *metrics.Metrics, log *slog.Logger, sigs ...os.Signal) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-ch:
				err := reload(ctx)
				m.RecordConfigReload(err)
				if err != nil {
					log.Error("configuration reload failed; keeping the old configuration", "signal", sig.String(), "err", err)
					continue
				}
				log.Info("configuration reloaded", "signal", sig.String())
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		cancel()
		wg.Wait()
	}
}
