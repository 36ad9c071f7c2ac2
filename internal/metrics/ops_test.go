package metrics

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// seriesOf returns the repository label values of every series gathered
// from reg, by metric name.
func seriesOf(t *testing.T, reg *prometheus.Registry) map[string][]string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "repository" {
					out[mf.GetName()] = append(out[mf.GetName()], l.GetValue())
				}
			}
		}
	}
	return out
}

// Issue 13 point 5: a repository removed by a reload loses every series,
// even one set to a non-zero value; the kept repository keeps its values.
func TestForgetRepositoriesDeletesOnlyRemovedOnes(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "v", "r")
	for _, r := range []string{"stable", "old"} {
		m.InitRepository(r)
		m.ModifiedPackages.WithLabelValues(r).Set(2)
		m.ChartsFailed.WithLabelValues(r, ReasonLint).Add(3)
	}
	before := seriesOf(t, reg)
	if len(before) == 0 {
		t.Fatal("no per-repository series")
	}
	m.ForgetRepositories([]string{"stable", "old"}, []string{"stable", "new"})
	after := seriesOf(t, reg)
	for name, repos := range before {
		if slices.Contains(after[name], "old") {
			t.Errorf("%s{repository=\"old\"} survived the reload", name)
		}
		if slices.Contains(repos, "stable") && !slices.Contains(after[name], "stable") {
			t.Errorf("%s{repository=\"stable\"} was deleted", name)
		}
	}
	if v := gaugeValue(t, m.ModifiedPackages.WithLabelValues("stable")); v != 2 {
		t.Errorf("stable's modified packages = %v after the reload, want 2", v)
	}
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var pb dto.Metric
	if err := g.Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.GetGauge().GetValue()
}

// Issue 13 point 5: the packager's failure reasons are label values of
// chartsync_charts_failed_total. The packager defines them (without
// importing this package, which would link the Helm SDK into every user of
// metrics); this test reads its source, so that a reason added there and
// not here fails.
func TestReasonsCoverThePackagersReasons(t *testing.T) {
	files, err := filepath.Glob("../packager/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("packager sources: %v", err)
	}
	var found []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok || vs.Type == nil || len(vs.Values) != len(vs.Names) {
				return true
			}
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Reason" {
				return true
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					found = append(found, s)
				}
			}
			return true
		})
	}
	if len(found) < 6 {
		t.Fatalf("found %d packager reasons (%v): the parser missed them", len(found), found)
	}
	for _, r := range found {
		if !slices.Contains(Reasons, r) {
			t.Errorf("packager reason %q is not in metrics.Reasons", r)
		}
	}
}
