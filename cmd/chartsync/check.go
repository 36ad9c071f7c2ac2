package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/chartsync/chartsync/internal/check"
	"github.com/chartsync/chartsync/internal/config"
	"github.com/chartsync/chartsync/internal/packager"
)

// checkFlags are the flags of `chartsync check`.
type checkFlags struct {
	base, head, output string
	charts             []string
}

// newCheckCmd is `chartsync check`: compare the charts of two commits of
// the checkout in the working directory, for pre-merge CI.
func newCheckCmd(o *options) *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check --base REV [--head REV] [--config FILE | --charts GLOB...]",
		Short: "Check the charts changed between two commits: unbumped, collision, downgrade, broken",
		Long: "check compares the charts of two commits of the git checkout in the working directory,\n" +
			"reading git objects only (no store, no network). For each top-level chart that differs\n" +
			"it reports unbumped (package changed, same version), collision (another directory has\n" +
			"the same name and version), downgrade (lower version than at base, a warning) and broken\n" +
			"(fails to package or lint, as run would). Exit 1 when any finding is an error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.check(cmd.Context(), f, cmd.Flags().Changed("config"))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.base, "base", "", "the revision the change is compared with, e.g. origin/main (required)")
	fl.StringVar(&f.head, "head", "HEAD", "the revision of the change")
	fl.StringSliceVar(&f.charts, "charts", nil, "globs of chart directories, instead of the configured repositories'")
	fl.StringVar(&f.output, "output", "text", "output: text (one line per finding) or json")
	_ = cmd.MarkFlagRequired("base")
	return cmd
}

func (o *options) check(ctx context.Context, f checkFlags, configSet bool) error {
	if f.output != "text" && f.output != "json" {
		return &exitError{exitUsage, fmt.Errorf("--output %q: must be text or json", f.output)}
	}
	if configSet && len(f.charts) > 0 {
		return &exitError{exitUsage, fmt.Errorf("--config and --charts exclude each other")}
	}
	log, err := o.logger()
	if err != nil {
		return err
	}
	// Lint as run does, in a bounded child process; verdicts are kept in
	// memory only (check writes nothing).
	linter, err := packager.NewLinter("")
	if err != nil {
		return &exitError{exitFailed, err}
	}
	sets := []check.Options{{Globs: f.charts, Linter: linter}}
	if len(f.charts) == 0 {
		// Only the charts, lint and repository names are used: secrets
		// and stores need not exist where CI runs.
		cfg, err := config.Load(o.configFile)
		if err != nil {
			return &exitError{exitUsage, err}
		}
		sets = sets[:0]
		for _, r := range cfg.Repositories {
			opts := check.Options{Repository: r.Name, Globs: r.Charts, Linter: linter}
			if r.Lint == "warn" {
				opts.Lint = packager.LintWarn
			}
			sets = append(sets, opts)
		}
	}
	co, err := check.OpenCheckout(".")
	if err != nil {
		return &exitError{exitUsage, err}
	}
	defer co.Close()
	base, err := co.Tree(f.base)
	if err != nil {
		return &exitError{exitUsage, fmt.Errorf("--base: %w", err)}
	}
	head, err := co.Tree(f.head)
	if err != nil {
		return &exitError{exitUsage, fmt.Errorf("--head: %w", err)}
	}
	for _, p := range head.Problems() {
		log.Warn("git tree entry left out", "commit", head.Commit, "err", p)
	}
	unchanged, err := co.Unchanged(base.Commit, head.Commit)
	if err != nil {
		return &exitError{exitFailed, err}
	}
	findings := []check.Finding{}
	for _, opts := range sets {
		opts.Unchanged = unchanged
		fs, err := check.Compare(ctx, log, base.FS, head.FS, opts)
		if err != nil {
			return &exitError{exitFailed, err}
		}
		findings = append(findings, fs...)
	}
	failed := false
	for _, fd := range findings {
		failed = failed || fd.Kind.Error()
	}
	if f.output == "json" {
		out := struct {
			Base     string          `json:"base"`
			Head     string          `json:"head"`
			Findings []check.Finding `json:"findings"`
			Failed   bool            `json:"failed"`
		}{base.Commit, head.Commit, findings, failed}
		enc := json.NewEncoder(o.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return &exitError{exitFailed, fmt.Errorf("write output: %w", err)}
		}
	} else {
		for _, fd := range findings {
			fmt.Fprintln(o.stdout, fd)
		}
	}
	if failed {
		return &exitError{exitFailed, errors.New("")} // the findings said why
	}
	return nil
}
