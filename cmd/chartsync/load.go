package main

import (
	"fmt"

	"github.com/chartsync/chartsync/internal/config"
	"github.com/chartsync/chartsync/internal/daemon"
	"github.com/chartsync/chartsync/internal/syncer"
)

// loaded is a configuration that passed every check the daemon makes.
type loaded struct {
	cfg    *config.Config
	daemon daemon.Config
}

// load is the one load-and-validate path of check-config, run (daemon and
// --once), plan, and a SIGHUP reload: what it accepts, the daemon starts
// with, and what it refuses, check-config refuses too (exit 2). It parses
// and validates the file, reads every secret file it names (an empty one
// is refused), checks the schedule, the signing keys and the stores'
// settings, and creates nothing: no state directory, no store directory.
func load(path string) (*loaded, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	dcfg, err := daemonConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := syncer.Check(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &loaded{cfg: cfg, daemon: dcfg}, nil
}

// daemonConfig takes the daemon's part of the configuration, reading the
// sync token file, and validates it. An empty or white-space-only token
// file is refused: it would leave POST /sync open to anyone.
func daemonConfig(cfg *config.Config) (daemon.Config, error) {
	token, err := config.ReadSecret(cfg.HTTP.SyncTokenFile)
	if err != nil {
		return daemon.Config{}, fmt.Errorf("http.sync_token_file: %w", err)
	}
	if cfg.HTTP.SyncTokenFile != "" && token == "" {
		return daemon.Config{}, fmt.Errorf("http.sync_token_file %s is empty: POST /sync would be open to anyone; put a token in it, or remove the key", cfg.HTTP.SyncTokenFile)
	}
	dcfg := daemon.Config{
		Schedule:      cfg.Schedule,
		Splay:         cfg.Splay.Duration,
		Listen:        cfg.HTTP.Listen,
		SyncToken:     token,
		ReadyMaxAge:   cfg.HTTP.ReadyMaxAge.Duration,
		ShutdownGrace: cfg.ShutdownGrace.Duration,
		CycleTimeout:  cfg.CycleTimeout.Duration,
	}
	if err := dcfg.Validate(); err != nil {
		return daemon.Config{}, err
	}
	return dcfg, nil
}
