package publisher

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"
)

// parseIndex reads an index.yaml the way helm does (JSON or strict YAML,
// apiVersion required) but drops nothing that has content: every entry that
// is read is written back.
func parseIndex(b []byte) (*repo.IndexFile, error) {
	idx := &repo.IndexFile{}
	if len(b) == 0 {
		return nil, errors.New("index is empty")
	}
	var err error
	if json.Valid(b) {
		err = json.Unmarshal(b, idx)
	} else {
		err = yaml.UnmarshalStrict(b, idx)
	}
	if err != nil {
		return nil, err
	}
	if idx.APIVersion == "" {
		return nil, repo.ErrNoAPIVersion
	}
	if idx.Entries == nil {
		idx.Entries = map[string]repo.ChartVersions{}
	}
	for name, cvs := range idx.Entries {
		kept := cvs[:0]
		for _, cv := range cvs {
			if cv == nil {
				continue // "- " with nothing in it carries nothing to keep
			}
			if cv.Metadata == nil {
				cv.Metadata = &chart.Metadata{}
			}
			kept = append(kept, cv)
		}
		idx.Entries[name] = kept
	}
	return idx, nil
}

// marshalIndex renders the index as helm writes it: entries sorted newest
// version first.
func marshalIndex(idx *repo.IndexFile) ([]byte, error) {
	idx.SortEntries()
	b, err := yaml.Marshal(idx)
	if err != nil {
		return nil, fmt.Errorf("marshal index: %w", err)
	}
	return b, nil
}

// filenames maps each package file name the index refers to (the base of
// its first url) to its entry.
func filenames(idx *repo.IndexFile) map[string]*repo.ChartVersion {
	m := map[string]*repo.ChartVersion{}
	for _, cvs := range idx.Entries {
		for _, cv := range cvs {
			if len(cv.URLs) > 0 {
				m[path.Base(cv.URLs[0])] = cv
			}
		}
	}
	return m
}

// Lookup returns idx's entry for exactly (name, version), or nil. (helm's
// IndexFile.Has takes version as a semver constraint.)
func Lookup(idx *repo.IndexFile, name, version string) *repo.ChartVersion {
	for _, cv := range idx.Entries[name] {
		if cv.Version == version {
			return cv
		}
	}
	return nil
}

// Entries returns the number of chart versions in idx.
func Entries(idx *repo.IndexFile) int {
	n := 0
	for _, cvs := range idx.Entries {
		n += len(cvs)
	}
	return n
}
