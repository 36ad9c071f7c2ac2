package packager

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/chartsync/chartsync/internal/statefile"
)

// Verdict is what helm's linter said of one package: its error-severity and
// warning-severity findings, and, if linting ran out of time or memory,
// Exceeded says which (the chart then fails whatever the LintMode).
type Verdict struct {
	Errors   []string `json:"errors,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	Exceeded string   `json:"exceeded,omitempty"`
}

// Linter runs helm's linter on packages in a child process, bounded in time
// and memory and killed when the build's context is done, and caches each
// verdict by the package's digest, so that content already linted (and, in
// particular, content that already failed) is never rendered again.
//
// Helm's template engine cannot be interrupted in-process: a template that
// loops for minutes or allocates gigabytes would hold a worker goroutine
// and the daemon's memory. A child process can be killed: the parent kills
// it when Timeout is up or its resident memory passes Memory (the worker
// caps its address space too), so a runaway template costs about Timeout
// and Memory, and never the daemon's own memory. The child is the lint
// helper, the chartsync-lint program (package lintworker): helm's linter
// is linked there and not into chartsync, where it would bring the
// Kubernetes client libraries, tens of megabytes of file and of resident
// memory in every process. The worker does no network I/O.
//
// A Linter is safe for concurrent use. The zero value is not usable; use
// NewLinter.
type Linter struct {
	// Timeout bounds one lint; default 2 minutes.
	Timeout time.Duration
	// Memory bounds the child's resident memory, in bytes; default 1 GiB.
	Memory int64
	// Dir keeps verdicts across processes, one small file per package
	// digest; "" keeps them in memory only. Files that cannot be written
	// are skipped: the cache is an optimisation.
	Dir string

	exe   string
	runs  atomic.Int64 // workers started, for tests
	mu    sync.Mutex
	cache map[string]Verdict
}

// Linter defaults.
const (
	DefaultLintTimeout = 2 * time.Minute
	DefaultLintMemory  = 1 << 30
)

// LintHelper is the lint helper's file name. FindLintHelper looks for it next
// to the running executable (its symlinks resolved), where `go build -o
// dir/` and the tests put it, then in ../libexec/chartsync/ from there,
// where `make install` and the Debian package put it
// (/usr/libexec/chartsync/chartsync-lint for /usr/bin/chartsync).
const LintHelper = "chartsync-lint"

// lintWithSelf is set by LintWithSelf.
var lintWithSelf atomic.Bool

// LintWithSelf makes Linters start the running program itself
// (/proc/self/exe) as the worker instead of the lint helper. It is for
// test binaries: one that links package lintworker can be the worker, as
// the chartsync binary was before the helper, where building the helper
// would cost every test package a go build. lintworker.ServeSelf, first
// thing in TestMain, calls it, and makes the test binary the worker when
// a Linter starts it.
func LintWithSelf() { lintWithSelf.Store(true) }

// NewLinter returns a Linter with the default bounds that keeps its verdicts
// in dir (if not "") and starts the program FindLintHelper finds, or
// FindLintHelper's error.
func NewLinter(dir string) (*Linter, error) {
	exe, err := FindLintHelper()
	if err != nil {
		return nil, err
	}
	return &Linter{Timeout: DefaultLintTimeout, Memory: DefaultLintMemory, Dir: dir, exe: exe, cache: map[string]Verdict{}}, nil
}

// FindLintHelper returns the path of the program a Linter starts: the
// lint helper, where LintHelper says (or /proc/self/exe after
// LintWithSelf). It fails, naming the places it looked, if there is none.
func FindLintHelper() (string, error) {
	if lintWithSelf.Load() {
		return "/proc/self/exe", nil
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return "", fmt.Errorf("find the lint helper %s: %w", LintHelper, err)
	}
	return lintHelperOf(exe)
}

// lintHelperOf returns the path of the lint helper of executable exe.
func lintHelperOf(exe string) (string, error) {
	dir := filepath.Dir(exe)
	tried := []string{filepath.Join(dir, LintHelper), filepath.Join(filepath.Dir(dir), "libexec", "chartsync", LintHelper)}
	for _, p := range tried {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("lint helper %s not found: neither %s nor %s is an executable file", LintHelper, tried[0], tried[1])
}

// The lint worker's protocol. A Linter starts the worker with these
// variables in an otherwise bare environment, writes the package to
// its standard input, and reads the Verdict as JSON from its standard
// output if it exits with status 0, else a message from its standard
// error. Package lintworker is the worker's side.
const (
	LintWorkerChart  = "CHARTSYNC_INTERNAL_LINT_WORKER" // the chart's name
	LintWorkerMemory = "CHARTSYNC_INTERNAL_LINT_MEMORY" // Linter.Memory, in bytes
	LintWorkerTime   = "CHARTSYNC_INTERNAL_LINT_TIME"   // Linter.Timeout; the worker exits when it is long past
)

// defaultLinter is the Linter of a Build whose Options.Linter is nil.
var defaultLinter = sync.OnceValues(func() (*Linter, error) { return NewLinter("") })

// lint returns the verdict on the package data of chart name, from the cache
// or by linting it (with defaultLinter if l is nil). Errors are failures to
// lint at all; a done ctx returns ctx.Err().
func (l *Linter) lint(ctx context.Context, name string, data []byte, digest string) (Verdict, error) {
	if l == nil {
		var err error
		if l, err = defaultLinter(); err != nil {
			return Verdict{}, err
		}
	}
	key := l.key(digest)
	if v, ok := l.lookup(key); ok {
		return v, nil
	}
	v, err := l.run(ctx, name, data)
	if err != nil {
		return Verdict{}, err
	}
	l.store(key, v)
	return v, nil
}

// run lints in a child process: killed when ctx is done, when Timeout is
// up, or when its resident memory exceeds Memory (checked every 20 ms; the
// worker caps its own address space too, for a spike between two checks).
func (l *Linter) run(ctx context.Context, name string, data []byte) (Verdict, error) {
	return l.runArgs(ctx, name, data)
}

// runArgs is run with arguments for the worker (tests run other programs).
func (l *Linter) runArgs(ctx context.Context, name string, data []byte, args ...string) (Verdict, error) {
	timeout, memory := l.Timeout, l.Memory
	if timeout <= 0 {
		timeout = DefaultLintTimeout
	}
	if memory <= 0 {
		memory = DefaultLintMemory
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, l.exe, args...)
	// A bare environment: the worker renders untrusted templates and needs
	// none of the daemon's (credentials may be there). The proxy is belt
	// and braces: the schema check already refuses remote references, and
	// the worker has no business on the network.
	cmd.Env = []string{
		LintWorkerChart + "=" + name, LintWorkerMemory + "=" + strconv.FormatInt(memory, 10), LintWorkerTime + "=" + timeout.String(),
		"TMPDIR=" + os.TempDir(), "PATH=/usr/bin:/bin",
		"HTTP_PROXY=http://127.0.0.1:1", "HTTPS_PROXY=http://127.0.0.1:1",
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the daemon
	cmd.Stdin = bytes.NewReader(data)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &limitedBuffer{buf: &stderr, max: 64 << 10}
	l.runs.Add(1)
	if err := cmd.Start(); err != nil {
		return Verdict{}, fmt.Errorf("start lint worker: %w", err)
	}
	var overMemory atomic.Bool
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if rss(cmd.Process.Pid) > memory {
					overMemory.Store(true)
					cmd.Process.Kill()
					return
				}
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	switch {
	case ctx.Err() != nil:
		return Verdict{}, ctx.Err()
	case cctx.Err() != nil:
		return Verdict{Exceeded: fmt.Sprintf("lint took longer than %v: rendering stopped", timeout)}, nil
	case overMemory.Load():
		return Verdict{Exceeded: fmt.Sprintf("lint used more than %d MiB of memory: rendering stopped", memory>>20)}, nil
	case err != nil:
		msg := stderr.String()
		if strings.Contains(msg, "out of memory") || strings.Contains(msg, "cannot allocate memory") {
			return Verdict{Exceeded: fmt.Sprintf("lint used more than %d MiB of memory: rendering stopped", memory>>20)}, nil
		}
		first, _, _ := strings.Cut(strings.TrimSpace(msg), "\n")
		return Verdict{}, fmt.Errorf("lint worker: %v: %s", err, first)
	}
	var v Verdict
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
		return Verdict{}, fmt.Errorf("lint worker: read verdict: %w", err)
	}
	return v, nil
}

// rss returns the resident memory of process pid in bytes, or 0 if it
// cannot be read.
func rss(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// key names a verdict: the package digest, the helm that lints and the
// bounds it lints under.
func (l *Linter) key(digest string) string {
	h := sha256.New()
	fmt.Fprintf(h, "chartsync-lint/1 %s %s %d %d", helmVersion(), digest, l.Timeout, l.Memory)
	return hex.EncodeToString(h.Sum(nil))
}

var helmVersion = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "helm.sh/helm/v3" {
				return m.Version
			}
		}
	}
	return "unknown"
})

