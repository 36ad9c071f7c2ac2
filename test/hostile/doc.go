// Package hostile holds chartsync's hostile-input tests (issue 9): each test
// commits what an attacker could to a git repository made in t.TempDir(),
// runs the built chartsync binary (`run --once`) against it with a local
// store, and asserts the exact outcome: which chart fails with which reason,
// what every other chart does, and what is in the store and the index
// afterwards. Cases about cost also assert generous time and memory bounds
// and log the measured figures.
//
// The harness (harness_test.go) is shared by every case: newRepo, newSite,
// site.run, result.chart, site.index, site.stored.
package hostile
