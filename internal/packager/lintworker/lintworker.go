// Package lintworker is the child side of packager.Linter: it runs helm's
// linter on one package, under the bounds the parent set, and reports a
// packager.Verdict. It is the whole of the chartsync-lint program. It lives
// apart from package packager because helm's linter (pkg/lint, pkg/chartutil,
// pkg/engine) pulls in the Kubernetes client libraries: linked into the
// chartsync binary they cost every process tens of megabytes before it does
// anything.
//
// The worker does no network I/O.
package lintworker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"

	"github.com/chartsync/chartsync/internal/packager"
)

// asHeadroom is what the worker's address-space cap adds to its memory
// bound: the Go runtime reserves about a gigabyte of address space it never
// uses, and cannot start under a tighter cap.
const asHeadroom = 2 << 30

// Requested reports whether this process was started by a packager.Linter
// as its worker.
func Requested() bool { return os.Getenv(packager.LintWorkerChart) != "" }

// Main is the worker's side of the protocol packager.LintWorkerChart
// describes: it reads the package from standard input, lints it and
// writes the Verdict to standard output. It returns the exit status: 0
// with a verdict, 2 if the process was not started as a worker, 3 if it
// could not lint; it exits with status 4 itself if it outlives its time
// (the parent died without killing it).
func Main() int {
	name := os.Getenv(packager.LintWorkerChart)
	if name == "" {
		fmt.Fprintf(os.Stderr, "chartsync-lint: lints for chartsync, which starts it; %s is not set\n", packager.LintWorkerChart)
		return 2
	}
	// Should the parent die without killing it, the worker does not outlive
	// its time.
	if d, err := time.ParseDuration(os.Getenv(packager.LintWorkerTime)); err == nil && d > 0 {
		time.AfterFunc(d+5*time.Second, func() { os.Exit(4) })
	}
	return work(name, os.Getenv(packager.LintWorkerMemory), os.Stdin, os.Stdout, os.Stderr)
}

// ServeSelf makes a test binary its own lint worker; call it first in
// TestMain. Started as a worker (Requested), it lints and exits; otherwise
// it tells package packager to start this program as the worker
// (packager.LintWithSelf) and returns.
func ServeSelf() {
	if Requested() {
		os.Exit(Main())
	}
	packager.LintWithSelf()
}

// work caps the process's address space and tells the garbage collector
// its memory bound, reads the package from in, lints it, and writes the
// Verdict as JSON to out.
func work(name, memory string, in io.Reader, out, errOut io.Writer) int {
	if n, err := strconv.ParseInt(memory, 10, 64); err == nil && n > 0 {
		// The parent watches the resident size; the address-space cap stops
		// a spike between two of its checks; the soft limit makes the
		// garbage collector work harder as the bound nears.
		lim := &syscall.Rlimit{Cur: uint64(n + asHeadroom), Max: uint64(n + asHeadroom)}
		if err := syscall.Setrlimit(syscall.RLIMIT_AS, lim); err != nil {
			fmt.Fprintf(errOut, "set memory limit: %v\n", err)
			return 3
		}
		debug.SetMemoryLimit(n * 3 / 4)
	}
	data, err := io.ReadAll(in)
	if err != nil {
		fmt.Fprintf(errOut, "read package: %v\n", err)
		return 3
	}
	v, err := lintArchive(name, data)
	if err != nil {
		fmt.Fprintln(errOut, err)
		return 3
	}
	if err := json.NewEncoder(out).Encode(v); err != nil {
		fmt.Fprintln(errOut, err)
		return 3
	}
	return 0
}

// lintArchive unpacks the package data into a temporary directory and runs
// helm's linter on it, so what is linted is exactly what is published. Info
// findings are dropped.
func lintArchive(name string, data []byte) (packager.Verdict, error) {
	var v packager.Verdict
	tmp, err := os.MkdirTemp("", "chartsync-lint-")
	if err != nil {
		return v, fmt.Errorf("lint: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := chartutil.Expand(tmp, bytes.NewReader(data)); err != nil {
		return v, fmt.Errorf("lint: unpack package: %w", err)
	}
	chartDir := filepath.Join(tmp, name)
	linter := lint.AllWithKubeVersionAndSchemaValidation(chartDir, map[string]interface{}{}, "default", nil, false)
	for _, m := range linter.Messages {
		where := m.Path
		if rel, err := filepath.Rel(chartDir, where); err == nil && filepath.IsAbs(where) {
			where = filepath.ToSlash(rel)
		}
		text := strings.ReplaceAll(m.Err.Error(), chartDir+string(filepath.Separator), "")
		text = strings.ReplaceAll(text, chartDir, ".")
		text = strings.Join(strings.Fields(text), " ")
		switch m.Severity {
		case support.ErrorSev:
			v.Errors = append(v.Errors, fmt.Sprintf("[ERROR] %s: %s", where, text))
		case support.WarningSev:
			v.Warnings = append(v.Warnings, fmt.Sprintf("[WARNING] %s: %s", where, text))
		}
	}
	return v, nil
}