func (l *Linter) lookup(key string) (Verdict, bool) {
	l.mu.Lock()
	v, ok := l.cache[key]
	l.mu.Unlock()
	if ok || l.Dir == "" {
		return v, ok
	}
	if !statefile.ReadJSON(filepath.Join(l.Dir, key+".json"), &v) {
		return Verdict{}, false
	}
	l.mu.Lock()
	l.cache[key] = v
	l.mu.Unlock()
	return v, true
}

func (l *Linter) store(key string, v Verdict) {
	l.mu.Lock()
	l.cache[key] = v
	l.mu.Unlock()
	if l.Dir == "" {
		return
	}
	// The cache only saves work: a verdict not written is linted again.
	_ = statefile.WriteJSON(filepath.Join(l.Dir, key+".json"), v)
}

// checkSchemas refuses a values.schema.json, in ch or any of its
// subcharts, that refers to anything outside itself. Helm compiles schemas
// with loaders for http, https and file URLs, resolving relative references
// against file:///values.schema.json: a "$ref" to a URL makes lint fetch it,
// and one to a relative or absolute path makes it read the local disk. Only
// references within the file ("#...") and the JSON Schema drafts helm has
// built in ("$schema") are allowed.
func checkSchemas(ch *chart.Chart) error {
	var visit func(ch *chart.Chart, where string) error
	visit = func(ch *chart.Chart, where string) error {
		if ch.Schema != nil {
			var doc any
			if json.Unmarshal(ch.Schema, &doc) == nil {
				if err := checkSchemaRefs(doc, ""); err != nil {
					return failf(ReasonLint, "%s/values.schema.json: %v", where, err)
				}
			}
		}
		for _, d := range ch.Dependencies() {
			if err := visit(d, where+"/charts/"+d.Name()); err != nil {
				return err
			}
		}
		return nil
	}
	return visit(ch, ch.Name())
}

