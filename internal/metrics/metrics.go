// Package metrics owns chartsync's Prometheus metrics: their names, types and
// labels, a store.Store wrapper that measures storage operations, and the
// node_exporter textfile output used by one-shot runs.
//
// Every collector is registered on the Registerer given to New; nothing is
// registered on the global registry. Label values are bounded: a configured
// repository name, a store backend name, an operation, a result or a failure
// reason class — never a chart version, a commit id (except the single
// chartsync_git_commit_info series) or an error string.
package metrics

import (
	"reflect"
	"runtime"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

const namespace = "chartsync"

// Values of the result label of chartsync_cycles_total.
const (
	// ResultSuccess: the cycle ran and every chart was published or skipped.
	ResultSuccess = "success"
	// ResultChartFailures: the cycle ran but one or more charts failed alone.
	ResultChartFailures = "chart_failures"
	// ResultError: the cycle itself failed (git, index read, store listing).
	ResultError = "error"
	// ResultTimeout: the cycle, a git operation or a store request ran out
	// of time (cycle_timeout, git.timeout, [store.NAME] timeout): a failed
	// cycle, counted apart so that a hung server shows as such.
	ResultTimeout = "timeout"
)

// Values of the reason label of chartsync_charts_failed_total: the class of a
// chart's failure. Use only these; they keep the label bounded.
const (
	ReasonChartfile  = "chartfile"  // Chart.yaml missing or invalid
	ReasonVersion    = "version"    // version is not valid semver
	ReasonSymlink    = "symlink"    // symlink leaves the git tree
	ReasonDependency = "dependency" // a dependency is missing
	ReasonLint       = "lint"       // helm lint found errors
	ReasonPackage    = "package"    // packaging failed
	ReasonConflict   = "conflict"   // two directories claim one name and version
	ReasonStore      = "store"      // writing the package or index failed
	ReasonModified   = "modified"   // the stored package differs from the index
	// ReasonContentDiffers: the chart version is published with other
	// content than this site builds (the version was not bumped).
	ReasonContentDiffers = "content_differs"
)

// Reasons lists every failure reason, in a fixed order.
var Reasons = []string{
	ReasonChartfile, ReasonVersion, ReasonSymlink, ReasonDependency, ReasonLint,
	ReasonPackage, ReasonConflict, ReasonStore, ReasonModified, ReasonContentDiffers,
}

// Values of the result label of chartsync_config_reloads_total.
const (
	ReloadSuccess = "success"
	ReloadFailure = "failure"
)

// Values of the operation label of the chartsync_store_* metrics.
const (
	OpGet     = "get"
	OpCreate  = "create"
	OpReplace = "replace"
	OpList    = "list"
)

// Metrics holds every chartsync collector. The fields are safe for concurrent
// use. Labelled vectors take their labels in the order given in each comment.
type Metrics struct {
	// BuildInfo is chartsync_build_info{version,revision,goversion}, always 1.
	BuildInfo *prometheus.GaugeVec

	// CyclesTotal is chartsync_cycles_total{result}; result is one of
	// ResultSuccess, ResultChartFailures, ResultError, ResultTimeout (all
	// start at 0).
	CyclesTotal *prometheus.CounterVec
	// CycleDuration is chartsync_cycle_duration_seconds, one observation per cycle.
	CycleDuration prometheus.Histogram
	// LastCycleStart is chartsync_last_cycle_start_timestamp_seconds (Unix time).
	LastCycleStart prometheus.Gauge
	// LastSuccess is chartsync_last_success_timestamp_seconds: when the last
	// cycle that ran to completion (result success or chart_failures) ended,
	// in Unix time; 0 until the first one.
	LastSuccess prometheus.Gauge
	// CyclesSkipped is chartsync_cycles_skipped_total: a scheduled or
	// triggered cycle that was due while another was running.
	CyclesSkipped prometheus.Counter

	// GitFetchDuration is chartsync_git_fetch_duration_seconds.
	GitFetchDuration prometheus.Histogram
	// GitFetchFailures is chartsync_git_fetch_failures_total.
	GitFetchFailures prometheus.Counter
	// CommitTimestamp is chartsync_git_commit_timestamp_seconds: commit time
	// of the checked-out head. Set it through SetCommit.
	CommitTimestamp prometheus.Gauge
	// CommitInfo is chartsync_git_commit_info{commit}, 1 for the checked-out
	// head only. Set it through SetCommit, which keeps one series.
	CommitInfo *prometheus.GaugeVec

	// ChartsPublished is chartsync_charts_published_total{repository}.
	ChartsPublished *prometheus.CounterVec
	// ChartsFailed is chartsync_charts_failed_total{repository,reason}; reason
	// is one of Reasons.
	ChartsFailed *prometheus.CounterVec
	// ChartsConflicting is chartsync_chart_conflicts{repository}: directories
	// claiming an already claimed name and version in the last cycle.
	ChartsConflicting *prometheus.GaugeVec
	// ChartsSkipped is chartsync_charts_skipped_total{repository}: chart
	// versions found in git that were already published.
	ChartsSkipped *prometheus.CounterVec
	// IndexEntries is chartsync_index_entries{repository}: chart versions in
	// the repository's index.yaml after the last cycle.
	IndexEntries *prometheus.GaugeVec
	// GitCharts is chartsync_git_charts{repository}: distinct chart names in git.
	GitCharts *prometheus.GaugeVec
	// GitChartVersions is chartsync_git_chart_versions{repository}: distinct
	// chart name and version pairs in git.
	GitChartVersions *prometheus.GaugeVec
	// IndexRepairs is chartsync_index_repairs_total{repository}: index
	// entries that an earlier index read listed and a later one lacked (a
	// real loss), added back from the stored package.
	IndexRepairs *prometheus.CounterVec
	// IndexAdopted is chartsync_index_adopted_total{repository}: stored
	// packages that no index read had listed, indexed for the first time
	// from their stored bytes (another tool's package, or another
	// publisher's still in flight).
	IndexAdopted *prometheus.CounterVec
	// PackagesRestored is chartsync_packages_restored_total{repository}:
	// stored packages whose bytes differed from the index digest and were
	// put back to the indexed bytes.
	PackagesRestored *prometheus.CounterVec
	// IndexEditedEntries is chartsync_index_edited_entries{repository}:
	// index entries whose digest changed while the stored package kept the
	// bytes first indexed, in the last cycle.
	IndexEditedEntries *prometheus.GaugeVec
	// IndexMissingPackages is chartsync_index_missing_packages{repository}:
	// index entries whose package is not in the store.
	IndexMissingPackages *prometheus.GaugeVec
	// ModifiedPackages is chartsync_store_modified_packages{repository}:
	// stored packages whose bytes no longer match the index digest.
	ModifiedPackages *prometheus.GaugeVec
	// DriftedCharts is chartsync_drifted_charts{repository}: indexed chart
	// versions whose build at the last cycle's commit has another digest
	// than the index lists (see docs/metrics.md).
	DriftedCharts *prometheus.GaugeVec

	// StoreOperations is chartsync_store_operations_total{backend,operation}.
	StoreOperations *prometheus.CounterVec
	// StoreErrors is chartsync_store_errors_total{backend,operation}; normal
	// answers (see InstrumentStore) are not errors.
	StoreErrors *prometheus.CounterVec
	// StoreDuration is chartsync_store_operation_duration_seconds{backend,operation}.
	StoreDuration *prometheus.HistogramVec

	// ConfigReloads is chartsync_config_reloads_total{result}; result is
	// ReloadSuccess or ReloadFailure (both start at 0).
	ConfigReloads *prometheus.CounterVec
	// ConfigLastReloadSuccessful is chartsync_config_last_reload_successful:
	// 1 if the last reload succeeded (or none happened yet), else 0.
	ConfigLastReloadSuccessful prometheus.Gauge
}

// Histogram buckets, in seconds.
var (
	// cycleBuckets spans a no-op cycle (0.1 s) to a full republish (10 min).
	cycleBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	// fetchBuckets spans an up-to-date fetch to a first clone.
	fetchBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	// storeBuckets spans a local file read to a slow multi-megabyte upload.
	storeBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
)

// New creates every chartsync collector, registers it on reg, sets
// chartsync_build_info to 1 for version, revision and the Go version, and
// initialises the labelled series whose label values are known up front
// (cycle and reload results) to 0. It panics if a collector cannot be
// registered, as promauto does: that is a programming error, such as calling
// New twice on one registry.
func New(reg prometheus.Registerer, version, revision string) *Metrics {
	f := promauto.With(reg)
	repo := []string{"repository"}
	storeLabels := []string{"backend", "operation"}
	m := &Metrics{
		BuildInfo: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "build_info",
			Help: "A metric with a constant '1' value labelled by version, revision and goversion from which chartsync was built.",
		}, []string{"version", "revision", "goversion"}),

		CyclesTotal: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cycles_total",
			Help: "Sync cycles run, by result: success, chart_failures (some charts failed alone), error (the cycle failed) or timeout (the cycle, a git operation or a store request ran out of time).",
		}, []string{"result"}),
		CycleDuration: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "cycle_duration_seconds",
			Help:    "Duration of sync cycles, whatever their result.",
			Buckets: cycleBuckets,
		}),
		LastCycleStart: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "last_cycle_start_timestamp_seconds",
			Help: "Unix time the last sync cycle started.",
		}),
		LastSuccess: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "last_success_timestamp_seconds",
			Help: "Unix time the last sync cycle that ran to completion (result success or chart_failures) ended.",
		}),
		CyclesSkipped: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "cycles_skipped_total",
			Help: "Scheduled or triggered sync cycles skipped because a cycle was still running.",
		}),

		GitFetchDuration: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "git_fetch_duration_seconds",
			Help:    "Duration of git clone or fetch and checkout, whatever the outcome.",
			Buckets: fetchBuckets,
		}),
		GitFetchFailures: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "git_fetch_failures_total",
			Help: "Failed git clones or fetches.",
		}),
		CommitTimestamp: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "git_commit_timestamp_seconds",
			Help: "Commit time (Unix time) of the git head the last cycle worked on.",
		}),
		CommitInfo: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "git_commit_info",
			Help: "Constant 1, labelled with the id of the git head the last cycle worked on. Exactly one series.",
		}, []string{"commit"}),

		ChartsPublished: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "charts_published_total",
			Help: "Chart versions published (package stored and added to the index).",
		}, repo),
		ChartsFailed: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "charts_failed_total",
			Help: "Chart versions that failed to publish, by reason class.",
		}, []string{"repository", "reason"}),
		ChartsConflicting: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "chart_conflicts",
			Help: "Chart directories that claimed a chart name and version already claimed by another directory, in the last cycle.",
		}, repo),
		ChartsSkipped: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "charts_skipped_total",
			Help: "Chart versions found in git that were already published.",
		}, repo),
		IndexEntries: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "index_entries",
			Help: "Chart versions listed in the repository's index.yaml after the last cycle.",
		}, repo),
		GitCharts: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "git_charts",
			Help: "Distinct chart names found in git in the last cycle.",
		}, repo),
		GitChartVersions: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "git_chart_versions",
			Help: "Distinct chart name and version pairs found in git in the last cycle.",
		}, repo),
		IndexRepairs: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "index_repairs_total",
			Help: "Index entries lost (listed by an earlier index read, missing from a later one) and added back from the stored package.",
		}, repo),
		IndexAdopted: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "index_adopted_total",
			Help: "Stored packages no index had listed, indexed for the first time from their stored bytes (another tool's, or another publisher's in flight).",
		}, repo),
		PackagesRestored: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "packages_restored_total",
			Help: "Stored packages whose bytes differed from the index digest, put back to the indexed bytes.",
		}, repo),
		IndexEditedEntries: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "index_edited_entries",
			Help: "Index entries whose digest changed while the stored package kept the bytes first indexed, in the last cycle.",
		}, repo),
		IndexMissingPackages: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "index_missing_packages",
			Help: "Index entries whose package is not in the store, in the last cycle.",
		}, repo),
		ModifiedPackages: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "store_modified_packages",
			Help: "Stored packages whose bytes no longer match the digest in the index, in the last cycle.",
		}, repo),
		DriftedCharts: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "drifted_charts",
			Help: "Indexed chart versions whose build at the last cycle's commit has another digest than the index lists: an unbumped change, or a package not built by chartsync.",
		}, repo),

		StoreOperations: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "store_operations_total",
			Help: "Store operations attempted, by backend and operation.",
		}, storeLabels),
		StoreErrors: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "store_errors_total",
			Help: "Store operations that failed, by backend and operation. Not-found on get, exists on create and a lost guarded replace are answers, not errors.",
		}, storeLabels),
		StoreDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "store_operation_duration_seconds",
			Help:    "Duration of store operations, by backend and operation, whatever the outcome.",
			Buckets: storeBuckets,
		}, storeLabels),

		ConfigReloads: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "config_reloads_total",
			Help: "Configuration reloads, by result: success or failure.",
		}, []string{"result"}),
		ConfigLastReloadSuccessful: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_last_reload_successful",
			Help: "1 if the last configuration reload succeeded or none was tried, 0 if it failed.",
		}),
	}

	m.BuildInfo.WithLabelValues(version, revision, runtime.Version()).Set(1)
	for _, r := range []string{ResultSuccess, ResultChartFailures, ResultError, ResultTimeout} {
		m.CyclesTotal.WithLabelValues(r)
	}
	m.ConfigReloads.WithLabelValues(ReloadSuccess)
	m.ConfigReloads.WithLabelValues(ReloadFailure)
	m.ConfigLastReloadSuccessful.Set(1)
	return m
}

