package metrics

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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

// RestoreTextfile carries state over from the textfile an earlier one-shot
// run wrote to path, so that a series of runs (chartsync run --once from a
// systemd timer) looks to Prometheus like one long-running process: every
// chartsync counter continues from its previous value, so rate() and
// increase() work, and chartsync_last_success_timestamp_seconds keeps the
// previous success until this run has one of its own. Histograms and the
// other gauges start afresh. Call it right after New, before the cycle.
//
// A missing file is not an error (the first run). A file that does not parse
// returns an error and restores nothing; series whose labels no longer
// match a metric are ignored.
func (m *Metrics) RestoreTextfile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore metrics: %w", err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("restore metrics from %s: %w", path, err)
	}
	vecs := map[string]*prometheus.CounterVec{
		"chartsync_cycles_total":           m.CyclesTotal,
		"chartsync_charts_published_total": m.ChartsPublished,
		"chartsync_charts_failed_total":    m.ChartsFailed,
		"chartsync_charts_skipped_total":   m.ChartsSkipped,
		"chartsync_index_repairs_total":    m.IndexRepairs,
		"chartsync_store_operations_total": m.StoreOperations,
		"chartsync_store_errors_total":     m.StoreErrors,
		"chartsync_config_reloads_total":   m.ConfigReloads,
	}
	plain := map[string]prometheus.Counter{
		"chartsync_cycles_skipped_total":     m.CyclesSkipped,
		"chartsync_git_fetch_failures_total": m.GitFetchFailures,
	}
	for name, mf := range fams {
		for _, s := range mf.GetMetric() {
			var v float64
			switch {
			case s.GetCounter() != nil:
				v = s.GetCounter().GetValue()
			case s.GetGauge() != nil:
				v = s.GetGauge().GetValue()
			case s.GetUntyped() != nil:
				v = s.GetUntyped().GetValue()
			}
			if !(v > 0) || math.IsInf(v, 0) {
				continue
			}
			if name == "chartsync_last_success_timestamp_seconds" {
				m.LastSuccess.Set(v)
				continue
			}
			if c, ok := plain[name]; ok && len(s.GetLabel()) == 0 {
				c.Add(v)
				continue
			}
			vec, ok := vecs[name]
			if !ok {
				continue
			}
			labels := prometheus.Labels{}
			for _, lp := range s.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if c, err := vec.GetMetricWith(labels); err == nil {
				c.Add(v)
			}
		}
	}
	return nil
}

func wrapErr(verb string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", verb, err)
}
