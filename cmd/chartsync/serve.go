package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"
)

// serve serves the configured repositories read-only over HTTP, each under
// /<repository>/, until SIGTERM or SIGINT.
func (o *options) serve(ctx context.Context, listen string) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	_, log, s, err := o.open(ctx, nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return &exitError{exitFailed, err}
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving chart repositories", "listen", ln.Addr().String())
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
