//go:build !unix

package httpserver

// fileLimit returns 0 (unknown): only unix systems have RLIMIT_NOFILE.
func fileLimit() uint64 { return 0 }
