package queue

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/sqlite"
)

var errSecondWrite = errors.New("injected: a second write")

// writeCounter is a LifecycleStore that passes the first write to the real
// store and fails every later one, as a store that breaks between two
// writes would. A lifecycle change made of two writes would be left half
// done; one made of one write is whole.
type writeCounter struct {
	s      *sqlite.Store
	writes int
	// breakEvents makes every event name a conversation that does not
	// exist, so that the write carrying it fails.
	breakEvents bool
}

func (w *writeCounter) write() error {
	w.writes++
	if w.writes > 1 {
		return errSecondWrite
	}
	return nil
}

func (w *writeCounter) event(ev store.Event) store.Event {
	if w.breakEvents {
		ev.Conversation = 999
	}
	return ev
}

func (w *writeCounter) MarkBounced(ctx context.Context, r store.RecipientKey, lastError string, now time.Time, ev store.Event) (bool, error) {
	if err := w.write(); err != nil {
		return false, err
	}
	return w.s.MarkBounced(ctx, r, lastError, now, w.event(ev))
}

func (w *writeCounter) RetryNow(ctx context.Context, queueID int64, now time.Time) (int, error) {
	if err := w.write(); err != nil {
		return 0, err
	}
	return w.s.RetryNow(ctx, queueID, now)
}

func (w *writeCounter) Drop(ctx context.Context, queueID int64, reason string, now time.Time, event func(store.QueuedRecipient) store.Event) ([]store.QueuedRecipient, error) {
	if err := w.write(); err != nil {
		return nil, err
	}
	return w.s.Drop(ctx, queueID, reason, now, func(r store.QueuedRecipient) store.Event { return w.event(event(r)) })
}

func (w *writeCounter) AddEvent(ctx context.Context, ev store.Event) (int64, error) {
	if err := w.write(); err != nil {
		return 0, err
	}
	return w.s.AddEvent(ctx, w.event(ev))
}

// lifecycleFixture is a store with one queued reply to two recipients, the
// first deferred once with a remote answer.
func lifecycleFixture(t *testing.T) (*sqlite.Store, []store.QueuedRecipient, time.Time) {
	t.Helper()
	ctx := context.Background()
	s := openStore(t)
	out := queueReply(t, s, 1, "a@customer.example", "b@customer.example")
	now := time.Now().Truncate(time.Millisecond)
	rs, err := s.MessageRecipients(ctx, out.Message)
	if err != nil || len(rs) != 2 {
		t.Fatalf("MessageRecipients = %+v, %v", rs, err)
	}
	if ok, err := s.BeginAttempt(ctx, rs[0].Key(), now, now.Add(time.Hour)); !ok || err != nil {
		t.Fatalf("BeginAttempt = %v, %v", ok, err)
	}
	if ok, err := s.FinishAttempt(ctx, rs[0].Key(), store.AttemptResult{State: store.RecipientQueued,
		LastError: "451 4.3.0 Try later", At: now}); !ok || err != nil {
		t.Fatalf("FinishAttempt = %v, %v", ok, err)
	}
	rs, _ = s.MessageRecipients(ctx, out.Message)
	return s, rs, now
}

// stateOf is the recipients' states and last errors, "addr=state" in address order.
func stateOf(t *testing.T, s *sqlite.Store, queueID int64) string {
	t.Helper()
	rs, err := s.QueueRecipients(context.Background(), queueID, false)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.Recipient+"="+string(r.State))
	}
	return strings.Join(out, " ")
}

// eventTypes is the types of a conversation's events, oldest first.
func eventTypes(t *testing.T, s *sqlite.Store, conv int64) []string {
	t.Helper()
	evs, err := s.Events(context.Background(), conv)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Type+": "+e.Text+"\n"+e.Detail)
	}
	return out
}

