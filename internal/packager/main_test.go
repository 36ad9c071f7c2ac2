package packager_test

import (
	"os"
	"testing"

	"github.com/chartsync/chartsync/internal/packager/lintworker"
)

// TestMain makes the test binary its own lint helper. It is an external
// test package because lintworker imports packager.
func TestMain(m *testing.M) {
	lintworker.ServeSelf()
	os.Exit(m.Run())
}
