package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// newAck is an automatic acknowledgement of conv from inbox to recipient at
// when, under limit, with a message number reserved from s.
func newAck(t testing.TB, s store.Store, conv int64, inbox, recipient string, when time.Time, limit int) store.AutoAck {
	t.Helper()
	msg := mustReserve(t, s)
	return store.AutoAck{Inbox: inbox, Recipient: recipient, Limit: limit, Outbound: store.Outbound{
		Message:         msg,
		Conversation:    conv,
		Kind:            store.KindReply,
		MessageIDHeader: fmt.Sprintf("ack%d@support.example.com", msg),
		Raw:             rawMessage(fmt.Sprintf("ack %d", msg)),
		Received:        when,
		MailFrom:        "", // RFC 3834 3.3
		Recipients:      []string{recipient},
	}}
}

// newConversation stores a customer's first message and returns its
// conversation.
func newConversation(t testing.TB, s store.Store, messageID string) int64 {
	t.Helper()
	return mustInbound(t, s, newInbound("support@x.test", messageID, 1)).Conversation
}

// TestAutoAckConversationsMigration: acknowledgements queued before
// migration 8 are recorded for their conversations by it; agents' replies
// are not.
func TestAutoAckConversationsMigration(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	acked := newConversation(t, s, "acked@customer.example")
	replied := newConversation(t, s, "replied@customer.example")
	// What the gateway queued before: AddOutbound of a reply without an
	// agent and with a null return path.
	old := newAck(t, s, acked, "support@x.test", "gina@customer.example", at(2), 1).Outbound
	mustOutbound(t, s, old)
	mustOutbound(t, s, reply(mustReserve(t, s), replied, "alice@x.test", "customer@example.com"))
	for _, q := range []string{`DROP TABLE auto_ack_conversations`, `DELETE FROM schema_migrations WHERE version >= 8`} {
		if _, err := s.write.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s = openTest(t, dir)
	if msg, found, err := s.AutoAckOf(ctx, acked); !found || err != nil || msg != old.Message {
		t.Errorf("AutoAckOf the conversation acknowledged before = %d, %v, %v; want %d", msg, found, err, old.Message)
	}
	if _, found, err := s.AutoAckOf(ctx, replied); found || err != nil {
		t.Errorf("AutoAckOf a conversation with an agent's reply = %v, %v; want none", found, err)
	}
	if got, err := s.QueueAutoAck(ctx, newAck(t, s, acked, "support@x.test", "gina@customer.example", at(3), 5)); err != nil || got != store.AutoAckAlreadySent {
		t.Errorf("QueueAutoAck after the migration = %v, %v; want already sent", got, err)
	}
}
