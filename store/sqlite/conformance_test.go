package sqlite_test

import (
	"testing"

	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/sqlite"
	"github.com/supportgate/supportgate/store/storetest"
)

// TestConformance runs the engine-neutral suite (store/storetest) on SQLite;
// this package's other tests check what is SQLite's own.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB) store.Store {
		s, err := sqlite.Open(t.Context(), t.TempDir())
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
