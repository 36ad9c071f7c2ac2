package packager

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"sigs.k8s.io/yaml"
)

// epoch is the modification time of every archive entry.
var epoch = time.Unix(0, 0).UTC()

// gzipExtra and gzipComment are the constant gzip header fields helm's
// chartutil.Save writes; keeping them makes our packages look like helm's.
var gzipExtra = []byte("+aHR0cHM6Ly95b3V0dS5iZS96OVV6MWljandyTQo=")

const gzipComment = "Helm"

// writeArchive packages ch the way chartutil.Save lays it out, but
// reproducibly: fixed times, modes and owners, sorted entries, a fixed gzip
// header and level. Identical chart content gives identical bytes.
func writeArchive(ch *chart.Chart) ([]byte, error) {
	if err := ch.Validate(); err != nil {
		return nil, fmt.Errorf("validate chart: %w", err)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, fmt.Errorf("create gzip writer: %w", err)
	}
	zw.Header = gzip.Header{Extra: gzipExtra, Comment: gzipComment, OS: 255}
	tw := tar.NewWriter(zw)
	if err := writeChart(tw, ch, ""); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("close gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// writeChart writes ch under prefix/<name>/ and its dependencies under
// prefix/<name>/charts/, in helm's order: Chart.yaml, Chart.lock (v2),
// values.yaml, values.schema.json, templates, files, dependencies; each group
// sorted by name.
func writeChart(tw *tar.Writer, ch *chart.Chart, prefix string) error {
	name := ch.Name()
	if name == "" || name != path.Base(name) || name == "." || name == ".." {
		return fmt.Errorf("write chart: invalid chart name %q", name)
	}
	base := path.Join(prefix, name)

	// Like helm, drop a v1 chart's dependencies from Chart.yaml: they live in
	// requirements.yaml, which is kept among the files.
	md := *ch.Metadata
	if md.APIVersion == chart.APIVersionV1 {
		md.Dependencies = nil
	}
	data, err := yaml.Marshal(&md)
	if err != nil {
		return fmt.Errorf("marshal Chart.yaml of %s: %w", name, err)
	}
	if err := writeFile(tw, path.Join(base, chartfileName), data); err != nil {
		return err
	}

	if md.APIVersion == chart.APIVersionV2 && ch.Lock != nil {
		data, err := yaml.Marshal(ch.Lock)
		if err != nil {
			return fmt.Errorf("marshal Chart.lock of %s: %w", name, err)
		}
		if err := writeFile(tw, path.Join(base, "Chart.lock"), data); err != nil {
			return err
		}
	}

	for _, f := range ch.Raw {
		if f.Name == "values.yaml" {
			if err := writeFile(tw, path.Join(base, "values.yaml"), f.Data); err != nil {
				return err
			}
			break
		}
	}

	if ch.Schema != nil {
		if !json.Valid(ch.Schema) {
			return fmt.Errorf("write chart %s: invalid JSON in values.schema.json", name)
		}
		if err := writeFile(tw, path.Join(base, "values.schema.json"), ch.Schema); err != nil {
			return err
		}
	}

	for _, group := range [][]*chart.File{ch.Templates, ch.Files} {
		files := append([]*chart.File(nil), group...)
		sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
		for _, f := range files {
			if err := writeFile(tw, path.Join(base, f.Name), f.Data); err != nil {
				return err
			}
		}
	}

	deps := append([]*chart.Chart(nil), ch.Dependencies()...)
	sort.Slice(deps, func(i, j int) bool {
		if deps[i].Name() != deps[j].Name() {
			return deps[i].Name() < deps[j].Name()
		}
		return deps[i].Metadata.Version < deps[j].Metadata.Version
	})
	for _, dep := range deps {
		if err := writeChart(tw, dep, path.Join(base, "charts")); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes one regular file entry with fixed metadata.
func writeFile(tw *tar.Writer, name string, data []byte) error {
	h := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     0o644,
		Size:     int64(len(data)),
		ModTime:  epoch,
		// Format left unset: the writer picks ustar, and PAX only for names
		// ustar cannot hold; both choices depend only on the name.
	}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// LoadArchive reads the chart metadata of a packaged chart (.tgz bytes), for
// example to rebuild an index entry from stored bytes. It returns an error if
// data is not a valid chart archive.
func LoadArchive(data []byte) (*chart.Metadata, error) {
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("load chart archive: %w", err)
	}
	if ch.Metadata == nil {
		return nil, errors.New("load chart archive: no Chart.yaml")
	}
	return ch.Metadata, nil
}
