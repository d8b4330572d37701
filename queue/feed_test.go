package queue

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// feedStore hands out the store's subscriptions and keeps them, so that a
// test can look at what reached the worker's.
type feedStore struct {
	store.Store
	mu   sync.Mutex
	subs []*store.Subscription
}

func (f *feedStore) Subscribe(filter store.Filter) *store.Subscription {
	s := f.Store.Subscribe(filter)
	f.mu.Lock()
	f.subs = append(f.subs, s)
	f.mu.Unlock()
	return s
}

// subscribed waits until the worker subscribed and returns its
// subscription.
func (f *feedStore) subscribed(t *testing.T) *store.Subscription {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		f.mu.Lock()
		subs := f.subs
		f.mu.Unlock()
		n := len(subs)
		if n == 1 {
			return subs[0]
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("the worker made %d subscriptions, want 1", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWorkerWakesOnlyForTheQueue: the delivery worker follows the queue's
// changes (DESIGN.md §13), not every message stored: an inbound message
// does not reach its subscription, a queued reply does and is delivered.
func TestWorkerWakesOnlyForTheQueue(t *testing.T) {
	f := startFakeSMTP(t)
	fs := &feedStore{Store: openStore(t)}
	runWorker(t, fs, &RelayTransport{Hostname: "sg.test", Relay: f.Addr}, time.Hour, time.Hour)
	sub := fs.subscribed(t)
	if got := sub.Filter(); !got.Queue || got.All || len(got.Inboxes) > 0 || got.Agent != "" {
		t.Fatalf("the worker subscribed to %+v, want the queue's changes", got)
	}
	_, err := fs.AddInbound(context.Background(), store.Inbound{Inbox: "support@example.com", Owner: "c@example.com", Subject: "Hi",
		Sender: "c@example.com", MessageIDHeader: "in1@example.com", Raw: rawMessage(1), Received: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if got, all := sub.Take(); got != nil || all { // the worker never takes: what reached it is there
		t.Fatalf("an inbound message reached the worker: %+v (all %v)", got, all)
	}
	queueReply(t, fs, 2, "customer@example.com")
	if got, _ := sub.Take(); len(got) != 1 || !got[0].Queue {
		t.Fatalf("a queued reply reached the worker as %+v, want one Queue change", got)
	}
	waitState(t, fs, map[string]store.RecipientState{"customer@example.com": store.RecipientDelivered})
}
