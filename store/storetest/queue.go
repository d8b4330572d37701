package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// The outbound queue (DESIGN.md §9): claims, attempts, drops, retries and
// bounces.
func queueCases() []testCase {
	return []testCase{
		{"BeginAttemptsClaimsOnlyDueQueuedRowsOnce", testBeginAttemptsClaimsOnce},
		{"AttemptLifecycle", testAttemptLifecycle},
		{"DropReturnsTheLastAnswer", testDropReturnsTheLastAnswer},
		{"MarkBouncedIsOneWrite", testMarkBouncedIsOneWrite},
		{"DropAndItsEventsAreOneWrite", testDropAndItsEventsAreOneWrite},
		{"QueuePage", testQueuePage},
		{"FinishAttemptRecordsItsEventsWithTheOutcome", testFinishAttemptRecordsItsEvents},
	}
}

// queuedReply records a reply to rcpts in a new conversation and returns its
// queue rows.
func queuedReply(t T, s store.Store, rcpts ...string) []store.QueuedRecipient {
	t.Helper()
	ctx := t.Context()
	conv, err := s.NextConversationNumber(ctx)
	if err != nil {
		t.Fatalf("NextConversationNumber: %v", err)
	}
	out := reply(mustReserve(t, s), conv, agent, rcpts...)
	out.NewConversation = &store.NewConversation{Inbox: inboxA, Owner: rcpts[0], Subject: "Hello"}
	mustOutbound(t, s, out)
	rs, err := s.MessageRecipients(ctx, out.Message)
	if err != nil || len(rs) != len(rcpts) {
		t.Fatalf("MessageRecipients = %+v, %v", rs, err)
	}
	return rs
}

