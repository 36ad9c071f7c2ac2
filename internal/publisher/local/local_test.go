package local

import (
	"context"
	"testing"

	"github.com/chartsync/chartsync/internal/publisher/store"
	"github.com/chartsync/chartsync/internal/publisher/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := New(context.Background(), Config{Path: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
