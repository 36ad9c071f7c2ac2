package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/signal"
	"slices"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/chartsync/chartsync/internal/verify"
)

// verifyCmd is `chartsync verify`: every index entry checked against the
// git history.
func verifyCmd(o *options) *cobra.Command {
	var repository, output string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check that every package in the repositories is built from a commit in git",
		Long: `verify searches the git history (first parent, newest first) for each entry of
a repository's index: a commit whose build of that chart version gives exactly
the indexed sha256. It prints one line per entry: verified (with the commit),
differs (git has this version, but no commit builds these bytes: the package was
replaced, or not built by chartsync), or not in git. Exit 1 when any entry differs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.verify(cmd.Context(), repository, output)
		},
	}
	cmd.Flags().StringVar(&repository, "repository", "", "verify only this repository (default: all)")
	cmd.Flags().StringVar(&output, "output", "text", "output format: text or json")
	return cmd
}

// verifiedEntry is one line of `verify --output json`.
type verifiedEntry struct {
	Repository string `json:"repository"`
	verify.Entry
}

func (o *options) verify(ctx context.Context, repository, output string) error {
	if output != "text" && output != "json" {
		return &exitError{exitUsage, fmt.Errorf("--output %q: must be text or json", output)}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ld, _, s, err := o.open(ctx, nil)
	if err != nil {
		return err
	}
	repos := s.Repositories()
	if repository != "" {
		if !slices.Contains(repos, repository) {
			return &exitError{exitUsage, fmt.Errorf("--repository %q: not in %s", repository, o.configFile)}
		}
		repos = []string{repository}
	}
	unlock, err := o.lock(ctx, ld.cfg)
	if err != nil {
		return err
	}
	defer unlock()
	out := redactWriter{o.stdout}
	var all []verifiedEntry
	var failed error
	differs := 0
	for _, name := range repos {
		commit, entries, st, err := s.Verify(ctx, name)
		if err != nil {
			failed = errors.Join(failed, err)
			continue
		}
		count := map[verify.Status]int{}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, e := range entries {
			count[e.Status]++
			all = append(all, verifiedEntry{name, e})
			if output == "json" {
				continue
			}
			switch e.Status {
			case verify.Verified:
				fmt.Fprintf(w, "%s\tverified\t%s\t%s\t%s\t%s\n", name, e.Name, e.Version, e.Commit, e.Dir)
			case verify.Differs:
				where := "not in git"
				if e.Commit != "" {
					where = fmt.Sprintf("in git at %.12s %s", e.Commit, e.Dir)
				}
				fmt.Fprintf(w, "%s\tDIFFERS\t%s\t%s\t%s (index sha256 %s; %s)\n", name, e.Name, e.Version, e.Reason, e.Digest, where)
			default:
				fmt.Fprintf(w, "%s\tnot in git\t%s\t%s\n", name, e.Name, e.Version)
			}
		}
		w.Flush()
		differs += count[verify.Differs]
		if output == "text" {
			fmt.Fprintf(out, "repository %s at %s: %d verified, %d differ, %d not in git (%d commits read, %d builds)\n",
				name, commit, count[verify.Verified], count[verify.Differs], count[verify.NotInGit], st.Commits, st.Builds)
		}
	}
	if output == "json" {
		if all == nil {
			all = []verifiedEntry{}
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(all); err != nil {
			return &exitError{exitFailed, fmt.Errorf("write json: %w", err)}
		}
	}
	if failed != nil {
		return &exitError{exitFailed, failed}
	}
	if differs > 0 {
		return &exitError{exitFailed, fmt.Errorf("%d index entries differ from every build in git", differs)}
	}
	return nil
}
