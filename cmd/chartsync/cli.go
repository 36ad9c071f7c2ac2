package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/chartsync/chartsync/internal/config"
	"github.com/chartsync/chartsync/internal/daemon"
	"github.com/chartsync/chartsync/internal/metrics"
	"github.com/chartsync/chartsync/internal/syncer"
)

// version is set at build time (-ldflags -X main.version=...).
var version = "dev"

// textfileRecord is the file in state_dir naming the metrics textfile the
// last `run --once` wrote. debian/chartsync.postrm reads it on purge.
const textfileRecord = "metrics-textfile"

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // a chart failed, or the cycle could not run
	exitUsage  = 2 // bad flags or an invalid configuration
)

// exitError carries an exit status through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

type options struct {
	configFile string
	logFormat  string
	logLevel   string
	once       bool
	lockWait   time.Duration
	stdout     io.Writer
	stderr     io.Writer
}

func run(args []string) int {
	o := &options{stdout: os.Stdout, stderr: os.Stderr}
	cmd := newRootCmd(o)
	cmd.SetArgs(args)
	cmd.SetOut(o.stdout)
	cmd.SetErr(o.stderr)
	err := cmd.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(o.stderr, "Error:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(o.stderr, "Error:", err)
	return exitUsage
}

func newRootCmd(o *options) *cobra.Command {
	root := &cobra.Command{
		Use:           "chartsync",
		Short:         "Publish the Helm charts of a git repository to a chart repository",
		Long:          "chartsync publishes each chart version found in a git repository exactly once\nto a Helm chart repository on a local directory, S3 or OpenStack Swift.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&o.configFile, "config", config.Default, "configuration file")
	pf.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	pf.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.DurationVar(&o.lockWait, "lock-wait", 30*time.Second, "how long to wait for another chartsync using the same state_dir")

	runCmd := &cobra.Command{
		Use:   "run",
		Short: "Publish new chart versions: once, or as a daemon on the configured schedule",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context()) },
	}
	runCmd.Flags().BoolVar(&o.once, "once", false, "run one cycle and exit (for a systemd timer)")
	withHistory(runCmd, o)
	var listen string
	serveCmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the configured repositories read-only over HTTP, each under /<repository>/",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return o.serve(cmd.Context(), listen) },
	}
	serveCmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8879", "address to listen on")
	root.AddCommand(verifyCmd(o))
	var output string
	planCmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what would be published and what would fail, publishing nothing",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return o.plan(cmd.Context(), output) },
	}
	planCmd.Flags().StringVar(&output, "output", "text", "output format: text (a summary) or json (the whole result, every list in full)")
	root.AddCommand(runCmd, serveCmd, planCmd,
		&cobra.Command{
			Use:   "check-config",
			Short: "Validate the configuration file and exit",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if _, err := o.load(); err != nil {
					return err
				}
				fmt.Fprintf(o.stdout, "%s: ok\n", o.configFile)
				return nil
			},
		},
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run: func(*cobra.Command, []string) {
				fmt.Fprintf(o.stdout, "chartsync %s (revision %s, %s)\n", version, revision(), runtime.Version())
			},
		},
	)
	root.AddCommand(newCheckCmd(o))
	return root
}

// load runs the one load-and-validate path (see load); a refusal is a
// usage error (exit 2).
func (o *options) load() (*loaded, error) {
	ld, err := load(o.configFile)
	if err != nil {
		return nil, &exitError{exitUsage, err}
	}
	return ld, nil
}

func (o *options) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, &exitError{exitUsage, fmt.Errorf("--log-level %q: %w", o.logLevel, err)}
	}
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch o.logFormat {
	case "text":
		h = slog.NewTextHandler(o.stderr, hopts)
	case "json":
		h = slog.NewJSONHandler(o.stderr, hopts)
	default:
		return nil, &exitError{exitUsage, fmt.Errorf("--log-format %q: must be text or json", o.logFormat)}
	}
	h = redactHandler{h}
	// The Helm SDK logs through the standard logger (for example each
	// symlink it follows): keep those lines, as debug records.
	stdlog.SetFlags(0)
	stdlog.SetOutput(slogWriter{slog.New(h)})
	return slog.New(h), nil
}

// open loads the config through load and builds the logger and the
// Syncer (m may be nil). Nothing is created unless load accepted the
// configuration.
func (o *options) open(ctx context.Context, m *metrics.Metrics) (*loaded, *slog.Logger, *syncer.Syncer, error) {
	ld, err := o.load()
	if err != nil {
		return nil, nil, nil, err
	}
	log, err := o.logger()
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := syncer.New(ctx, ld.cfg, log, m)
	if err != nil {
		return nil, nil, nil, &exitError{exitFailed, err}
	}
	return ld, log, s, nil
}

