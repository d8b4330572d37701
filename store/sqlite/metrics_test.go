package sqlite

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// TestObserveCommits: every group commit that stored something is
// reported with its duration; a failed write is not; nil stops the reports.
func TestObserveCommits(t *testing.T) {
	s := openTest(t, t.TempDir())
	// The SEARCH indexer's batches are commits too, at times of its own:
	// stopped, so that the counts are this test's writes.
	s.stopIndexer()
	var mu sync.Mutex
	var seen []time.Duration
	s.ObserveCommits(func(d time.Duration) {
		mu.Lock()
		seen = append(seen, d)
		mu.Unlock()
	})
	observed := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), seen...)
	}
	mustInbound(t, s, newInbound("support@example.com", "a@x", 1))
	// The report comes after the caller's answer: wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for len(observed()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no commit observed after a stored message")
		}
		time.Sleep(time.Millisecond)
	}
	if d := observed()[0]; d <= 0 || d > time.Minute {
		t.Errorf("commit observed as %v", d)
	}
	n := len(observed())
	// A write that fails stores nothing and is no commit.
	if err := s.UpdateConversation(context.Background(), store.StatusUpdate(999, store.StatusClosed)); err == nil {
		t.Fatal("SetStatus of a missing conversation succeeded")
	}
	// A later commit is observed, so the failed one would have been by now.
	mustInbound(t, s, newInbound("support@example.com", "b@x", 2))
	for len(observed()) < n+1 {
		if time.Now().After(deadline) {
			t.Fatal("the second commit was not observed")
		}
		time.Sleep(time.Millisecond)
	}
	if got := len(observed()); got != n+1 {
		t.Errorf("%d commits observed after one failed write and one stored message, want %d", got, n+1)
	}
	s.ObserveCommits(nil)
	mustInbound(t, s, newInbound("support@example.com", "c@x", 3))
	mustInbound(t, s, newInbound("support@example.com", "d@x", 4)) // the writer has finished the previous batch
	if got := len(observed()); got != n+1 {
		t.Errorf("%d commits observed after ObserveCommits(nil), want %d", got, n+1)
	}
}
