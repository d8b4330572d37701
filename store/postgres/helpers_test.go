package postgres

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/supportgate/supportgate/internal/pgtest"
	"github.com/supportgate/supportgate/store"
)

const (
	inboxA = "support@example.com"
	inboxB = "billing@example.com"
	agent  = "alice@support.example.com"
)

// pg is the PostgreSQL server of this package's tests (internal/pgtest).
var pg = pgtest.New()

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

// openTest opens a store on the database dsn (pg.DSN) and closes it when
// the test ends (closing twice is harmless, so tests that restart may close
// it themselves). Several stores on one DSN are several nodes.
func openTest(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open(%s): %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawMessage returns message bytes that a careless store would mangle: a NUL,
// a bare CR, a bare LF, 8-bit bytes that are not UTF-8 and trailing spaces.
func rawMessage(tag string) []byte {
	return []byte("From: customer@example.com\r\nSubject: " + tag + "\r\n\r\n" +
		"nul:\x00:end\r\nbare cr:\r:end\nbare lf\n8bit:\xff\xfe\x80\xc3(\r\ntrailing   \r\n" + tag + "\r\n")
}

// at returns a fixed instant, a whole number of milliseconds (what the store keeps).
func at(n int) time.Time {
	return time.UnixMilli(1_700_000_000_000 + int64(n)*1000)
}

// newInbound is an inbound message that starts a conversation in inbox.
func newInbound(inbox, messageID string, n int) store.Inbound {
	return store.Inbound{
		Inbox:           inbox,
		Owner:           "customer@example.com",
		Subject:         "Help " + messageID,
		Sender:          "customer@example.com",
		MessageIDHeader: messageID,
		Raw:             rawMessage(messageID),
		Received:        at(n),
	}
}

// mustInbound stores in and fails the test on error.
func mustInbound(t testing.TB, s store.Store, in store.Inbound) store.InboundResult {
	t.Helper()
	res, err := s.AddInbound(context.Background(), in)
	if err != nil {
		t.Fatalf("AddInbound(%q): %v", in.MessageIDHeader, err)
	}
	return res
}

// reply is an agent's reply in conv, with numbers the caller reserved.
func reply(msg, conv int64, agent string, rcpts ...string) store.Outbound {
	return store.Outbound{
		Message:         msg,
		Conversation:    conv,
		Kind:            store.KindReply,
		Agent:           agent,
		MessageIDHeader: fmt.Sprintf("m%d@support.example.com", msg),
		Raw:             rawMessage(fmt.Sprintf("reply %d", msg)),
		Received:        at(1000 + int(msg)),
		MailFrom:        "bounces+" + fmt.Sprint(msg) + "@support.example.com",
		Recipients:      rcpts,
	}
}

// mustReserve reserves a message number.
func mustReserve(t testing.TB, s store.Store) int64 {
	t.Helper()
	n, err := s.NextMessageNumber(context.Background())
	if err != nil {
		t.Fatalf("NextMessageNumber: %v", err)
	}
	return n
}

// mustOutbound records out and fails the test on error.
func mustOutbound(t testing.TB, s store.Store, out store.Outbound) {
	t.Helper()
	if err := s.AddOutbound(context.Background(), out); err != nil {
		t.Fatalf("AddOutbound(message %d): %v", out.Message, err)
	}
}

// mustEntries lists a view and fails the test on error.
func mustEntries(t testing.TB, s store.Store, view store.MailboxView) ([]store.MailboxEntry, uint32) {
	t.Helper()
	e, next, err := s.Entries(context.Background(), view)
	if err != nil {
		t.Fatalf("Entries(%+v): %v", view, err)
	}
	return e, next
}

func mustUIDValidity(t testing.TB, s store.Store, view store.MailboxView) uint32 {
	t.Helper()
	v, err := s.UIDValidity(context.Background(), view)
	if err != nil {
		t.Fatalf("UIDValidity(%+v): %v", view, err)
	}
	if v == 0 {
		t.Fatalf("UIDValidity(%+v) = 0, RFC 9051 requires a nonzero value", view)
	}
	return v
}

// count returns the number of rows of a table, read through the write
// connection so nothing can be stale.
func count(t testing.TB, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatalf("counting %s: %v", table, err)
	}
	return n
}

// sequence returns the current value of a counter, or of the sequence
// of message numbers ("message"); 0 if never used.
func sequence(t testing.TB, s *Store, name string) int64 {
	t.Helper()
	var v int64
	q := `SELECT COALESCE((SELECT value FROM counters WHERE name = $1), 0)`
	if name == "message" {
		q = `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM message_numbers WHERE $1 <> ''`
	}
	err := s.pool.QueryRow(context.Background(), q, name).Scan(&v)
	if err != nil {
		t.Fatalf("reading sequence %s: %v", name, err)
	}
	return v
}

// uids returns the UIDs of entries, checking that they strictly ascend.
func uids(t testing.TB, entries []store.MailboxEntry) []uint32 {
	t.Helper()
	var l []uint32
	for i, e := range entries {
		if i > 0 && e.UID <= entries[i-1].UID {
			t.Fatalf("UIDs do not ascend: entry %d has UID %d after %d", i, e.UID, entries[i-1].UID)
		}
		l = append(l, e.UID)
	}
	return l
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

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

func mustPending(t testing.TB, s store.Store, limit int) []store.Delivery {
	t.Helper()
	d, err := s.PendingDeliveries(context.Background(), limit)
	if err != nil {
		t.Fatalf("PendingDeliveries(%d): %v", limit, err)
	}
	return d
}
