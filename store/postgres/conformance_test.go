package postgres

import (
	"testing"

	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/storetest"
)

// TestConformance runs the engine-neutral suite (store/storetest) on
// PostgreSQL, each of its tests on a fresh database of the package's
// server (internal/pgtest); this package's other tests check what is
// PostgreSQL's own, several nodes on one database among it.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB) store.Store {
		return openTest(t, pg.DSN(t))
	})
}
