package lintworker

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chartsync/chartsync/internal/packager"
)

// tgz returns a chart package of files (path under the chart directory ->
// content).
func tgz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "foo/" + name, Mode: 0o644, Size: int64(len(content))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestWork: the worker writes helm's findings, paths relative to the
// chart, as a Verdict; a package it cannot read is exit status 3.
func TestWork(t *testing.T) {
	data := tgz(t, map[string]string{
		"Chart.yaml":            "apiVersion: v2\nname: foo\nversion: 1.0.0\n",
		"templates/broken.yaml": "kind: [\n",
	})
	var out, errOut bytes.Buffer
	if code := work("foo", "", bytes.NewReader(data), &out, &errOut); code != 0 {
		t.Fatalf("work = %d, stderr %q", code, errOut.String())
	}
	var v packager.Verdict
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Errors) == 0 || !strings.HasPrefix(v.Errors[0], "[ERROR] templates/broken.yaml") || strings.Contains(strings.Join(v.Errors, ""), "chartsync-lint-") {
		t.Errorf("errors %q, want one for templates/broken.yaml without the temporary directory", v.Errors)
	}
	if code := work("foo", "", strings.NewReader("not a package"), &out, &errOut); code != 3 {
		t.Errorf("work on garbage = %d, want 3", code)
	}
}

// TestMainNotStarted: run by hand, the helper says what it is for.
func TestMainNotStarted(t *testing.T) {
	t.Setenv(packager.LintWorkerChart, "")
	if code := Main(); code != 2 {
		t.Errorf("Main = %d, want 2", code)
	}
}
