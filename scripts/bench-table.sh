#!/bin/sh
# bench-table.sh reads `go test -bench` output of ./internal/bench on stdin,
# passes it through, and then prints the side-by-side table of
# docs/benchmarks.md: chartsync beside the git and helm CLIs doing the
# equivalent work. A benchmark that did not run shows as "-".
set -eu
awk '
function dur(ns) {
	if (ns == "") return "-"
	if (ns >= 1e9) return sprintf("%.2f s", ns / 1e9)
	return sprintf("%.1f ms", ns / 1e6)
}
function val(name, unit) { k = name SUBSEP unit; return (k in m) ? m[k] : "" }
function num(v) { return v == "" ? "-" : sprintf("%g", v) }
{ print }
/^Benchmark/ {
	name = $1
	sub(/-[0-9]+$/, "", name)
	sub(/^Benchmark/, "", name)
	for (i = 3; i < NF; i += 2) m[name, $(i + 1)] = $i
}
END {
	print ""
	print "| generated repository (10,000 commits, 100 charts) | chartsync | git / helm CLI |"
	print "|---|---:|---:|"
	printf "| no-op cycle, local store | %s, %s store requests | `git fetch` + `git rev-parse`: %s |\n", dur(val("NoopCycle", "ns/op")), num(val("NoopCycle", "store-requests/op")), dur(val("GitCLINoop", "ns/op"))
	printf "| no-op cycle, S3 (versitygw) | %s, %s store requests | |\n", dur(val("NoopCycleStores/s3", "ns/op")), num(val("NoopCycleStores/s3", "store-requests/op"))
	printf "| no-op cycle, Swift | %s, %s store requests | |\n", dur(val("NoopCycleStores/swift", "ns/op")), num(val("NoopCycleStores/swift", "store-requests/op"))
	printf "| no-op cycle, local store, index of %s KB (3,300 more versions) | %s, %s store requests | |\n", num(val("NoopCycleLargeIndex", "index-KB")), dur(val("NoopCycleLargeIndex", "ns/op")), num(val("NoopCycleLargeIndex", "store-requests/op"))
	printf "| no-op cycle without the last decisions, local | %s, %s store requests | |\n", dur(val("NoopCycleUndecided", "ns/op")), num(val("NoopCycleUndecided", "store-requests/op"))
	printf "| one bump commit -> in index.yaml, `POST /sync` to a running daemon | %s | |\n", dur(val("BumpPublishDaemon", "ns/op"))
	printf "| first cycle, `chartsync run --once` (clone, package, lint, publish 100 charts) | %s, peak RSS %s MB (packs %s MB) | |\n", dur(val("FirstCycleBinary", "ns/op")), num(val("FirstCycleBinary", "peak-RSS-MB")), num(val("FirstCycleBinary", "pack-MB"))
	printf "| package one chart (lint in a child process, not cached) | %s | `helm package` (no lint): %s |\n", dur(val("PackageChart/lint-child", "ns/op")), dur(val("HelmCLIPackageChart", "ns/op"))
	printf "| package one chart, lint verdict cached | %s | |\n", dur(val("PackageChart/lint-cached", "ns/op"))
}'