// InitRepository creates every per-repository series of repository at 0
// (its counters, including chartsync_charts_failed_total for each of Reasons,
// and its gauges), so that rate() and increase() see the first event of each
// and dashboards show 0 rather than no data. Call it once per configured
// repository, at start and after a reload.
func (m *Metrics) InitRepository(repository string) {
	m.ChartsPublished.WithLabelValues(repository)
	m.ChartsSkipped.WithLabelValues(repository)
	m.IndexRepairs.WithLabelValues(repository)
	m.IndexAdopted.WithLabelValues(repository)
	m.PackagesRestored.WithLabelValues(repository)
	for _, r := range Reasons {
		m.ChartsFailed.WithLabelValues(repository, r)
	}
	for _, g := range []*prometheus.GaugeVec{
		m.ChartsConflicting, m.IndexEntries, m.GitCharts, m.GitChartVersions,
		m.IndexMissingPackages, m.ModifiedPackages, m.IndexEditedEntries, m.DriftedCharts,
	} {
		g.WithLabelValues(repository)
	}
}

// CycleStarted records that a sync cycle started at t.
func (m *Metrics) CycleStarted(t time.Time) {
	m.LastCycleStart.Set(unixSeconds(t))
}

// CycleEnded records a cycle that started at start and ended at end with
// result (ResultSuccess, ResultChartFailures, ResultError or ResultTimeout): it
// counts the cycle, observes its duration and, unless the cycle failed, sets
// chartsync_last_success_timestamp_seconds to end: a cycle in which some
// charts failed alone still did its job for every other chart, and those
// failures have their own counter and alert.
func (m *Metrics) CycleEnded(start, end time.Time, result string) {
	m.CyclesTotal.WithLabelValues(result).Inc()
	m.CycleDuration.Observe(end.Sub(start).Seconds())
	if result != ResultError && result != ResultTimeout {
		m.LastSuccess.Set(unixSeconds(end))
	}
}