// TestLifecycleIsOneWriteWithItsEvents: each lifecycle change is one store
// write that carries its events: through a store whose second write fails,
// the state changes and the team's events are there, together.
func TestLifecycleIsOneWriteWithItsEvents(t *testing.T) {
	dsn := Report{Answer: "5.1.1 550 5.1.1 no such user", Detail: "Recipient: a@customer.example\nStatus: 5.1.1"}
	tests := []struct {
		name   string
		do     func(lc Lifecycle, rs []store.QueuedRecipient, now time.Time) error
		state  string
		events []string // substrings of the events, in order
	}{
		{"bounced", func(lc Lifecycle, rs []store.QueuedRecipient, now time.Time) error {
			changed, err := lc.Bounced(context.Background(), rs[0], dsn, now)
			if err == nil && !changed {
				err = errors.New("the first bounce changed nothing")
			}
			return err
		}, "a@customer.example=failed b@customer.example=queued",
			[]string{"delivery-failed: Delivery to a@customer.example failed (5.1.1 550 5.1.1 no such user)\nRecipient: a@customer.example\nStatus: 5.1.1"}},
		{"delayed", func(lc Lifecycle, rs []store.QueuedRecipient, now time.Time) error {
			return lc.Delayed(context.Background(), rs[1], Report{Detail: "Action: delayed"}, now)
		}, "a@customer.example=queued b@customer.example=queued",
			[]string{"delivery-delayed: Delivery to b@customer.example is delayed (a bounce without a status)\nAction: delayed"}},
		{"retry", func(lc Lifecycle, rs []store.QueuedRecipient, now time.Time) error {
			n, err := lc.RetryNow(context.Background(), rs[0].QueueID, now)
			if err == nil && n != 2 {
				err = errors.New("RetryNow did not count both recipients")
			}
			return err
		}, "a@customer.example=queued b@customer.example=queued", nil},
		{"drop", func(lc Lifecycle, rs []store.QueuedRecipient, now time.Time) error {
			dropped, err := lc.Drop(context.Background(), rs[0].QueueID, "dropped by an admin", now)
			if err == nil && len(dropped) != 2 {
				err = errors.New("Drop did not return both recipients")
			}
			return err
		}, "a@customer.example=dropped b@customer.example=dropped", []string{
			"delivery-dropped: Delivery to a@customer.example was dropped by an admin; it will not be sent\nRecipient: a@customer.example\nAttempts: 1\nLast remote answer: 451 4.3.0 Try later",
			"delivery-dropped: Delivery to b@customer.example was dropped by an admin; it will not be sent\nRecipient: b@customer.example\nAttempts: 0\nLast remote answer: none (never attempted)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rs, now := lifecycleFixture(t)
			w := &writeCounter{s: s}
			if err := tt.do(Lifecycle{Store: w}, rs, now); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if w.writes != 1 {
				t.Errorf("%s made %d writes, want 1", tt.name, w.writes)
			}
			if got := stateOf(t, s, rs[0].QueueID); got != tt.state {
				t.Errorf("state %q, want %q", got, tt.state)
			}
			if got := eventTypes(t, s, rs[0].Conversation); !slices.Equal(got, tt.events) {
				t.Errorf("events %q, want %q", got, tt.events)
			}
		})
	}
}

// TestLifecycleFailsWhole: when the event of a change cannot be written,
// the change is not made either, so that a retry (the MX answers 451 to a
// bounce; the admin runs drop again) records both.
func TestLifecycleFailsWhole(t *testing.T) {
	s, rs, now := lifecycleFixture(t)
	ctx := context.Background()
	before := stateOf(t, s, rs[0].QueueID)
	broken := Lifecycle{Store: &writeCounter{s: s, breakEvents: true}}
	if _, err := broken.Bounced(ctx, rs[0], Report{Answer: "550"}, now); err == nil {
		t.Error("a bounce whose event failed was recorded")
	}
	broken = Lifecycle{Store: &writeCounter{s: s, breakEvents: true}}
	if dropped, err := broken.Drop(ctx, rs[0].QueueID, "dropped", now); err == nil || len(dropped) != 0 {
		t.Errorf("a drop whose events failed = %+v, %v", dropped, err)
	}
	if got := stateOf(t, s, rs[0].QueueID); got != before {
		t.Errorf("state after the failed changes %q, want %q unchanged", got, before)
	}
	if evs := eventTypes(t, s, rs[0].Conversation); len(evs) != 0 {
		t.Errorf("events after the failed changes: %q", evs)
	}
	// Retried on a sound store: both land, once.
	lc := Lifecycle{Store: s}
	if changed, err := lc.Bounced(ctx, rs[0], Report{Answer: "550"}, now); !changed || err != nil {
		t.Fatalf("the retried bounce: %v, %v", changed, err)
	}
	if changed, err := lc.Bounced(ctx, rs[0], Report{Answer: "550"}, now); changed || err != nil {
		t.Errorf("a repeated bounce: %v, %v; want no change", changed, err)
	}
	if dropped, err := lc.Drop(ctx, rs[0].QueueID, "dropped", now); err != nil || len(dropped) != 1 || dropped[0].Recipient != "b@customer.example" {
		t.Errorf("the retried drop = %+v, %v; want b (a failed)", dropped, err)
	}
	if got := stateOf(t, s, rs[0].QueueID); got != "a@customer.example=failed b@customer.example=dropped" {
		t.Errorf("state %q", got)
	}
	if evs := eventTypes(t, s, rs[0].Conversation); len(evs) != 2 {
		t.Errorf("events %q, want one delivery-failed and one delivery-dropped", evs)
	}
}
