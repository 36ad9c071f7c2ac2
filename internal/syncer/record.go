package syncer

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/chartsync/chartsync/internal/metrics"
)

// record logs each chart's outcome once and updates the metrics. The
// cycle's own error (Result.Err, RepoResult.Err) is the caller's to log:
// the daemon or the CLI, which decide what it means.
func (s *Syncer) record(start time.Time, res *Result) {
	for _, c := range res.Charts {
		log := s.log.With("repository", c.Repository, "chart", c.Name, "version", c.Version)
		for _, w := range c.Warnings {
			log.Warn("lint", "dir", c.Dir, "warning", w)
		}
		switch c.Outcome {
		case Published:
			log.Info("published", "dir", c.Dir)
		case Adopted:
			log.Info("adopted: stored by another tool with the same content, indexed from the stored bytes", "dir", c.Dir)
		case Failed:
			log.Error("chart failed", "dir", c.Dir, "reason", c.Reason, "err", c.Err)
		}
	}
	for _, r := range res.Repos {
		log := s.log.With("repository", r.Name)
		// One record per kind and cycle, whatever the number of entries:
		// a repository missing 20,000 packages logs one warning, not
		// 20,000. The full list is at debug level.
		kinds := []struct {
			level slog.Level
			msg   string
			files []string
		}{
			{slog.LevelWarn, "index entries lost to a concurrent index write, added back from the stored packages", r.Repaired},
			{slog.LevelInfo, "stored packages indexed for the first time (stored by another tool, or by another publisher not done yet)", r.Adopted},
			{slog.LevelWarn, "index entries without a stored package", r.Missing},
			{slog.LevelError, "stored packages differ from their index digest, and this site cannot restore the indexed bytes", r.Modified},
			{slog.LevelError, "index entries' digests were changed, the stored packages were not: the index was edited", r.Edited},
		}
		for _, k := range kinds {
			if len(k.files) == 0 {
				continue
			}
			log.Log(context.Background(), k.level, k.msg, "count", len(k.files), "charts", Brief(k.files))
			if len(k.files) > BriefNames {
				log.Debug(k.msg+" (full list)", "charts", strings.Join(k.files, ","))
			}
		}
	}

	m := s.metrics
	if m == nil {
		return
	}
	result := metrics.ResultSuccess
	switch err := res.CycleErr(); {
	case errors.Is(err, context.DeadlineExceeded):
		result = metrics.ResultTimeout
	case err != nil:
		result = metrics.ResultError
	case !res.OK():
		result = metrics.ResultChartFailures
	}
	for _, c := range res.Charts {
		switch c.Outcome {
		case Published:
			m.ChartsPublished.WithLabelValues(c.Repository).Inc()
		case Adopted, Skipped:
			m.ChartsSkipped.WithLabelValues(c.Repository).Inc()
		case Failed:
			m.ChartsFailed.WithLabelValues(c.Repository, c.Reason).Inc()
		}
	}
	if res.Err == nil {
		for _, r := range res.Repos {
			m.ChartsConflicting.WithLabelValues(r.Name).Set(float64(r.Conflicts))
			m.GitCharts.WithLabelValues(r.Name).Set(float64(r.GitCharts))
			m.GitChartVersions.WithLabelValues(r.Name).Set(float64(r.GitVersions))
			if r.Err != nil {
				continue
			}
			m.IndexEntries.WithLabelValues(r.Name).Set(float64(r.Entries))
			m.IndexRepairs.WithLabelValues(r.Name).Add(float64(len(r.Repaired)))
			m.IndexAdopted.WithLabelValues(r.Name).Add(float64(len(r.Adopted)))
			m.PackagesRestored.WithLabelValues(r.Name).Add(float64(len(r.Restored)))
			m.IndexEditedEntries.WithLabelValues(r.Name).Set(float64(len(r.Edited)))
			m.IndexMissingPackages.WithLabelValues(r.Name).Set(float64(len(r.Missing)))
			m.ModifiedPackages.WithLabelValues(r.Name).Set(float64(len(r.Modified)))
		}
	}
	m.CycleEnded(start, time.Now(), result)
}
