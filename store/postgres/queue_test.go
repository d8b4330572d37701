package postgres

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// queuedReply records a reply to rcpts in a new conversation and returns its
// queue rows.
func queuedReply(t *testing.T, s *Store, rcpts ...string) []store.QueuedRecipient {
	t.Helper()
	ctx := t.Context()
	conv, err := s.NextConversationNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := reply(mustReserve(t, s), conv, "alice@support.example.com", rcpts...)
	out.NewConversation = &store.NewConversation{Inbox: "support@example.com", Owner: rcpts[0], Subject: "Hello"}
	mustOutbound(t, s, out)
	rs, err := s.MessageRecipients(ctx, out.Message)
	if err != nil || len(rs) != len(rcpts) {
		t.Fatalf("MessageRecipients = %+v, %v", rs, err)
	}
	return rs
}

// TestBeginAttemptsClaimsOnlyDueQueuedRowsOnce: one commit claims a batch;
// a row already claimed (no longer due) or unknown is not claimed, a row is
// claimed once, and a claimed row counts the attempt and moves its next
// attempt to its retry time.
func TestBeginAttemptsClaimsOnlyDueQueuedRowsOnce(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := t.Context()
	rs := queuedReply(t, s, "a@customer.example", "b@customer.example")
	now := time.Now().Truncate(time.Millisecond)
	if ok, err := s.BeginAttempt(ctx, rs[1].Key(), now, now.Add(time.Hour)); !ok || err != nil {
		t.Fatalf("BeginAttempt(b) = %v, %v", ok, err)
	}
	claims := []store.Claim{{Key: rs[0].Key(), RetryAt: now.Add(time.Minute)}, {Key: rs[1].Key(), RetryAt: now.Add(time.Minute)},
		{Key: store.RecipientKey{QueueID: 999, Recipient: "x@y"}, RetryAt: now}}
	got, err := s.BeginAttempts(ctx, claims, now)
	if err != nil || len(got) != 3 || !got[0] || got[1] || got[2] {
		t.Fatalf("BeginAttempts = %v, %v; want [true false false] (b is claimed already, x does not exist)", got, err)
	}
	if got, err := s.BeginAttempts(ctx, claims[:1], now); err != nil || got[0] {
		t.Errorf("a second claim of a = %v, %v; want false", got, err)
	}
	after, err := s.QueueRecipients(ctx, rs[0].QueueID, false)
	if err != nil {
		t.Fatal(err)
	}
	if a := after[0]; a.Attempts != 1 || !a.NextAttempt.Equal(now.Add(time.Minute)) || a.State != store.RecipientQueued {
		t.Errorf("a after its claim: %+v", a)
	}
}

// TestDropReturnsTheLastAnswer: Drop ends the queued rows and returns each
// with the last error it had, which the team's event names.
func TestDropReturnsTheLastAnswer(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := t.Context()
	rs := queuedReply(t, s, "a@customer.example")
	now := time.Now().Truncate(time.Millisecond)
	if ok, err := s.BeginAttempt(ctx, rs[0].Key(), now, now.Add(time.Hour)); !ok || err != nil {
		t.Fatalf("BeginAttempt = %v, %v", ok, err)
	}
	if ok, err := s.FinishAttempt(ctx, rs[0].Key(), store.AttemptResult{State: store.RecipientQueued, LastError: "451 4.3.0 Try later", At: now}); !ok || err != nil {
		t.Fatalf("FinishAttempt = %v, %v", ok, err)
	}
	dropped, err := s.Drop(ctx, rs[0].QueueID, "dropped by an admin", now, nil)
	if err != nil || len(dropped) != 1 || dropped[0].State != store.RecipientDropped || dropped[0].LastError != "451 4.3.0 Try later" || dropped[0].Attempts != 1 {
		t.Fatalf("Drop = %+v, %v; want a dropped with its last answer", dropped, err)
	}
	after, err := s.QueueRecipients(ctx, rs[0].QueueID, false)
	if err != nil || after[0].State != store.RecipientDropped || after[0].LastError != "dropped by an admin" {
		t.Errorf("stored row %+v, %v", after, err)
	}
	if again, err := s.Drop(ctx, rs[0].QueueID, "again", now, nil); err != nil || len(again) != 0 {
		t.Errorf("a second Drop = %+v, %v; want nothing", again, err)
	}
}

