package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/chartsync/chartsync/internal/syncer"
)

// withHistory adds --history REV to the run command: with it, run
// publishes every chart version that existed in git since REV instead of
// running a cycle.
func withHistory(run *cobra.Command, o *options) {
	var rev string
	run.Flags().StringVar(&rev, "history", "", "publish every chart version that existed on the branch since commit `REV` (a commit id or branch), each built from the first commit where it appeared, then exit")
	cycle := run.RunE
	run.RunE = func(cmd *cobra.Command, args []string) error {
		if rev == "" {
			return cycle(cmd, args)
		}
		return o.history(cmd.Context(), rev)
	}
}

func (o *options) history(ctx context.Context, rev string) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ld, log, s, err := o.open(ctx, nil)
	if err != nil {
		return err
	}
	unlock, err := o.lock(ctx, ld.cfg)
	if err != nil {
		return err
	}
	defer unlock()
	progress := func(repository string, done, total int) {
		log.Info("history", "repository", repository, "done", done, "total", total)
	}
	tty := isTerminal(o.stderr)
	if tty {
		progress = func(repository string, done, total int) {
			fmt.Fprintf(o.stderr, "\r%s: %d/%d chart versions", repository, done, total)
			if done == total {
				fmt.Fprintln(o.stderr)
			}
		}
	}
	res := s.History(ctx, rev, progress)
	if err := res.CycleErr(); err != nil {
		if tty {
			fmt.Fprintln(o.stderr)
		}
		log.Error("history failed", "err", err)
	}
	logOutcomes(log, res.Charts)
	o.summary(res, false)
	if !res.OK() {
		return &exitError{exitFailed, errors.New("")}
	}
	return nil
}

// logOutcomes logs each failed chart, as a cycle does.
func logOutcomes(log *slog.Logger, charts []syncer.ChartResult) {
	for _, c := range charts {
		if c.Err != nil {
			log.Error("chart failed", "repository", c.Repository, "chart", c.Name, "version", c.Version, "dir", c.Dir, "reason", c.Reason, "err", c.Err)
		}
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
