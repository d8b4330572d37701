package storetest

import (
	"errors"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// Followers' notices and notifications (DESIGN.md §7).
func noticeCases() []testCase {
	return []testCase{
		{"Notices", testNotices},
	}
}

// testNotices: a follower's notice is pending after an update someone else
// wrote, not after their own or a notification; QueueNotification records
// the notification in no folder, queues it, and settles the notice in one
// go; SettleNotice marks read updates; an unfollowed notice is gone.
func testNotices(t *testing.T, s store.Store) {
	ctx := t.Context()
	const cfo = "cfo@example.com"
	open := mustInbound(t, s, newInbound(inboxA, "n1@example.com", 1))
	conv := open.Conversation
	mustUpdate(t, s, store.ConversationUpdate{Conversation: conv, AddFollowers: []string{cfo, agent}})
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
	mustOutbound(t, s, reply(mustReserve(t, s), conv, "", "customer@example.com"))
	if p := pending(); len(p) != 0 {
		t.Fatalf("pending after an automatic acknowledgement: %+v", p)
	}
	// Nor is an out-of-office answer on its own.
	ooo := into(conv, inboxA, "ooo@example.com", 1)
	ooo.Automatic = true
	mustInbound(t, s, ooo)
	if p := pending(); len(p) != 0 {
		t.Fatalf("pending after an automatic answer: %+v", p)
	}

	// The customer writes: both followers have news. The CFO writes: the
	// agent had news already, and the CFO's own mail is none for them.
	second := mustInbound(t, s, into(conv, inboxA, "n2@example.com", 2))
	p := pending()
	if n := p[cfo]; len(p) != 2 || !n.PendingSince.Equal(at(2)) || n.Since != open.Message || n.Conversation != conv {
		t.Fatalf("after the customer's mail: %+v", p)
	}
	cfoMail := into(conv, inboxA, "n3@example.com", 3)
	cfoMail.Sender = "CFO@example.com"
	third := mustInbound(t, s, cfoMail)
	ups, wrote, err := s.NoticeUpdates(ctx, conv, cfo, open.Message)
	// The out-of-office answer is listed (a notification sent for other
	// news tells of it too), the CFO's own mail is not.
	if err != nil || len(ups) != 2 || ups[0].MessageIDHeader != "ooo@example.com" || ups[1].ID != second.Message || wrote != third.Message {
		t.Fatalf("the CFO's updates: %+v, wrote %v, %v; want the automatic answer and the customer's second mail", ups, wrote, err)
	}

	// The notification: queued to the CFO, in no folder, no update, and
	// the conversation is not "updated" by it.
	before := mustConversation(t, s, conv)
	msg := mustReserve(t, s)
	n := store.Notification{Conversation: conv, Follower: cfo, Through: second.Message, Outbound: store.Outbound{
		Message: msg, Conversation: conv, Kind: store.KindNotification, Agent: inboxA, MessageIDHeader: "notice-1@support.example.com",
		Raw: rawMessage("notice"), Received: at(10), MailFrom: "bounces+x@support.example.com", Recipients: []string{cfo}}}
	if err := s.QueueNotification(ctx, n); err != nil {
		t.Fatal(err)
	}
	if in := foldersOf(t, s, inboxA, agent, msg); len(in) != 0 {
		t.Errorf("the notification is in folders %v", in)
	}
	if rc, err := s.MessageRecipients(ctx, msg); err != nil || len(rc) != 1 || rc[0].Recipient != cfo || rc[0].State != store.RecipientQueued {
		t.Errorf("queued recipients %+v, %v", rc, err)
	}
	if m, err := s.Message(ctx, msg); err != nil || m.Kind != store.KindNotification {
		t.Errorf("the notification's message %+v, %v", m, err)
	}
	if after := mustConversation(t, s, conv); !after.Updated.Equal(before.Updated) {
		t.Errorf("the notification moved the conversation's update time from %v to %v", before.Updated, after.Updated)
	}
	p = pending()
	if _, still := p[cfo]; still {
		t.Errorf("the CFO's notice is still pending after the notification: %+v", p[cfo])
	}
	if _, ok := p[agent]; !ok {
		t.Errorf("the agent's notice was settled by the CFO's notification")
	}
	if id, found, err := s.ConversationByMessageID(ctx, []string{"notice-1@support.example.com"}); err != nil || !found || id != conv {
		t.Errorf("a reply to the notification does not thread: %d %v %v", id, found, err)
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
	mustInbound(t, s, into(conv, inboxA, "n4@example.com", 20))
	if err := s.SettleNotice(ctx, conv, agent, third.Message); err != nil {
		t.Fatal(err)
	}
	p = pending()
	if _, ok := p[agent]; !ok {
		t.Errorf("a later update was lost by settling an earlier one")
	}
	// The CFO's notice remembers the notification: told through the
	// second mail, sent at 10.
	if c := p[cfo]; c.NotifiedThrough != second.Message || !c.LastSent.Equal(at(10)) || len(c.SentTimes) != 1 ||
		!c.SentTimes[0].Equal(at(10)) || !c.PendingSince.Equal(at(20)) {
		t.Errorf("the CFO's notice after a further update: %+v; want notified through %d, last sent and sent at %v, pending since %v",
			c, second.Message, at(10), at(20))
	}

	// Unfollowed: the notice is gone, and a notification for it writes
	// nothing.
	mustUpdate(t, s, store.ConversationUpdate{Conversation: conv, RemoveFollowers: []string{cfo}})
	if _, ok := pending()[cfo]; ok {
		t.Error("an unfollowed notice is pending")
	}
	n.Outbound.Message, n.Outbound.MessageIDHeader = mustReserve(t, s), "notice-2@support.example.com"
	if err := s.QueueNotification(ctx, n); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a notification to someone who stopped following: %v, want ErrNotFound", err)
	}
	if _, err := s.Message(ctx, n.Outbound.Message); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("it was recorded anyway: %v", err)
	}
	if err := s.SettleNotice(ctx, conv, cfo, 99); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("settling an unfollowed notice: %v", err)
	}
}