// checkSchemaRefs walks a decoded JSON schema; ptr is the JSON pointer of v.
func checkSchemaRefs(v any, ptr string) error {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			s, isString := x.(string)
			switch {
			case !isString:
			case k == "$ref" || k == "$dynamicRef" || k == "$recursiveRef":
				if !strings.HasPrefix(s, "#") {
					return fmt.Errorf("%q %q at %q refers outside the file; helm would fetch or read it: only references within the file (\"#...\") are allowed", k, s, ptr+"/"+k)
				}
			case k == "$schema":
				if !knownDraft(s) {
					return fmt.Errorf("\"$schema\" %q at %q is not a JSON Schema draft helm has built in; helm would fetch it", s, ptr+"/"+k)
				}
			}
			if k == "$vocabulary" {
				return fmt.Errorf("\"$vocabulary\" at %q: vocabularies would be fetched", ptr)
			}
			if err := checkSchemaRefs(x, ptr+"/"+k); err != nil {
				return err
			}
		}
	case []any:
		for i, x := range v {
			if err := checkSchemaRefs(x, ptr+"/"+strconv.Itoa(i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// knownDraft reports whether url names a metaschema the jsonschema library
// helm uses has built in (so that it is never fetched).
func knownDraft(url string) bool {
	u := strings.TrimSuffix(url, "#")
	if strings.Contains(u, "#") {
		return false
	}
	u, ok := strings.CutPrefix(u, "http://")
	if !ok {
		if u, ok = strings.CutPrefix(u, "https://"); !ok {
			return false
		}
	}
	switch u {
	case "json-schema.org/schema", "json-schema.org/draft/2020-12/schema", "json-schema.org/draft/2019-09/schema",
		"json-schema.org/draft-07/schema", "json-schema.org/draft-06/schema", "json-schema.org/draft-04/schema":
		return true
	}
	return false
}
