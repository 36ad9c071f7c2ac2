package publisher

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/repo"
	sigsyaml "sigs.k8s.io/yaml"
)

// Helm's index types are the reference: these tests hold chartsync's own
// to them field for field, byte for byte and order for order.

// helmTypes maps each of chartsync's index types to helm's.
var helmTypes = map[reflect.Type]reflect.Type{
	reflect.TypeFor[IndexFile]():     reflect.TypeFor[repo.IndexFile](),
	reflect.TypeFor[ChartVersion]():  reflect.TypeFor[repo.ChartVersion](),
	reflect.TypeFor[ChartVersions](): reflect.TypeFor[repo.ChartVersions](),
}

// sameType reports whether ours is theirs, or is built the same way from
// types that helmTypes pairs.
func sameType(ours, theirs reflect.Type) bool {
	if ours == theirs || helmTypes[ours] == theirs {
		return true
	}
	if ours.Kind() != theirs.Kind() || ours.Name() != "" || theirs.Name() != "" {
		return false
	}
	switch ours.Kind() {
	case reflect.Map:
		return sameType(ours.Key(), theirs.Key()) && sameType(ours.Elem(), theirs.Elem())
	case reflect.Pointer, reflect.Slice:
		return sameType(ours.Elem(), theirs.Elem())
	}
	return false
}

func TestIndexTypesHaveHelmsFields(t *testing.T) {
	for ours, theirs := range helmTypes {
		if ours.Kind() != theirs.Kind() {
			t.Errorf("%s is a %s, helm's %s a %s", ours, ours.Kind(), theirs, theirs.Kind())
			continue
		}
		if ours.Kind() != reflect.Struct {
			if !sameType(ours.Elem(), theirs.Elem()) {
				t.Errorf("%s holds %s, helm's %s", ours, ours.Elem(), theirs.Elem())
			}
			continue
		}
		if ours.NumField() != theirs.NumField() {
			t.Errorf("%s has %d fields, helm's %d", ours, ours.NumField(), theirs.NumField())
		}
		for i := range min(ours.NumField(), theirs.NumField()) {
			o, h := ours.Field(i), theirs.Field(i)
			if o.Name != h.Name || o.Tag != h.Tag || o.Anonymous != h.Anonymous || !sameType(o.Type, h.Type) {
				t.Errorf("%s field %d is %s %s `%s` (embedded %t), helm's %s %s `%s` (embedded %t)",
					ours, i, o.Name, o.Type, o.Tag, o.Anonymous, h.Name, h.Type, h.Tag, h.Anonymous)
			}
		}
	}
}

// helmVersion returns a ChartVersion with every field set, Metadata's and
// those of its maintainers and dependencies included.
func helmVersion(name, version string) *repo.ChartVersion {
	return &repo.ChartVersion{
		Metadata: &chart.Metadata{
			Name: name, Home: "https://example.org/" + name, Sources: []string{"https://git.example.org/" + name},
			Version: version, Description: "multi\nline: description", Keywords: []string{"on", "1.0", "y"},
			Maintainers: []*chart.Maintainer{{Name: "Ann", Email: "ann@example.org", URL: "https://example.org/ann"}},
			Icon:        "https://example.org/icon.png", APIVersion: "v2", Condition: name + ".enabled", Tags: "a,b",
			AppVersion: "01.10", Deprecated: true, Annotations: map[string]string{"z": "1", "a": "yes", "m": "null"},
			KubeVersion: ">=1.20.0-0",
			Dependencies: []*chart.Dependency{{
				Name: "dep", Version: "~1.2.3", Repository: "https://charts.example.org", Condition: "dep.enabled",
				Tags: []string{"t"}, Enabled: true, ImportValues: []any{"data", map[string]any{"child": "a", "parent": "b"}},
				Alias: "dep-alias",
			}},
			Type: "application",
		},
		URLs:                    []string{"https://charts.example.org/" + name + "-" + version + ".tgz", "mirror/" + name + ".tgz"},
		Created:                 time.Date(2024, 2, 29, 12, 30, 45, 123456789, time.FixedZone("", 5*3600+1800)),
		Removed:                 true,
		Digest:                  "000123",
		ChecksumDeprecated:      "sha1",
		EngineDeprecated:        "gotpl",
		TillerVersionDeprecated: ">=2.0.0",
		URLDeprecated:           "https://old.example.org/" + name + ".tgz",
	}
}

