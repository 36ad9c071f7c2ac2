package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The files in contrib/ and docs/ that name chartsync's metrics.
const (
	alertsFile     = "contrib/prometheus/chartsync-alerts.yml"
	alertsTestFile = "contrib/prometheus/chartsync-alerts_test.yml"
	dashboardFile  = "contrib/grafana/chartsync.json"
	docsFile       = "docs/metrics.md"
)

func TestContribAlertRules(t *testing.T) {
	root := moduleRoot(t)
	pt := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", filepath.Join(root, alertsFile)},
		{"test", "rules", filepath.Join(root, alertsTestFile)},
	} {
		out, err := exec.Command(pt, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// dashboard is the part of a Grafana dashboard model the test checks.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
}

func TestContribDashboard(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(moduleRoot(t), dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q, title %q: both are needed", d.UID, d.Title)
	}
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			hasDS = true
		}
	}
	if !hasDS {
		t.Error("dashboard has no Prometheus datasource variable named datasource")
	}

	// Every query must be valid PromQL: promtool checks them as recording
	// rules, with Grafana's variables replaced by plausible values.
	vars := regexp.MustCompile(`\$\{?(\w+)\}?`)
	subst := map[string]string{"__rate_interval": "5m", "__range": "1h", "__interval": "1m"}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	ids := map[int]bool{}
	queries := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v out of the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the datasource variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q query %s does not use the datasource variable", p.Title, tg.RefID)
			}
			expr := vars.ReplaceAllStringFunc(tg.Expr, func(v string) string {
				name := strings.Trim(v, "${}")
				if s, ok := subst[name]; ok {
					return s
				}
				return ".+"
			})
			queries++
			fmt.Fprintf(&rules, "      - record: dashboard_panel_%d_%s\n        expr: %s\n", p.ID, tg.RefID, yamlQuote(expr))
		}
	}
	if queries == 0 {
		t.Fatal("dashboard has no queries")
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool(t), "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("dashboard queries are not valid PromQL: %v\n%s", err, out)
	}
}

// yamlQuote quotes s as a YAML double-quoted scalar (JSON strings are).
func yamlQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// exposedNames returns every sample name chartsync exposes once each vector
// has a series: metric family names plus histograms' _bucket, _sum, _count.
func exposedNames(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	touchAll(New(reg, "v", "r"))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[mf.GetName()+s] = true
			}
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\bchartsync_[a-zA-Z0-9_]+`)

func TestContribMetricNamesExist(t *testing.T) {
	names := exposedNames(t)
	root := moduleRoot(t)
	for _, f := range []string{dashboardFile, alertsFile, alertsTestFile, docsFile} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		found := metricName.FindAllString(string(data), -1)
		if len(found) == 0 {
			t.Errorf("%s names no chartsync metric", f)
		}
		for _, n := range found {
			if !names[n] {
				t.Errorf("%s uses %s, which chartsync does not expose", f, n)
			}
		}
	}
}

// TestDocsCoverEveryMetric checks docs/metrics.md has a section for every
// metric family chartsync exposes.
func TestDocsCoverEveryMetric(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(moduleRoot(t), docsFile))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	touchAll(New(reg, "v", "r"))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, mf := range mfs {
		if !strings.Contains(string(data), "`"+mf.GetName()+"`") {
			missing = append(missing, mf.GetName())
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%s does not document: %s", docsFile, strings.Join(missing, ", "))
	}
}