// TestDropAndItsEventsAreOneWrite: the dropped rows and their events commit
// together (issue 15). When an event cannot be written, nothing is dropped,
// so a retried drop records both.
func TestDropAndItsEventsAreOneWrite(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := t.Context()
	rs := queuedReply(t, s, "a@customer.example", "b@customer.example")
	now := time.Now().Truncate(time.Millisecond)
	event := func(conv int64) func(store.QueuedRecipient) store.Event {
		return func(q store.QueuedRecipient) store.Event {
			if q.Recipient == "b@customer.example" {
				q.Conversation = conv // 999: the second event's write fails
			}
			return store.Event{Conversation: q.Conversation, Type: "delivery-dropped", Text: "Delivery to " + q.Recipient + " was dropped", At: now}
		}
	}
	if dropped, err := s.Drop(ctx, rs[0].QueueID, "dropped", now, event(999)); err == nil || len(dropped) != 0 {
		t.Fatalf("a drop whose second event cannot be recorded = %+v, %v; want an error and nothing", dropped, err)
	}
	after, err := s.QueueRecipients(ctx, rs[0].QueueID, false)
	if err != nil || len(after) != 2 || after[0].State != store.RecipientQueued || after[1].State != store.RecipientQueued {
		t.Fatalf("rows after the failed drop: %+v, %v; want both still queued", after, err)
	}
	if evs, _ := s.Events(ctx, rs[0].Conversation); len(evs) != 0 {
		t.Fatalf("events after the failed drop: %+v", evs)
	}
	dropped, err := s.Drop(ctx, rs[0].QueueID, "dropped", now, event(rs[0].Conversation))
	if err != nil || len(dropped) != 2 {
		t.Fatalf("the retried drop = %+v, %v", dropped, err)
	}
	if evs, _ := s.Events(ctx, rs[0].Conversation); len(evs) != 2 {
		t.Errorf("events after the drop: %+v; want one per recipient", evs)
	}
}

// TestQueuePage: pages follow the key order, filter by state, and a row
// whose state changes between pages is not listed twice.
func TestQueuePage(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := t.Context()
	var all []store.QueuedRecipient
	for i := range 3 {
		all = append(all, queuedReply(t, s, fmt.Sprintf("a%d@customer.example", i), fmt.Sprintf("b%d@customer.example", i))...)
	}
	if _, err := s.Drop(ctx, all[2].QueueID, "dropped", time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	var after store.RecipientKey
	for page := 0; ; page++ {
		rows, err := s.QueuePage(ctx, store.QueuePageQuery{After: after, Limit: 2,
			States: []store.RecipientState{store.RecipientQueued, store.RecipientFailed}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			got = append(got, r.Recipient)
		}
		if page == 0 {
			// a0 was listed: retrying it now must not list it again.
			if _, err := s.RetryNow(ctx, all[0].QueueID, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if len(rows) < 2 {
			break
		}
		after = rows[len(rows)-1].Key()
	}
	if want := "a0@customer.example b0@customer.example a2@customer.example b2@customer.example"; strings.Join(got, " ") != want {
		t.Errorf("pages listed %q, want %q (a1 and b1 dropped)", strings.Join(got, " "), want)
	}
	every, err := s.QueuePage(ctx, store.QueuePageQuery{Limit: 100})
	if err != nil || len(every) != 6 {
		t.Errorf("every state: %d rows, %v", len(every), err)
	}
}

// TestFinishAttemptRecordsItsEventsWithTheOutcome: the team's events of an
// outcome commit with it, and an outcome that is not recorded (the row left
// the queue during the attempt) records none.
func TestFinishAttemptRecordsItsEventsWithTheOutcome(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := t.Context()
	rs := queuedReply(t, s, "a@customer.example")
	now := time.Now().Truncate(time.Millisecond)
	if ok, err := s.BeginAttempt(ctx, rs[0].Key(), now, now.Add(time.Hour)); !ok || err != nil {
		t.Fatalf("BeginAttempt = %v, %v", ok, err)
	}
	ev := store.Event{Conversation: rs[0].Conversation, Type: "delivery-failed", Text: "Delivery to a@customer.example failed", At: now}
	res := store.AttemptResult{State: store.RecipientFailed, LastError: "550 5.1.1 No such user", At: now, Events: []store.Event{ev}}
	if ok, err := s.FinishAttempt(ctx, rs[0].Key(), res); !ok || err != nil {
		t.Fatalf("FinishAttempt = %v, %v", ok, err)
	}
	// Again: the row is no longer queued, so nothing is recorded.
	if ok, err := s.FinishAttempt(ctx, rs[0].Key(), res); ok || err != nil {
		t.Fatalf("second FinishAttempt = %v, %v; want false, nil", ok, err)
	}
	evs, err := s.Events(ctx, rs[0].Conversation)
	if err != nil {
		t.Fatal(err)
	}
	var failed int
	for _, e := range evs {
		if e.Type == "delivery-failed" {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("delivery-failed events = %d, want 1 (recorded with the first outcome only): %+v", failed, evs)
	}
}