// ours returns cv as chartsync's ChartVersion, sharing its Metadata.
func ours(cv *repo.ChartVersion) *ChartVersion {
	return &ChartVersion{Metadata: cv.Metadata, URLs: cv.URLs, Created: cv.Created, Removed: cv.Removed,
		Digest: cv.Digest, ChecksumDeprecated: cv.ChecksumDeprecated, EngineDeprecated: cv.EngineDeprecated,
		TillerVersionDeprecated: cv.TillerVersionDeprecated, URLDeprecated: cv.URLDeprecated}
}

// theirs returns cv as helm's ChartVersion, sharing its Metadata.
func theirs(cv *ChartVersion) *repo.ChartVersion {
	return &repo.ChartVersion{Metadata: cv.Metadata, URLs: cv.URLs, Created: cv.Created, Removed: cv.Removed,
		Digest: cv.Digest, ChecksumDeprecated: cv.ChecksumDeprecated, EngineDeprecated: cv.EngineDeprecated,
		TillerVersionDeprecated: cv.TillerVersionDeprecated, URLDeprecated: cv.URLDeprecated}
}

// unset returns the paths of the zero-valued fields below v.
func unset(v reflect.Value, path string) []string {
	if v.IsZero() {
		return []string{path}
	}
	var out []string
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		out = unset(v.Elem(), path)
	case reflect.Slice:
		for i := range v.Len() {
			out = append(out, unset(v.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			break
		}
		for i := range v.NumField() {
			out = append(out, unset(v.Field(i), path+"."+v.Type().Field(i).Name)...)
		}
	}
	return out
}

func TestIndexTypesMarshalAsHelms(t *testing.T) {
	h := helmVersion("on", "1.2.3-rc.1+b7")
	if zero := unset(reflect.ValueOf(h), "ChartVersion"); len(zero) > 0 {
		t.Fatalf("fixture leaves fields unset: %v", zero)
	}
	helmIndex := &repo.IndexFile{
		ServerInfo: map[string]any{"contextPath": "/charts", "n": 1.5, "list": []any{"a", true}},
		APIVersion: "v1",
		Generated:  time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
		Entries: map[string]repo.ChartVersions{
			"on": {h, helmVersion("on", "1.0.0")},
			"b":  {helmVersion("b", "0.1.0")},
			"c":  {},
		},
		PublicKeys:  []string{"key1", "key2"},
		Annotations: map[string]string{"x": "1", "y": "true"},
	}
	if zero := unset(reflect.ValueOf(helmIndex), "IndexFile"); len(zero) > 0 {
		t.Fatalf("fixture leaves fields unset: %v", zero)
	}
	ourIndex := &IndexFile{ServerInfo: helmIndex.ServerInfo, APIVersion: helmIndex.APIVersion,
		Generated: helmIndex.Generated, Entries: map[string]ChartVersions{},
		PublicKeys: helmIndex.PublicKeys, Annotations: helmIndex.Annotations}
	for name, cvs := range helmIndex.Entries {
		ourIndex.Entries[name] = ChartVersions{}
		for _, cv := range cvs {
			ourIndex.Entries[name] = append(ourIndex.Entries[name], ours(cv))
		}
	}
	now := time.Now()
	newIndex := NewIndexFile()
	newHelm := repo.NewIndexFile()
	newIndex.Generated, newHelm.Generated = now, now

	marshalers := map[string]func(any) ([]byte, error){
		"yaml": sigsyaml.Marshal,
		"json": json.Marshal,
	}
	values := []struct {
		name       string
		ours, helm any
	}{
		{"ChartVersion", ours(h), h},
		{"empty ChartVersion", &ChartVersion{}, &repo.ChartVersion{}},
		{"IndexFile", ourIndex, helmIndex},
		{"empty IndexFile", &IndexFile{}, &repo.IndexFile{}},
		{"NewIndexFile", newIndex, newHelm},
	}
	for _, v := range values {
		for format, marshal := range marshalers {
			want, err := marshal(v.helm)
			if err != nil {
				t.Fatal(err)
			}
			got, err := marshal(v.ours)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("%s as %s:\n%s\nhelm's:\n%s", v.name, format, got, want)
			}
		}
	}

	// Read back, as helm reads (strictly, for YAML), and written again.
	for format, marshal := range marshalers {
		want, err := marshal(helmIndex)
		if err != nil {
			t.Fatal(err)
		}
		var back IndexFile
		if format == "yaml" {
			err = sigsyaml.UnmarshalStrict(want, &back)
		} else {
			err = json.Unmarshal(want, &back)
		}
		if err != nil {
			t.Fatalf("%s: read helm's index: %v", format, err)
		}
		got, err := marshal(&back)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: read back and written:\n%s\nhelm's:\n%s", format, got, want)
		}
	}
}

