package postgres

import (
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
	dropped, err := s.Drop(ctx, rs[0].QueueID, "dropped by an admin", now)
	if err != nil || len(dropped) != 1 || dropped[0].State != store.RecipientDropped || dropped[0].LastError != "451 4.3.0 Try later" || dropped[0].Attempts != 1 {
		t.Fatalf("Drop = %+v, %v; want a dropped with its last answer", dropped, err)
	}
	after, err := s.QueueRecipients(ctx, rs[0].QueueID, false)
	if err != nil || after[0].State != store.RecipientDropped || after[0].LastError != "dropped by an admin" {
		t.Errorf("stored row %+v, %v", after, err)
	}
	if again, err := s.Drop(ctx, rs[0].QueueID, "again", now); err != nil || len(again) != 0 {
		t.Errorf("a second Drop = %+v, %v; want nothing", again, err)
	}
}