// lock takes the state directory's lock, so that runs never overlap.
func (o *options) lock(ctx context.Context, cfg *config.Config) (unlock func(), err error) {
	unlock, err = syncer.Lock(ctx, cfg.StateDir, o.lockWait)
	if err != nil {
		return nil, &exitError{exitFailed, err}
	}
	return unlock, nil
}

func (o *options) run(ctx context.Context) error {
	if !o.once {
		return o.daemon(ctx)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, version, revision())
	ld, log, s, err := o.open(ctx, m)
	if err != nil {
		return err
	}
	cfg := ld.cfg
	unlock, err := o.lock(ctx, cfg)
	if err != nil {
		return err
	}
	defer unlock()
	if cfg.Metrics.Textfile != "" {
		// Counters go on from the previous run's file, so that rate()
		// works across the runs of a timer.
		if err := m.RestoreTextfile(cfg.Metrics.Textfile); err != nil {
			log.Warn("restore counters from the metrics textfile", "err", err)
		}
	}
	cctx, cancel := context.WithTimeoutCause(ctx, cfg.CycleTimeout.Duration,
		fmt.Errorf("%w after %s (cycle_timeout): %w", daemon.ErrCycleTimeout, cfg.CycleTimeout, context.DeadlineExceeded))
	res := s.Run(cctx)
	cancel()
	if err := res.CycleErr(); err != nil {
		log.Error("cycle failed", "err", err)
	}
	if cfg.Metrics.Textfile != "" {
		if err := metrics.WriteTextfile(cfg.Metrics.Textfile, reg); err != nil {
			log.Error("write metrics textfile", "err", err)
		}
		// Where the file is, for the package's purge and for the daemon,
		// which removes it when a node switches to daemon mode.
		if err := os.WriteFile(filepath.Join(cfg.StateDir, textfileRecord), []byte(cfg.Metrics.Textfile+"\n"), 0o640); err != nil {
			log.Warn("record the metrics textfile's path", "err", err)
		}
	}
	o.summary(res, false)
	if !res.OK() {
		return &exitError{exitFailed, errors.New("")}
	}
	return nil
}

