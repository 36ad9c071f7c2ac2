package syncer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/chartsync/chartsync/internal/packager"
	"github.com/chartsync/chartsync/internal/publisher"
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

// drifted lists the builds in compared (this commit's builds of the
// indexed versions in check) whose digest is not the index's. failed is
// the publisher's per-file failures, nil for a plan.
func drifted(idx *publisher.Index, compared []publisher.Package, check []packager.Chart, failed map[string]error) []Drift {
	dirs := map[string]string{}
	for _, c := range check {
		dirs[publisher.Filename(c.Metadata.Name, c.Metadata.Version)] = c.Dir
	}
	var out []Drift
	for _, p := range compared {
		md := p.Metadata
		cv := publisher.Lookup(idx, md.Name, md.Version)
		if cv == nil || cv.Digest == "" || cv.Digest == p.Digest {
			continue
		}
		file := publisher.Filename(md.Name, md.Version)
		out = append(out, Drift{Name: md.Name, Version: md.Version, Dir: dirs[file], Indexed: cv.Digest, Built: p.Digest,
			ContentDiffers: errors.Is(failed[file], publisher.ErrContentDiffers)})
	}
	return out
}

// drift logs each drift of repository once per chart version and commit
// (remembered in state_dir/drift, so that a daemon or a timer does not
// repeat it every cycle), sets chartsync_drifted_charts and returns ds.
func (s *Syncer) drift(repository, commit string, ds []Drift) []Drift {
	if s.metrics != nil {
		s.metrics.DriftedCharts.WithLabelValues(repository).Set(float64(len(ds)))
	}
	file := filepath.Join(s.cfg.StateDir, "drift", repository+".json")
	seen := map[string]string{}
	if b, err := os.ReadFile(file); err == nil {
		_ = json.Unmarshal(b, &seen)
	}
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
	if err := saveJSON(file, now); err != nil {
		s.log.Warn("remember drift", "repository", repository, "err", err)
	}
	return ds
}

// saveJSON writes v to file through a temporary file and a rename.
func saveJSON(file string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", file, err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(file), err)
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}