// testBeginAttemptsClaimsOnce: one commit claims a batch; a row already
// claimed (no longer due) or unknown is not claimed, a row is claimed once,
// and a claimed row counts the attempt and moves its next attempt to its
// retry time.
func testBeginAttemptsClaimsOnce(t *testing.T, s store.Store) {
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

// testAttemptLifecycle: recipients are numbered by address, due from when
// they were queued, deferred, delivered or failed by FinishAttempt (which
// a drop wins), retried by RetryNow, and counted by state.
func testAttemptLifecycle(t *testing.T, s store.Store) {
	ctx := t.Context()
	rs := queuedReply(t, s, "c@customer.example", "a@customer.example", "b@customer.example")
	for i, want := range []string{"a@customer.example", "b@customer.example", "c@customer.example"} {
		if r := rs[i]; r.Recipient != want || r.Number != i+1 || r.State != store.RecipientQueued || r.Attempts != 0 || r.MailFrom == "" {
			t.Errorf("recipient %d = %+v, want %s numbered %d, queued", i, r, want, i+1)
		}
	}
	queued := rs[0].NextAttempt
	if next, found, err := s.NextAttempt(ctx); err != nil || !found || !next.Equal(queued) {
		t.Errorf("NextAttempt = %v, %v, %v; want %v", next, found, err, queued)
	}
	if due, err := s.DueRecipients(ctx, queued.Add(-time.Second), 10); err != nil || len(due) != 0 {
		t.Errorf("due before they were queued: %+v, %v", due, err)
	}
	if due, err := s.DueRecipients(ctx, queued, 2); err != nil || len(due) != 2 || due[0].Recipient != "a@customer.example" {
		t.Errorf("DueRecipients(limit 2) = %+v, %v", due, err)
	}
	now := queued.Add(time.Minute)
	for _, r := range rs {
		if ok, err := s.BeginAttempt(ctx, r.Key(), now, now.Add(time.Hour)); !ok || err != nil {
			t.Fatalf("BeginAttempt(%s) = %v, %v", r.Recipient, ok, err)
		}
	}
	finish := func(r store.QueuedRecipient, res store.AttemptResult, want bool) {
		t.Helper()
		if ok, err := s.FinishAttempt(ctx, r.Key(), res); ok != want || err != nil {
			t.Fatalf("FinishAttempt(%s, %s) = %v, %v; want %v", r.Recipient, res.State, ok, err, want)
		}
	}
	finish(rs[0], store.AttemptResult{State: store.RecipientDelivered, At: now}, true)
	finish(rs[1], store.AttemptResult{State: store.RecipientQueued, LastError: "451 later", NextAttempt: now.Add(time.Minute),
		DelayNotified: true, At: now}, true)
	finish(rs[2], store.AttemptResult{State: store.RecipientFailed, LastError: "550 no such user", At: now}, true)
	finish(rs[2], store.AttemptResult{State: store.RecipientDelivered, At: now}, false) // no longer queued
	after, err := s.QueueRecipients(ctx, rs[0].QueueID, false)
	if err != nil || len(after) != 3 {
		t.Fatalf("QueueRecipients = %+v, %v", after, err)
	}
	if a, b, c := after[0], after[1], after[2]; a.State != store.RecipientDelivered || a.Attempts != 1 ||
		b.State != store.RecipientQueued || b.LastError != "451 later" || !b.NextAttempt.Equal(now.Add(time.Minute)) || !b.DelayNotified ||
		c.State != store.RecipientFailed || c.LastError != "550 no such user" {
		t.Errorf("after the attempts: %+v", after)
	}
	if active, err := s.QueueRecipients(ctx, 0, true); err != nil || len(active) != 1 || active[0].Recipient != "b@customer.example" {
		t.Errorf("active recipients %+v, %v", active, err)
	}
	if next, found, err := s.NextAttempt(ctx); err != nil || !found || !next.Equal(now.Add(time.Minute)) {
		t.Errorf("NextAttempt = %v, %v, %v; want b's retry", next, found, err)
	}
	counts, err := s.QueueCounts(ctx)
	if err != nil || counts[store.RecipientDelivered] != 1 || counts[store.RecipientQueued] != 1 || counts[store.RecipientFailed] != 1 {
		t.Errorf("QueueCounts = %v, %v", counts, err)
	}
	// An admin's retry makes every recipient but the delivered one due now.
	later := now.Add(time.Hour)
	if n, err := s.RetryNow(ctx, rs[0].QueueID, later); err != nil || n != 2 {
		t.Fatalf("RetryNow = %d, %v; want 2", n, err)
	}
	due, err := s.DueRecipients(ctx, later, 10)
	if err != nil || len(due) != 2 || due[0].Recipient != "b@customer.example" || due[1].Recipient != "c@customer.example" {
		t.Fatalf("due after RetryNow: %+v, %v", due, err)
	}
	if c := due[1]; c.State != store.RecipientQueued || !c.Since.Equal(later) || c.DelayNotified {
		t.Errorf("c retried: %+v, want queued again since %v", c, later)
	}
	// A drop wins over an attempt in flight.
	if ok, err := s.BeginAttempt(ctx, due[0].Key(), later, later.Add(time.Hour)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, err := s.Drop(ctx, rs[0].QueueID, "dropped", later, nil); err != nil {
		t.Fatal(err)
	}
	finish(due[0], store.AttemptResult{State: store.RecipientDelivered, At: later}, false)
	if _, found, err := s.NextAttempt(ctx); found || err != nil {
		t.Errorf("NextAttempt with nothing queued: found %v, %v", found, err)
	}
}

// testDropReturnsTheLastAnswer: Drop ends the queued rows and returns each
// with the last error it had, which the team's event names.
func testDropReturnsTheLastAnswer(t *testing.T, s store.Store) {
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

// testMarkBouncedIsOneWrite: the failed mark and the team's event commit
// together (issue 13). When the event cannot be written, nothing is, so a
// retried bounce records both; a repeated bounce records nothing.
func testMarkBouncedIsOneWrite(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := mustInbound(t, s, newInbound(inboxA, "b1@customer.example", 1))
	mustOutbound(t, s, reply(mustReserve(t, s), in.Conversation, "alice@example.com", "gina@customer.example"))
	d := mustPending(t, s, 10)
	if len(d) != 1 {
		t.Fatalf("%d deliveries", len(d))
	}
	key := store.RecipientKey{QueueID: d[0].ID, Recipient: "gina@customer.example"}
	ev := store.Event{Conversation: in.Conversation, Type: "delivery-failed", Text: "Delivery to gina@customer.example failed", At: at(5000)}
	broken := ev
	broken.Conversation = 999 // the event's write fails
	if _, err := s.MarkBounced(ctx, key, "bounced: 550", at(5000), broken); err == nil {
		t.Fatal("a bounce whose event cannot be recorded was recorded")
	}
	if rs, _ := s.QueueRecipients(ctx, key.QueueID, false); len(rs) != 1 || rs[0].State == store.RecipientFailed {
		t.Fatalf("the mark committed without its event: %+v", rs)
	}
	changed, err := s.MarkBounced(ctx, key, "bounced: 550", at(5000), ev)
	if err != nil || !changed {
		t.Fatalf("the retried bounce: changed %v, %v", changed, err)
	}
	if changed, err := s.MarkBounced(ctx, key, "bounced: 550", at(5001), ev); err != nil || changed {
		t.Fatalf("a repeated bounce: changed %v, %v", changed, err)
	}
	if n := eventsOfType(t, s, in.Conversation, "delivery-failed"); n != 1 {
		t.Errorf("%d delivery-failed events, want 1", n)
	}
	if rs, _ := s.QueueRecipients(ctx, key.QueueID, false); len(rs) != 1 || rs[0].State != store.RecipientFailed || rs[0].LastError != "bounced: 550" {
		t.Errorf("after the bounce: %+v", rs)
	}
}

// testDropAndItsEventsAreOneWrite: the dropped rows and their events commit
// together (issue 15). When an event cannot be written, nothing is dropped,
// so a retried drop records both.
func testDropAndItsEventsAreOneWrite(t *testing.T, s store.Store) {
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

// testQueuePage: pages follow the key order, filter by state, and a row
// whose state changes between pages is not listed twice.
func testQueuePage(t *testing.T, s store.Store) {
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

// testFinishAttemptRecordsItsEvents: the team's events of an outcome
// commit with it, and an outcome that is not recorded (the row left the
// queue during the attempt) records none.
func testFinishAttemptRecordsItsEvents(t *testing.T, s store.Store) {
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
