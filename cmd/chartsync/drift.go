package main

import (
	"fmt"
	"io"

	"github.com/chartsync/chartsync/internal/syncer"
)

// printDrift prints one line per drifted chart version of res (an indexed
// version whose build at the commit has another digest than the index's),
// at most maxSummaryLines per repository.
func printDrift(out io.Writer, res *syncer.Result) {
	for _, r := range res.Repos {
		for i, d := range r.Drifted {
			if i == maxSummaryLines {
				fmt.Fprintf(out, "DRIFT %s: … and %s more (see the log, or plan --output json)\n", r.Name, syncer.Count(len(r.Drifted)-i))
				break
			}
			why := "same files, other bytes: the indexed package was not built by chartsync"
			if d.ContentDiffers {
				why = "content changed without a version bump (content_differs)"
			}
			fmt.Fprintf(out, "DRIFT %s: %s %s (%s): index sha256 %s, build at %.12s sha256 %s: %s\n",
				r.Name, d.Name, d.Version, d.Dir, d.Indexed, res.Commit, d.Built, why)
		}
	}
}
