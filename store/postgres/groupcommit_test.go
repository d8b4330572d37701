package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// TestGroupCommitDuplicatesInOneBatch: messages waiting together share
// commits (groupcommit.go), and the same Message-ID twice among them, on
// one node or on two, is stored once: the later finds the earlier, in its
// batch or in the database (DESIGN.md §3 item 5).
func TestGroupCommitDuplicatesInOneBatch(t *testing.T) {
	const ids, copies = 40, 3
	dsn := pg.DSN(t)
	nodes := []*Store{openTest(t, dsn), openTest(t, dsn)}
	results := make([][]store.InboundResult, ids)
	for i := range results {
		results[i] = make([]store.InboundResult, copies)
	}
	var wg sync.WaitGroup
	errs := make(chan error, ids*copies)
	for i := range ids {
		for c := range copies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("gc%d@customer.example", i)
				res, err := nodes[(i+c)%len(nodes)].AddInbound(context.Background(), newInbound("support@example.test", id, i))
				if err != nil {
					errs <- err
					return
				}
				results[i][c] = res
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, rs := range results {
		stored := 0
		for _, r := range rs {
			if !r.Duplicate {
				stored++
			}
			if r.Message != rs[0].Message || r.Conversation != rs[0].Conversation {
				t.Errorf("message %d: copies answered with messages %d and %d", i, rs[0].Message, r.Message)
			}
		}
		if stored != 1 {
			t.Errorf("message %d stored %d times", i, stored)
		}
	}
	var n int
	if err := nodes[0].pool.QueryRow(context.Background(), `SELECT COUNT(*) FROM messages`).Scan(&n); err != nil || n != ids {
		t.Errorf("%d messages in the database (%v), want %d", n, err, ids)
	}
	var batches, batched int64
	for _, s := range nodes {
		batches, batched = batches+s.batches.Load(), batched+s.batched.Load()
	}
	t.Logf("%d messages in %d commits", batched, batches)
}
