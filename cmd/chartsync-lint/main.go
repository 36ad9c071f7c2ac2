// Command chartsync-lint is chartsync's lint helper: chartsync starts it
// for each new package, bounded in time and memory, to run helm's linter
// (package lintworker). It is not meant to be run by hand.
package main

import (
	"os"

	"github.com/chartsync/chartsync/internal/packager/lintworker"
)

func main() { os.Exit(lintworker.Main()) }