// SetCommit records the git head a cycle works on: chartsync_git_commit_timestamp_seconds
// becomes t, and chartsync_git_commit_info keeps exactly one series, {commit=id}.
func (m *Metrics) SetCommit(id string, t time.Time) {
	m.CommitTimestamp.Set(unixSeconds(t))
	// Reset and set are not one atomic step: a scrape in between may see no
	// commit_info series, never two.
	m.CommitInfo.Reset()
	m.CommitInfo.WithLabelValues(id).Set(1)
}

// RecordConfigReload counts one configuration reload: success if err is nil,
// else failure, and sets chartsync_config_last_reload_successful to match.
func (m *Metrics) RecordConfigReload(err error) {
	if err != nil {
		m.ConfigReloads.WithLabelValues(ReloadFailure).Inc()
		m.ConfigLastReloadSuccessful.Set(0)
		return
	}
	m.ConfigReloads.WithLabelValues(ReloadSuccess).Inc()
	m.ConfigLastReloadSuccessful.Set(1)
}

func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}

// ForgetRepositories deletes every per-repository series of each name in
// old that is not in current: after a reload that removes or renames a
// repository its series go, so that no alert (such as the one on
// chartsync_store_modified_packages) keeps firing for a repository that
// is no longer published. Series of names in current are kept. Every
// labelled vector of Metrics is covered, including ones added later: the
// fields are found by reflection.
func (m *Metrics) ForgetRepositories(old, current []string) {
	type partialDeleter interface {
		DeletePartialMatch(prometheus.Labels) int
	}
	v := reflect.ValueOf(m).Elem()
	for _, name := range old {
		if slices.Contains(current, name) {
			continue
		}
		labels := prometheus.Labels{"repository": name}
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			if d, ok := v.Field(i).Interface().(partialDeleter); ok {
				d.DeletePartialMatch(labels)
			}
		}
	}
}
