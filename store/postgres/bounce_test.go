package postgres

import (
	"context"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// TestMarkBouncedIsOneWrite: the failed mark and the team's event commit
// together (issue 13). When the event cannot be written, nothing is, so a
// retried bounce records both; a repeated bounce records nothing.
func TestMarkBouncedIsOneWrite(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
	in := mustInbound(t, s, newInbound("support@example.com", "b1@customer.example", 1))
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
	evs, err := s.Events(ctx, in.Conversation)
	n := 0
	for _, e := range evs {
		if e.Type == "delivery-failed" {
			n++
		}
	}
	if err != nil || n != 1 {
		t.Errorf("%d delivery-failed events, want 1 (%v)", n, err)
	}
}
