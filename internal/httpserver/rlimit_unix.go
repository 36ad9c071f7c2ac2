//go:build unix

package httpserver

import "syscall"

// fileLimit returns the soft RLIMIT_NOFILE, or 0 if it cannot be read.
func fileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return r.Cur
}
