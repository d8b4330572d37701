package queue

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// gatedStore holds the outcome of the first attempt until the transport has
// received a second message, and counts the outcomes written.
type gatedStore struct {
	store.Store
	second   chan struct{} // closed when the second message is sent
	finished atomic.Int64
	waited   atomic.Bool // the first outcome saw the second message arrive
}

func (g *gatedStore) FinishAttempt(ctx context.Context, key store.RecipientKey, res store.AttemptResult) (bool, error) {
	if g.finished.Add(1) == 1 {
		select {
		case <-g.second:
			g.waited.Store(true)
		case <-time.After(5 * time.Second): // sequential writing: never comes
		}
	}
	return g.Store.FinishAttempt(ctx, key, res)
}

// countingTransport is one route whose connections accept everything; it
// closes second when the second message arrives.
type countingTransport struct {
	sent   atomic.Int64
	second chan struct{}
}

func (c *countingTransport) Route(string) string { return "relay" }
func (c *countingTransport) Open(context.Context, string) (Conn, error) {
	return countingConn{c}, nil
}

type countingConn struct{ t *countingTransport }

func (c countingConn) Send(context.Context, string, string, []byte) error {
	if c.t.sent.Add(1) == 2 {
		close(c.t.second)
	}
	return nil
}
func (c countingConn) Close() error { return nil }

// TestConnectionSendsWhileOutcomesAreWritten: on one connection, the next
// message goes out while the outcome of the previous one is still being
// written (issue 8: the queue fell behind submission when each send waited
// for the store), and every outcome is written before the recipients leave
// the worker's hands: all end delivered, each sent once.
func TestConnectionSendsWhileOutcomesAreWritten(t *testing.T) {
	second := make(chan struct{})
	s := &gatedStore{Store: openStore(t), second: second}
	tr := &countingTransport{second: second}
	for i := range 5 {
		queueReply(t, s, i+1, "customer@example.com")
	}
	w := &Worker{Store: s, Transport: tr, Keys: testKeys, Retry: []time.Duration{time.Minute}, GiveUpAfter: time.Hour,
		MaxConnections: 1, MaxPerRoute: 1, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for s.finished.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if !s.waited.Load() {
		t.Error("the second message waited for the first one's outcome to be written")
	}
	if n := tr.sent.Load(); n != 5 {
		t.Errorf("%d messages sent, want 5 (each once)", n)
	}
	due, err := s.Store.DueRecipients(context.Background(), time.Now().Add(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 0 {
		t.Errorf("%d recipients still queued after every send succeeded", len(due))
	}
}
