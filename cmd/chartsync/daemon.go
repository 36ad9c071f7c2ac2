package main

import (
	"context"
	"fmt"
	"os/signal"
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
	cfg, log, s, err := o.open(ctx, m)
	if err != nil {
		return err
	}
	type state struct {
		cfg *config.Config
		s   *syncer.Syncer
	}
	var cur atomic.Pointer[state]
	cur.Store(&state{cfg, s})
	dcfg, err := daemonConfig(cfg)
	if err != nil {
		return &exitError{exitUsage, err}
	}

	cycle := func(ctx context.Context) error {
		st := cur.Load()
		unlock, err := syncer.Lock(ctx, st.cfg.StateDir, o.lockWait)
		if err != nil {
			return err
		}
		defer unlock()
		return st.s.Run(ctx).CycleErr() // the daemon logs it
	}
	d, err := daemon.New(dcfg, cycle, m, reg, log)
	if err != nil {
		return &exitError{exitUsage, err}
	}

	reload := func(ctx context.Context) error {
		cfg, err := config.Load(o.configFile)
		if err != nil {
			return err
		}
		if old := cur.Load().cfg; cfg.StateDir != old.StateDir {
			return fmt.Errorf("state_dir cannot change on reload (%s -> %s): restart instead", old.StateDir, cfg.StateDir)
		}
		dcfg, err := daemonConfig(cfg)
		if err != nil {
			return err
		}
		s, err := syncer.New(ctx, cfg, log, m)
		if err != nil {
			return err
		}
		if err := d.Reconfigure(dcfg); err != nil {
			return err
		}
		cur.Store(&state{cfg, s})
		return nil
	}
	stopReload := daemon.ReloadOnSignal(ctx, reload, m, log, syscall.SIGHUP)
	defer stopReload()

	log.Info("starting", "version", version, "schedule", cfg.Schedule, "listen", cfg.HTTP.Listen)
	if err := d.Run(ctx); err != nil {
		return &exitError{exitFailed, err}
	}
	log.Info("stopped")
	return nil
}

// daemonConfig takes the daemon's part of the configuration, reading the
// sync token file.
func daemonConfig(cfg *config.Config) (daemon.Config, error) {
	token, err := config.ReadSecret(cfg.HTTP.SyncTokenFile)
	if err != nil {
		return daemon.Config{}, fmt.Errorf("http.sync_token_file: %w", err)
	}
	return daemon.Config{
		Schedule:      cfg.Schedule,
		Splay:         cfg.Splay.Duration,
		Listen:        cfg.HTTP.Listen,
		SyncToken:     token,
		ReadyMaxAge:   cfg.HTTP.ReadyMaxAge.Duration,
		ShutdownGrace: cfg.ShutdownGrace.Duration,
	}, nil
}
