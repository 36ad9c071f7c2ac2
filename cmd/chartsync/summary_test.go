package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chartsync/chartsync/internal/syncer"
)

// Issue 12: the summary of a repository whose index lists 20,000 packages
// the store does not have is a few short lines; plan --output json keeps
// the full list.
func TestSummaryOfTwentyThousandMissing(t *testing.T) {
	var missing []string
	for i := range 20000 {
		missing = append(missing, fmt.Sprintf("c%03d-1.0.%d.tgz", i%400, i/400))
	}
	var charts []syncer.ChartResult
	for i := range 200 {
		charts = append(charts, syncer.ChartResult{Repository: "r", Name: fmt.Sprintf("n%d", i), Version: "1.0.0", Dir: "charts/x", Outcome: syncer.Published})
	}
	res := &syncer.Result{Commit: "abc", Charts: charts,
		Repos: []syncer.RepoResult{{Name: "r", Entries: 20200, Missing: missing}}}

	var out bytes.Buffer
	o := &options{stdout: &out}
	o.summary(res, false)
	text := out.String()
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) > maxSummaryLines+6 || len(text) > 8<<10 {
		t.Fatalf("summary is %d lines, %d bytes:\n%s", len(lines), len(text), text)
	}
	want := "  20,000 index entries without a stored package: c000-1.0.0.tgz, c001-1.0.0.tgz, c002-1.0.0.tgz, c003-1.0.0.tgz, c004-1.0.0.tgz, … and 19,995 more\n"
	if !strings.Contains(text, want) {
		t.Errorf("summary lacks %q:\n%s", want, text)
	}
	if !strings.Contains(text, "… and 150 more charts") || !strings.Contains(text, "published 200,") {
		t.Errorf("summary does not count the chart lines it leaves out:\n%s", text)
	}

	out.Reset()
	if err := writeJSON(&out, res); err != nil {
		t.Fatal(err)
	}
	var got jsonResult
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Repos) != 1 || len(got.Repos[0].Missing) != 20000 || got.Repos[0].Missing[19999] != missing[19999] || len(got.Charts) != 200 {
		t.Errorf("json result does not hold every list in full: %d repos", len(got.Repos))
	}
}
