package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// TestNotices: a follower's notice is pending after an update someone else
// wrote, not after their own or a notification; QueueNotification records
// the notification in no folder, queues it, and settles the notice in one
// go; SettleNotice marks read updates; an unfollowed notice is gone.
func TestNotices(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, pg.DSN(t))
	open := mustInbound(t, s, newInbound(inboxA, "n1@example.com", 1))
	conv := open.Conversation
	if err := s.UpdateConversation(ctx, store.ConversationUpdate{Conversation: conv, AddFollowers: []string{"cfo@example.com", agent}}); err != nil {
		t.Fatal(err)
	}
	pending := func() map[string]store.Notice {
		t.Helper()
		ns, err := s.PendingNotices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]store.Notice{}
		for _, n := range ns {
			out[n.Follower] = n
		}
		return out
	}
	if p := pending(); len(p) != 0 {
		t.Fatalf("pending before any update: %+v", p)
	}
	// An automatic acknowledgement (a reply nobody wrote) is no update.
	ack := reply(mustReserve(t, s), conv, "", "customer@example.com")
	if err := s.AddOutbound(ctx, ack); err != nil {
		t.Fatal(err)
	}
	if p := pending(); len(p) != 0 {
		t.Fatalf("pending after an automatic acknowledgement: %+v", p)
	}
	// Nor is an out-of-office answer on its own.
	ooo := newInbound(inboxA, "ooo@example.com", 1)
	ooo.Conversation, ooo.Automatic = conv, true
	mustInbound(t, s, ooo)
	if p := pending(); len(p) != 0 {
		t.Fatalf("pending after an automatic answer: %+v", p)
	}

	// The customer writes: both followers have news. The CFO writes: the
	// agent had news already, and the CFO's own mail is none for them.
	in := newInbound(inboxA, "n2@example.com", 2)
	in.Conversation = conv
	second := mustInbound(t, s, in)
	p := pending()
	if len(p) != 2 || !p["cfo@example.com"].PendingSince.Equal(at(2)) || p["cfo@example.com"].Since != open.Message {
		t.Fatalf("after the customer's mail: %+v", p)
	}
	cfoMail := newInbound(inboxA, "n3@example.com", 3)
	cfoMail.Conversation, cfoMail.Sender = conv, "CFO@example.com"
	third := mustInbound(t, s, cfoMail)
	ups, wrote, err := s.NoticeUpdates(ctx, conv, "cfo@example.com", open.Message)
	// The out-of-office answer is listed (a notification sent for other
	// news tells of it too), the CFO's own mail is not.
	if err != nil || len(ups) != 2 || ups[0].MessageIDHeader != "ooo@example.com" || ups[1].ID != second.Message || wrote != third.Message {
		t.Fatalf("the CFO's updates: %+v, wrote %v, %v; want the automatic answer and the customer's second mail", ups, wrote, err)
	}

	// The notification: queued to the CFO, in no folder, no update, and
	// the conversation is not "updated" by it.
	before, _ := s.Conversation(ctx, conv)
	msg := mustReserve(t, s)
	n := store.Notification{Conversation: conv, Follower: "cfo@example.com", Through: second.Message, Outbound: store.Outbound{
		Message: msg, Conversation: conv, Kind: store.KindNotification, Agent: inboxA, MessageIDHeader: "notice-1@support.example.com",
		Raw: rawMessage("notice"), Received: at(10), MailFrom: "bounces+x@support.example.com", Recipients: []string{"cfo@example.com"}}}
	if err := s.QueueNotification(ctx, n); err != nil {
		t.Fatal(err)
	}
	if rows := folderRowsOf(t, s, msg); len(rows) != 0 {
		t.Errorf("the notification is in folders %v", rows)
	}
	if rc, err := s.MessageRecipients(ctx, msg); err != nil || len(rc) != 1 || rc[0].Recipient != "cfo@example.com" || rc[0].State != store.RecipientQueued {
		t.Errorf("queued recipients %+v, %v", rc, err)
	}
	if after, _ := s.Conversation(ctx, conv); !after.Updated.Equal(before.Updated) {
		t.Errorf("the notification moved the conversation's update time from %v to %v", before.Updated, after.Updated)
	}
	p = pending()
	if _, still := p["cfo@example.com"]; still {
		t.Errorf("the CFO's notice is still pending after the notification: %+v", p["cfo@example.com"])
	}
	if _, ok := p[agent]; !ok {
		t.Errorf("the agent's notice was settled by the CFO's notification")
	}
	if id, found, err := s.ConversationByMessageID(ctx, []string{"notice-1@support.example.com"}); err != nil || !found || id != conv {
		t.Errorf("a reply to the notification does not thread: %d %v %v", id, found, err)
	}
	// Its state: told through the second mail, sent at 10.
	var through, last int64
	if err := s.pool.QueryRow(context.Background(), `SELECT notified_through, last_sent FROM follower_notices WHERE address = 'cfo@example.com'`).Scan(&through, &last); err != nil ||
		through != second.Message || !fromMillis(last).Equal(at(10)) {
		t.Errorf("the CFO's notice: through %d, last sent %v (%v)", through, fromMillis(last), err)
	}

	// The agent read everything: settled, no longer pending.
	if err := s.SettleNotice(ctx, conv, agent, third.Message); err != nil {
		t.Fatal(err)
	}
	if p := pending(); len(p) != 0 {
		t.Errorf("pending after the agent's settle: %+v", p)
	}
	// An update arriving after the mark a notification settles keeps the
	// notice pending.
	in4 := newInbound(inboxA, "n4@example.com", 20)
	in4.Conversation = conv
	mustInbound(t, s, in4)
	if err := s.SettleNotice(ctx, conv, agent, third.Message); err != nil {
		t.Fatal(err)
	}
	if _, ok := pending()[agent]; !ok {
		t.Errorf("a later update was lost by settling an earlier one")
	}

	// Unfollowed: the notice is gone, and a notification for it writes
	// nothing.
	if err := s.UpdateConversation(ctx, store.ConversationUpdate{Conversation: conv, RemoveFollowers: []string{"cfo@example.com"}}); err != nil {
		t.Fatal(err)
	}
	n.Outbound.Message, n.Outbound.MessageIDHeader = mustReserve(t, s), "notice-2@support.example.com"
	if err := s.QueueNotification(ctx, n); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a notification to someone who stopped following: %v, want ErrNotFound", err)
	}
	if _, err := s.Message(ctx, n.Outbound.Message); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("it was recorded anyway: %v", err)
	}
	if err := s.SettleNotice(ctx, conv, "cfo@example.com", 99); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("settling an unfollowed notice: %v", err)
	}
}
