package publisher

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/chart"
)

// The index types below are helm's (helm.sh/helm/v3/pkg/repo), field for
// field and tag for tag, so that an index is read and written exactly as
// helm reads and writes it. They are chartsync's own because helm's
// package brings its HTTP and OCI clients, and Kubernetes' with them, into
// any program that imports it: a memory floor a large index cannot afford.
// indexfile_test.go holds them to helm's.

// IndexFile is a repository's index as helm reads and writes it.
type IndexFile struct {
	// ServerInfo is chartmuseum's; helm reads it and otherwise ignores it.
	ServerInfo  map[string]any           `json:"serverInfo,omitempty"`
	APIVersion  string                   `json:"apiVersion"`
	Generated   time.Time                `json:"generated"`
	Entries     map[string]ChartVersions `json:"entries"`
	PublicKeys  []string                 `json:"publicKeys,omitempty"`
	Annotations map[string]string        `json:"annotations,omitempty"`
}

// ChartVersion is one entry of an index: a chart version's metadata and
// where its package is.
type ChartVersion struct {
	*chart.Metadata
	URLs    []string  `json:"urls"`
	Created time.Time `json:"created,omitempty"`
	Removed bool      `json:"removed,omitempty"`
	Digest  string    `json:"digest,omitempty"`

	// Fields of helm 2 indexes, which helm 3 reads and ignores.
	ChecksumDeprecated      string `json:"checksum,omitempty"`
	EngineDeprecated        string `json:"engine,omitempty"`
	TillerVersionDeprecated string `json:"tillerVersion,omitempty"`
	URLDeprecated           string `json:"url,omitempty"`
}

// ChartVersions is a chart's entries. As a sort.Interface it orders them
// by ascending semantic version, a version that does not parse first.
type ChartVersions []*ChartVersion

func (c ChartVersions) Len() int      { return len(c) }
func (c ChartVersions) Swap(i, j int) { c[i], c[j] = c[j], c[i] }

// Less is helm's comparison, which is not a strict order when a version
// does not parse: SortEntries uses it with sort.Sort, as helm does, so
// that even such lists come out in helm's order.
func (c ChartVersions) Less(a, b int) bool {
	i, err := semver.NewVersion(c[a].Version)
	if err != nil {
		return true
	}
	j, err := semver.NewVersion(c[b].Version)
	if err != nil {
		return false
	}
	return i.LessThan(j)
}

// NewIndexFile returns an empty v1 index generated now.
func NewIndexFile() *IndexFile {
	return &IndexFile{
		APIVersion: "v1",
		Generated:  time.Now(),
		Entries:    map[string]ChartVersions{},
		PublicKeys: []string{},
	}
}

// MustAdd appends an entry for md, created now, with digest and the URL
// of filename's base name under baseURL (filename itself if baseURL is
// empty). It sets md's apiVersion to v1 if it has none, and returns an
// error, adding nothing, if md is not valid chart metadata. The entries
// are left unsorted.
func (i *IndexFile) MustAdd(md *chart.Metadata, filename, baseURL, digest string) error {
	if i.Entries == nil {
		return errors.New("entries not initialized")
	}
	if md.APIVersion == "" {
		md.APIVersion = chart.APIVersionV1
	}
	if err := md.Validate(); err != nil {
		return fmt.Errorf("validate failed for %s: %w", filename, err)
	}
	u := filename
	if baseURL != "" {
		_, file := filepath.Split(filename)
		var err error
		if u, err = urlJoin(baseURL, file); err != nil {
			u = path.Join(baseURL, file)
		}
	}
	i.Entries[md.Name] = append(i.Entries[md.Name], &ChartVersion{
		URLs:     []string{u},
		Metadata: md,
		Digest:   digest,
		Created:  time.Now(),
	})
	return nil
}

// SortEntries puts each chart's entries in descending version order, as
// helm does: newest first, versions that do not parse last.
func (i *IndexFile) SortEntries() {
	for _, cvs := range i.Entries {
		sortNewestFirst(len(cvs), func(k int) string { return cvs[k].Version }, cvs.Swap)
	}
}

// sortNewestFirst sorts n items as SortEntries sorts entries, given each
// one's version and a swap. Each version is parsed once, not at every
// comparison: the comparisons, and so the order, are those of
// ChartVersions.Less.
func sortNewestFirst(n int, version func(int) string, swap func(i, j int)) {
	p := parsedVersions{make([]*semver.Version, n), swap}
	for k := range n {
		p.v[k], _ = semver.NewVersion(version(k)) // nil: does not parse
	}
	sort.Sort(sort.Reverse(p))
}

// parsedVersions is items with their versions parsed.
type parsedVersions struct {
	v    []*semver.Version
	swap func(i, j int)
}

func (p parsedVersions) Len() int { return len(p.v) }
func (p parsedVersions) Swap(i, j int) {
	p.swap(i, j)
	p.v[i], p.v[j] = p.v[j], p.v[i]
}

// Less is ChartVersions.Less.
func (p parsedVersions) Less(a, b int) bool {
	switch {
	case p.v[a] == nil:
		return true
	case p.v[b] == nil:
		return false
	}
	return p.v[a].LessThan(p.v[b])
}

// urlJoin joins file to the path of baseURL, or fails if baseURL does not
// parse (helm's internal urlutil.URLJoin).
func urlJoin(baseURL, file string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return "", err
	}
	u.Path = path.Join(u.Path, file)
	return u.String(), nil
}
