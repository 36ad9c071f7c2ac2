package local

import (
	"os"
	"syscall"
)

// lockDir takes an exclusive flock(2) on a directory, waiting for it. Locking
// the directory itself leaves no lock file in the served repository.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
