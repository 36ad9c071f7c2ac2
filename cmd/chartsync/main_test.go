package main

import (
	"os"
	"testing"

	"github.com/chartsync/chartsync/internal/packager/lintworker"
)

// TestMain makes the test binary its own lint helper.
func TestMain(m *testing.M) {
	lintworker.ServeSelf()
	os.Exit(m.Run())
}