func (o *options) plan(ctx context.Context, output string) error {
	if output != "text" && output != "json" {
		return &exitError{exitUsage, fmt.Errorf("--output %q: must be text or json", output)}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ld, _, s, err := o.open(ctx, nil)
	if err != nil {
		return err
	}
	unlock, err := o.lock(ctx, ld.cfg)
	if err != nil {
		return err
	}
	defer unlock()
	res := s.Plan(ctx)
	if output == "json" {
		if err := writeJSON(redactWriter{o.stdout}, res); err != nil {
			return &exitError{exitFailed, err}
		}
	} else {
		o.summary(res, true)
	}
	if !res.OK() {
		return &exitError{exitFailed, errors.New("")}
	}
	return nil
}

// maxSummaryLines bounds the per-chart lines of a summary; the rest are
// counted (plan --output json lists them all).
const maxSummaryLines = 50

// summary prints what a cycle did (or, for a plan, would do): one line per
// chart that is not merely already published, then the failures with why.
// Its size is bounded whatever the repository's: at most maxSummaryLines
// chart lines and failures each, and lists of index entries as counts
// with a handful of names (see syncer.Brief).
func (o *options) summary(res *syncer.Result, plan bool) {
	out := redactWriter{o.stdout}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if res.Commit != "" {
		fmt.Fprintf(w, "commit %s (%s)\n", res.Commit, res.CommitTime.UTC().Format(time.RFC3339))
	}
	count := map[syncer.Outcome]int{}
	lines := 0
	for _, c := range res.Charts {
		count[c.Outcome]++
		if c.Outcome == syncer.Skipped {
			continue
		}
		if lines++; lines > maxSummaryLines {
			continue
		}
		action := string(c.Outcome)
		if plan && c.Outcome == syncer.Pending {
			action = "publish"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.Repository, action, c.Name, c.Version, c.Dir)
	}
	w.Flush()
	if lines > maxSummaryLines {
		fmt.Fprintf(out, "… and %s more charts (plan --output json lists them all)\n", syncer.Count(lines-maxSummaryLines))
	}
	for _, r := range res.Repos {
		if r.Err != nil {
			fmt.Fprintf(out, "FAILED repository %s: %v\n", r.Name, r.Err)
			continue
		}
		fmt.Fprintf(out, "repository %s: %s index entries\n", r.Name, syncer.Count(r.Entries))
		for _, l := range []struct {
			what  string
			files []string
		}{
			{"lost entries restored from the store", r.Repaired},
			{"stored packages indexed for the first time", r.Adopted},
			{"packages put back to their indexed bytes", r.Restored},
			{"index entries without a stored package", r.Missing},
			{"packages MODIFIED in the store", r.Modified},
			{"index entries EDITED: digest changed, package unchanged", r.Edited},
		} {
			if len(l.files) > 0 {
				fmt.Fprintf(out, "  %s %s: %s\n", syncer.Count(len(l.files)), l.what, syncer.Brief(l.files))
			}
		}
	}
	if plan {
		fmt.Fprintf(out, "plan: %d to publish, %d already published, %d failing\n", count[syncer.Pending], count[syncer.Skipped], count[syncer.Failed])
	} else {
		fmt.Fprintf(out, "published %d, already published %d, failed %d\n", count[syncer.Published], count[syncer.Skipped], count[syncer.Failed])
	}
	printDrift(out, res)
	failures := res.Failures()
	for i, c := range failures {
		if i == maxSummaryLines {
			fmt.Fprintf(out, "… and %s more failures (see the log, or plan --output json)\n", syncer.Count(len(failures)-i))
			break
		}
		fmt.Fprintf(out, "FAILED %s: %v\n", c.Repository, c.Err)
	}
	if res.Err != nil {
		fmt.Fprintf(out, "FAILED cycle: %v\n", res.Err)
	}
}

// jsonResult is a Result as plan --output json writes it: every list in
// full, errors as their messages.
type jsonResult struct {
	Commit     string      `json:"commit,omitempty"`
	CommitTime *time.Time  `json:"commitTime,omitempty"`
	Charts     []jsonChart `json:"charts"`
	Repos      []jsonRepo  `json:"repositories"`
	Err        string      `json:"error,omitempty"`
	OK         bool        `json:"ok"`
}

type jsonChart struct {
	Repository string   `json:"repository"`
	Dir        string   `json:"dir,omitempty"`
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Outcome    string   `json:"outcome"`
	Reason     string   `json:"reason,omitempty"`
	Err        string   `json:"error,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
}

type jsonRepo struct {
	Name        string   `json:"name"`
	Entries     int      `json:"entries"`
	GitCharts   int      `json:"gitCharts"`
	GitVersions int      `json:"gitVersions"`
	Conflicts   int      `json:"conflicts"`
	Repaired    []string `json:"repaired,omitempty"`
	Adopted     []string `json:"adopted,omitempty"`
	Restored    []string `json:"restored,omitempty"`
	Missing     []string `json:"missing,omitempty"`
	Modified    []string `json:"modified,omitempty"`
	Edited      []string `json:"edited,omitempty"`
	Err         string   `json:"error,omitempty"`
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// writeJSON writes res as one indented JSON document.
func writeJSON(w io.Writer, res *syncer.Result) error {
	jr := jsonResult{Commit: res.Commit, Err: errString(res.Err), OK: res.OK(), Charts: []jsonChart{}, Repos: []jsonRepo{}}
	if !res.CommitTime.IsZero() {
		t := res.CommitTime.UTC()
		jr.CommitTime = &t
	}
	for _, c := range res.Charts {
		jr.Charts = append(jr.Charts, jsonChart{Repository: c.Repository, Dir: c.Dir, Name: c.Name, Version: c.Version,
			Outcome: string(c.Outcome), Reason: c.Reason, Err: errString(c.Err), Warnings: c.Warnings})
	}
	for _, r := range res.Repos {
		jr.Repos = append(jr.Repos, jsonRepo{Name: r.Name, Entries: r.Entries, GitCharts: r.GitCharts, GitVersions: r.GitVersions,
			Conflicts: r.Conflicts, Repaired: r.Repaired, Adopted: r.Adopted, Restored: r.Restored, Missing: r.Missing,
			Modified: r.Modified, Edited: r.Edited, Err: errString(r.Err)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(jr); err != nil {
		return fmt.Errorf("write plan as json: %w", err)
	}
	return nil
}

// slogWriter turns standard-logger lines into debug records.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug(strings.TrimSpace(string(p)), "source", "helm")
	return len(p), nil
}

// revision is the VCS revision the binary was built from, if known.
func revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
