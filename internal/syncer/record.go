package syncer

import (
	"context"
	"errors"
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
		for _, f := range r.Repaired {
			log.Warn("index entry lost to a concurrent index write, added back from the stored package", "chart", f)
		}
		for _, f := range r.Adopted {
			log.Info("stored package indexed for the first time (stored by another tool, or by another publisher not done yet)", "chart", f)
		}
		for _, f := range r.Missing {
			log.Warn("index entry without a stored package", "chart", f)
		}
		for _, f := range r.Modified {
			log.Error("stored package differs from its index digest, and this site cannot restore the indexed bytes", "chart", f)
		}
		for _, f := range r.Edited {
			log.Error("index entry's digest was changed, the stored package was not: the index was edited", "chart", f)
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
