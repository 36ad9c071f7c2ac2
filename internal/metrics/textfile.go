package metrics

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// WriteTextfile gathers g and writes the text exposition format to path for
// node_exporter's textfile collector (path should end in ".prom"). The write
// is atomic: the metrics go to a temporary file in path's directory (named
// with a leading dot and no ".prom" suffix, so the collector never reads it),
// which is synced, given mode 0644 and renamed over path; the directory is
// then synced. A reader sees the old file or the new one, never a part. On
// any error, including a gathering error, path is left as it was and the
// temporary file is removed.
func WriteTextfile(path string, g prometheus.Gatherer) (err error) {
	mfs, err := g.Gather()
	if err != nil {
		return fmt.Errorf("gather metrics: %w", err)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("create textfile: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriter(tmp)
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return fmt.Errorf("write textfile %s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write textfile %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("chmod textfile %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync textfile %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close textfile %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename textfile %s: %w", path, err)
	}
	// The rename is durable only once the directory is synced. The file is in
	// place already, so a failure here is reported but nothing is undone.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync textfile directory: %w", err)
	}
	return errors.Join(wrapErr("sync textfile directory", d.Sync()), d.Close())
}

func wrapErr(verb string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", verb, err)
}
