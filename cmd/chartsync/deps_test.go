package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/chartsync/chartsync/internal/testenv"
)

// TestNoHelmLinter: chartsync does not link helm's linter, chart utilities
// or template engine (the lint helper, chartsync-lint, does), nor any
// Kubernetes package, which they and helm's pkg/repo bring: their size and
// init functions cost every chartsync process tens of megabytes of
// resident memory.
func TestNoHelmLinter(t *testing.T) {
	out, err := exec.Command(testenv.Tool(t, "go"), "list", "-deps", "-f", "{{.ImportPath}}", "github.com/chartsync/chartsync/cmd/chartsync").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, banned := range []string{"helm.sh/helm/v3/pkg/lint", "helm.sh/helm/v3/pkg/chartutil", "helm.sh/helm/v3/pkg/engine", "k8s.io"} {
			if p == banned || strings.HasPrefix(p, banned+"/") {
				t.Errorf("chartsync imports %s", p)
			}
		}
	}
}
