// Command chartsync publishes the Helm charts of a git repository to a
// chart repository on a local directory, S3 or OpenStack Swift.
package main

import "os"

func main() { os.Exit(run(os.Args[1:])) }
