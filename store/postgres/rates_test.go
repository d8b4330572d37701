package postgres

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRatesSharedByNodes: the per-sender quota holds across nodes
// (DESIGN.md §8, §15): two nodes on one database, each with takers at
// once for one sender, grant no more than the limit together, and each
// sees the other's counts.
func TestRatesSharedByNodes(t *testing.T) {
	dsn := pg.DSN(t)
	nodes := []*Store{openTest(t, dsn), openTest(t, dsn)}
	var granted atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			_, ok, err := nodes[i%2].TakeRate(t.Context(), "sender@example.com", at(i), time.Hour, 6)
			if err != nil {
				t.Error(err)
			}
			if ok {
				granted.Add(1)
			}
		})
	}
	wg.Wait()
	if n := granted.Load(); n != 6 {
		t.Errorf("two nodes granted %d takes together, want the limit, 6", n)
	}
	for i, s := range nodes {
		if n, err := s.CountRate(t.Context(), "sender@example.com", at(100), time.Hour); err != nil || n != 6 {
			t.Errorf("node %d counts %d, %v; want 6", i, n, err)
		}
	}
}
