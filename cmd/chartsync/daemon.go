package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/chartsync/chartsync/internal/config"
	"github.com/chartsync/chartsync/internal/daemon"
	"github.com/chartsync/chartsync/internal/metrics"
	"github.com/chartsync/chartsync/internal/syncer"
)

// daemon runs cycles on the configured schedule until SIGTERM or SIGINT,
// and reloads the configuration on SIGHUP.
func (o *options) daemon(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg, version, revision())
	ld, log, s, err := o.open(ctx, m)
	if err != nil {
		return err
	}
	type state struct {
		cfg *config.Config
		s   *syncer.Syncer
	}
	var cur atomic.Pointer[state]
	cur.Store(&state{ld.cfg, s})

	cycle := func(ctx context.Context) error {
		st := cur.Load()
		unlock, err := syncer.Lock(ctx, st.cfg.StateDir, o.lockWait)
		if err != nil {
			return err
		}
		defer unlock()
		return st.s.Run(ctx).CycleErr() // the daemon logs it
	}
	d, err := daemon.New(ld.daemon, cycle, m, reg, log)
	if err != nil {
		return &exitError{exitUsage, err}
	}

	// A reload goes through the same load path as check-config and
	// start-up; it applies nothing unless every step succeeds.
	reload := func(ctx context.Context) error {
		ld, err := load(o.configFile)
		if err != nil {
			return err
		}
		old := cur.Load().cfg
		if ld.cfg.StateDir != old.StateDir {
			return fmt.Errorf("state_dir cannot change on reload (%s -> %s): restart instead", old.StateDir, ld.cfg.StateDir)
		}
		s, err := syncer.New(ctx, ld.cfg, log, m)
		if err != nil {
			return err
		}
		if err := d.Reconfigure(ld.daemon); err != nil {
			return err
		}
		cur.Store(&state{ld.cfg, s})
		m.ForgetRepositories(repositoryNames(old), repositoryNames(ld.cfg))
		return nil
	}
	stopReload := daemon.ReloadOnSignal(ctx, reload, m, log, syscall.SIGHUP)
	defer stopReload()

	cfg := ld.cfg
	removeTimerTextfile(cfg, log)
	log.Info("starting", "version", version, "schedule", cfg.Schedule, "listen", cfg.HTTP.Listen)
	if err := d.Run(ctx); err != nil {
		return &exitError{exitFailed, err}
	}
	log.Info("stopped")
	return nil
}

func repositoryNames(cfg *config.Config) []string {
	names := make([]string, len(cfg.Repositories))
	for i, r := range cfg.Repositories {
		names[i] = r.Name
	}
	return names
}

// removeTimerTextfile removes the metrics textfile that timer mode (`run
// --once`) wrote, named by [metrics] textfile or recorded in state_dir: a
// daemon exports its metrics over HTTP, and a file left behind would be
// served by node_exporter forever, raising stale-publisher alerts.
func removeTimerTextfile(cfg *config.Config, log *slog.Logger) {
	files := []string{cfg.Metrics.Textfile}
	if b, err := os.ReadFile(filepath.Join(cfg.StateDir, textfileRecord)); err == nil {
		files = append(files, strings.TrimSpace(string(b)))
	}
	for _, f := range files {
		if f == "" || !strings.HasSuffix(f, ".prom") {
			continue
		}
		switch err := os.Remove(f); {
		case err == nil:
			log.Info("removed the timer mode's metrics textfile: the daemon serves /metrics", "file", f)
		case !errors.Is(err, fs.ErrNotExist):
			log.Warn("remove the timer mode's metrics textfile", "file", f, "err", err)
		}
	}
	os.Remove(filepath.Join(cfg.StateDir, textfileRecord))
}
