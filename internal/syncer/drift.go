package syncer

import (
	"errors"
	"path/filepath"

	"github.com/chartsync/chartsync/internal/publisher"
	"github.com/chartsync/chartsync/internal/statefile"
)

// Drift is a chart version in the index whose build at the cycle's commit
// has another digest than the index lists. chartsync packages
// reproducibly, so this means either an unbumped change (the chart was
// edited after its version was published) or a package that chartsync did
// not build (another tool's bytes). The first is also a content_differs
// failure of the chart; the second is only a warning.
type Drift struct {
	Name, Version string
	Dir           string // the chart's directory at the commit
	Indexed       string // sha256 the index lists
	Built         string // sha256 of this commit's build
	// ContentDiffers is set when the chart failed with content_differs:
	// the packaged files differ too, not only the bytes.
	ContentDiffers bool
}

// drifted lists the builds in pkgs of versions already in idx (the charts
// of indexed) whose digest is not the index's. failed is the publisher's
// per-file failures, nil when not known (a plan, or before publishing).
func drifted(idx *publisher.Index, pkgs []publisher.Package, indexed []ChartResult, failed map[string]error) []Drift {
	dirs := map[string]string{}
	for _, c := range indexed {
		dirs[publisher.Filename(c.Name, c.Version)] = c.Dir
	}
	var out []Drift
	for _, p := range pkgs {
		md := p.Metadata
		file := publisher.Filename(md.Name, md.Version)
		dir, ok := dirs[file]
		if !ok {
			continue
		}
		cv := publisher.Lookup(idx, md.Name, md.Version)
		if cv == nil || cv.Digest == "" || p.Digest == "" || cv.Digest == p.Digest {
			continue
		}
		out = append(out, Drift{Name: md.Name, Version: md.Version, Dir: dir, Indexed: cv.Digest, Built: p.Digest,
			ContentDiffers: errors.Is(failed[file], publisher.ErrContentDiffers)})
	}
	return out
}

// drift marks each of ds that failed with content_differs in failed,
// logs each once per chart version and commit (remembered in
// state_dir/drift, so that a daemon or a timer does not repeat it every
// cycle), sets chartsync_drifted_charts and returns ds.
func (s *Syncer) drift(repository, commit string, ds []Drift, failed map[string]error) []Drift {
	for i := range ds {
		ds[i].ContentDiffers = errors.Is(failed[publisher.Filename(ds[i].Name, ds[i].Version)], publisher.ErrContentDiffers)
	}
	if s.metrics != nil {
		s.metrics.DriftedCharts.WithLabelValues(repository).Set(float64(len(ds)))
	}
	file := filepath.Join(s.cfg.StateDir, "drift", repository+".json")
	seen := map[string]string{}
	statefile.ReadJSON(file, &seen)
	now := map[string]string{}
	for _, d := range ds {
		key := d.Name + " " + d.Version
		now[key] = commit + " " + d.Indexed + " " + d.Built
		if seen[key] == now[key] {
			continue
		}
		log := s.log.With("repository", repository, "chart", d.Name, "version", d.Version, "dir", d.Dir,
			"commit", commit, "index_digest", d.Indexed, "build_digest", d.Built)
		if d.ContentDiffers {
			log.Warn("drift: the chart was changed without a version bump; this version is published with other content (see the content_differs failure)")
		} else {
			log.Warn("drift: the indexed package holds the same files as this commit's build but other bytes: it was not built by chartsync")
		}
	}
	if err := statefile.WriteJSON(file, now); err != nil {
		s.log.Warn("remember drift", "repository", repository, "err", err)
	}
	return ds
}
