package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/chartsync/chartsync/internal/config"
	"github.com/chartsync/chartsync/internal/httpserver"
	"github.com/chartsync/chartsync/internal/publisher"
	"github.com/chartsync/chartsync/internal/publisher/store"
	"github.com/chartsync/chartsync/internal/stores"
)

// serve serves the configured repositories read-only over HTTP, each under
// /<repository>/, until SIGTERM or SIGINT. It needs only the credentials of
// the stores the repositories use: not the git token, not the signing
// keys, not the sync token, so it can run as a less privileged user.
func (o *options) serve(ctx context.Context, listen string) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Load(o.configFile)
	if err != nil {
		return &exitError{exitUsage, err}
	}
	used := map[string]config.Store{}
	for _, r := range cfg.Repositories {
		used[r.Store] = cfg.Stores[r.Store]
	}
	for name, sc := range used {
		if err := stores.Check(sc, os.Getenv); err != nil {
			return &exitError{exitUsage, fmt.Errorf("%s: store %s: %w", o.configFile, name, err)}
		}
	}
	log, err := o.logger()
	if err != nil {
		return err
	}
	opened := map[string]store.Store{}
	for name, sc := range used {
		if opened[name], err = stores.Open(ctx, sc, os.Getenv); err != nil {
			return &exitError{exitFailed, fmt.Errorf("store %s: %w", name, err)}
		}
	}
	mux := http.NewServeMux()
	var names []string
	for _, r := range cfg.Repositories {
		pub := publisher.New(opened[r.Store], publisher.Config{Prefix: r.Prefix}, log)
		mux.Handle("/"+r.Name+"/", http.StripPrefix("/"+r.Name, pub.Handler()))
		names = append(names, r.Name)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		for _, n := range names {
			fmt.Fprintf(w, "%s/\n", n)
		}
	})

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return &exitError{exitFailed, err}
	}
	srv := httpserver.New(mux, httpserver.ServeLimits, log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving chart repositories", "listen", ln.Addr().String(), "max_connections", srv.MaxConns())
	select {
	case err := <-errc:
		return &exitError{exitFailed, err}
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return &exitError{exitFailed, err}
	}
	return nil
}