func TestChartVersionsSortAsHelms(t *testing.T) {
	pool := []string{
		"1.0.0", "1.0.0", "v1.0.0", "1.0", "1", "v1", "1.0.0+build.1", "1.0.0+build.2", "1.0.0+a",
		"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
		"1.0.0-rc.1", "1.0.0-rc.1+build", "1.0.0-0", "1.0.0-01", "2.0.0", "v2.0.0-rc.1", "0.0.1", "0.1.0",
		"10.0.0", "1.10.0", "1.9.0", "1.2.3.4", "", "latest", "not-a-version", "x.y.z", "v", "1.0.0-",
		"01.0.0", " 1.0.0", "1.0.0 ", "V1.0.0",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	lists := [][]string{nil, {"1.0.0"}, {"bad", "1.0.0"}, {"bad", "worse"}, slices.Clone(pool)}
	for n := range 200 {
		l := make([]string, 1+n%80)
		for i := range l {
			l[i] = pool[rng.IntN(len(pool))]
		}
		lists = append(lists, l)
	}
	for _, versions := range lists {
		helmIndex, ourIndex := repo.NewIndexFile(), NewIndexFile()
		for i, v := range versions {
			// The digest tells equal versions apart.
			h := &repo.ChartVersion{Metadata: &chart.Metadata{Name: "c", Version: v}, Digest: fmt.Sprint(i)}
			helmIndex.Entries["c"] = append(helmIndex.Entries["c"], h)
			ourIndex.Entries["c"] = append(ourIndex.Entries["c"], ours(h))
		}
		helmIndex.SortEntries()
		ourIndex.SortEntries()
		var want, got []string
		for i := range versions {
			want = append(want, helmIndex.Entries["c"][i].Version+"#"+helmIndex.Entries["c"][i].Digest)
			got = append(got, ourIndex.Entries["c"][i].Version+"#"+ourIndex.Entries["c"][i].Digest)
		}
		if !slices.Equal(got, want) {
			t.Errorf("sorted %q:\n got %q\nhelm %q", versions, got, want)
		}
	}
}

func TestMustAddAsHelms(t *testing.T) {
	md := func(name, version, apiVersion string) *chart.Metadata {
		return &chart.Metadata{Name: name, Version: version, APIVersion: apiVersion, Description: "d"}
	}
	cases := []struct {
		name              string
		md                *chart.Metadata
		filename, baseURL string
		wantErr           bool
	}{
		{"base URL", md("a", "1.0.0", "v2"), "a-1.0.0.tgz", "https://charts.example.org", false},
		{"base URL with path and slash", md("a", "1.0.0", "v2"), "a-1.0.0.tgz", "https://charts.example.org/x/y/", false},
		{"base URL with query", md("a", "1.0.0", "v2"), "a-1.0.0.tgz", "https://charts.example.org/x?sig=1#f", false},
		{"relative base URL", md("a", "1.0.0", "v2"), "a-1.0.0.tgz", "charts/../x", false},
		{"base URL that does not parse", md("a", "1.0.0", "v2"), "a-1.0.0.tgz", "http://[::1/x", false},
		{"filename in a directory", md("a", "1.0.0", "v2"), "sub/dir/a-1.0.0.tgz", "https://charts.example.org", false},
		{"no base URL", md("a", "1.0.0", "v2"), "sub/a-1.0.0.tgz", "", false},
		{"escaped name", md("a", "1.0.0", "v2"), "a b%-1.0.0.tgz", "https://charts.example.org", false},
		{"no apiVersion", md("a", "1.0.0", ""), "a-1.0.0.tgz", "https://charts.example.org", false},
		{"no name", md("", "1.0.0", "v2"), "x.tgz", "", true},
		{"bad version", md("a", "one", "v2"), "a-one.tgz", "", true},
		{"bad name", md("../a", "1.0.0", "v2"), "a-1.0.0.tgz", "", true},
		{"bad type", &chart.Metadata{Name: "a", Version: "1.0.0", APIVersion: "v2", Type: "other"}, "a-1.0.0.tgz", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			helmIndex, ourIndex := repo.NewIndexFile(), NewIndexFile()
			// An entry already there: MustAdd appends after it.
			prev := helmVersion(tc.md.Name, "0.0.1")
			helmIndex.Entries[tc.md.Name] = repo.ChartVersions{prev}
			ourIndex.Entries[tc.md.Name] = ChartVersions{ours(prev)}
			helmMD, ourMD := *tc.md, *tc.md
			before := time.Now()
			helmErr := helmIndex.MustAdd(&helmMD, tc.filename, tc.baseURL, "sum")
			ourErr := ourIndex.MustAdd(&ourMD, tc.filename, tc.baseURL, "sum")
			after := time.Now()
			if (ourErr != nil) != tc.wantErr || fmt.Sprint(ourErr) != fmt.Sprint(helmErr) {
				t.Fatalf("error %v, helm's %v (want an error: %t)", ourErr, helmErr, tc.wantErr)
			}
			if !reflect.DeepEqual(ourMD, helmMD) {
				t.Errorf("metadata left as %+v, helm's %+v", ourMD, helmMD)
			}
			got := ourIndex.Entries[tc.md.Name]
			want := helmIndex.Entries[tc.md.Name]
			if len(got) != len(want) {
				t.Fatalf("%d entries, helm %d", len(got), len(want))
			}
			for i := range got {
				g, w := theirs(got[i]), want[i]
				if i == len(got)-1 && !tc.wantErr {
					if g.Created.Before(before) || g.Created.After(after) {
						t.Errorf("created %s, not between %s and %s", g.Created, before, after)
					}
					g.Created = w.Created
				}
				if !reflect.DeepEqual(g, w) {
					t.Errorf("entry %d is %+v, helm's %+v", i, g, w)
				}
			}
		})
	}

	t.Run("entries not initialized", func(t *testing.T) {
		m := md("a", "1.0.0", "v2")
		err := (&IndexFile{}).MustAdd(m, "a-1.0.0.tgz", "", "sum")
		helmErr := repo.IndexFile{}.MustAdd(m, "a-1.0.0.tgz", "", "sum")
		if err == nil || err.Error() != helmErr.Error() {
			t.Errorf("error %v, helm's %v", err, helmErr)
		}
	})
}

// TestPublisherDependencies: the publisher is light enough to publish a
// large index in little memory. Helm's pkg/repo (and through it
// Kubernetes' client packages) would set a floor of some 33 MiB resident;
// its index types are reproduced here instead.
func TestPublisherDependencies(t *testing.T) {
	const module = "github.com/chartsync/chartsync/"
	cases := []struct {
		pkgs      string
		forbidden func(dep string) bool
	}{
		{module + "internal/publisher/...", func(dep string) bool {
			return dep == "helm.sh/helm/v3/pkg/repo" || strings.HasPrefix(dep, "k8s.io/")
		}},
		{module + "cmd/chartsync", func(dep string) bool { return dep == "helm.sh/helm/v3/pkg/repo" }},
	}
	for _, tc := range cases {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", tc.pkgs).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", tc.pkgs, err)
		}
		for dep := range strings.FieldsSeq(string(out)) {
			if tc.forbidden(dep) {
				t.Errorf("%s depends on %s", tc.pkgs, dep)
			}
		}
	}
}
