package queue

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// countingStore counts how often the due queue is read.
type countingStore struct {
	store.Store
	dueReads atomic.Int64
}

func (c *countingStore) DueRecipients(ctx context.Context, now time.Time, limit int) ([]store.QueuedRecipient, error) {
	c.dueReads.Add(1)
	return c.Store.DueRecipients(ctx, now, limit)
}

// stuckTransport is one route whose connections accept every transaction
// only once release is closed.
type stuckTransport struct {
	release chan struct{}
	sent    atomic.Int64
}

func (s *stuckTransport) Route(string) string { return "relay" }
func (s *stuckTransport) Open(context.Context, string) (Conn, error) {
	return stuckConn{s}, nil
}

type stuckConn struct{ t *stuckTransport }

func (c stuckConn) Send(ctx context.Context, _, _ string, _ []byte) error {
	select {
	case <-c.t.release:
		c.t.sent.Add(1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (c stuckConn) Close() error { return nil }

// TestBlockedWorkerDoesNotRereadQueueAtEachChange: while every connection
// the due recipients could use is busy, enqueues (store changes) do not make
// the worker read the due queue again each time, nor does the past next
// attempt of the waiting recipients make it poll every 10 ms; a finished
// connection then lets the waiting recipients go at once.
func TestBlockedWorkerDoesNotRereadQueueAtEachChange(t *testing.T) {
	s := &countingStore{Store: openStore(t)}
	tr := &stuckTransport{release: make(chan struct{})}
	w := &Worker{Store: s, Transport: tr, Keys: testKeys, Retry: []time.Duration{time.Minute}, GiveUpAfter: time.Hour,
		MaxConnections: 1, MaxPerRoute: 1, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	queueReply(t, s, 1, "first@example.com")
	// The first recipient takes the only connection; wait until it is
	// claimed (it is no longer due).
	deadline := time.Now().Add(5 * time.Second)
	for {
		due, err := s.Store.DueRecipients(t.Context(), time.Now(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first recipient is never claimed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// 40 enqueues over ~400 ms while the connection is busy.
	const n = 40
	before := s.dueReads.Load()
	start := time.Now()
	for i := range n {
		queueReply(t, s, i+2, "waiting@example.com")
		time.Sleep(10 * time.Millisecond)
	}
	reads := s.dueReads.Load() - before
	// At most one read per blockedRecheck, and one for the first enqueue
	// (the worker was not yet blocked), with slack for a slow machine.
	if limit := int64(time.Since(start)/blockedRecheck) + 3; reads > limit {
		t.Errorf("the due queue was read %d times during %d enqueues in %s with the connection busy; want at most %d",
			reads, n, time.Since(start).Round(time.Millisecond), limit)
	}
	close(tr.release)
	deadline = time.Now().Add(10 * time.Second)
	for tr.sent.Load() < n+1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sent after the connection was freed", tr.sent.Load(), n+1)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
