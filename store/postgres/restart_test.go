package postgres

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// A node that stops and starts again (or another node) finds everything
// where it was: the same tests as store/sqlite's restarts.

// TestRestartKeepsEverything closes and reopens the store: messages,
// conversations, UIDs, UIDVALIDITY, \Seen and the queue survive, and the
// sequences go on where they were.
func TestRestartKeepsEverything(t *testing.T) {
	dir := pg.DSN(t)
	ctx := t.Context()
	s := openTest(t, dir)
	const inbox = "support@example.com"
	view := store.MailboxView{Agent: "alice@support.example.com", Folder: store.FolderInbox, Inboxes: []string{inbox}}

	first := mustInbound(t, s, newInbound(inbox, "one@example.com", 1))
	second := mustInbound(t, s, store.Inbound{Inbox: inbox, Conversation: first.Conversation, Sender: "customer@example.com",
		MessageIDHeader: "two@example.com", SeenMessageIDs: []string{"one@example.com", "ref@example.com"},
		Raw: rawMessage("two"), Received: at(2)})
	msg := mustReserve(t, s)
	out := reply(msg, first.Conversation, view.Agent, "customer@example.com")
	out.NewParticipants = []string{"cc@example.com"}
	mustOutbound(t, s, out)
	if err := s.SetSeen(ctx, view.Agent, []int64{first.Message}, true); err != nil {
		t.Fatal(err)
	}
	validity := mustUIDValidity(t, s, view)
	entries, next := mustEntries(t, s, view)
	conv, err := s.Conversation(ctx, first.Conversation)
	if err != nil {
		t.Fatal(err)
	}
	pending := mustPending(t, s, 10)
	if len(entries) != 3 || len(pending) != 1 {
		t.Fatalf("before restart: %d entries, %d pending; want 3, 1", len(entries), len(pending))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir)
	if got := mustUIDValidity(t, s, view); got != validity {
		t.Errorf("UIDVALIDITY after restart = %d, want %d", got, validity)
	}
	gotEntries, gotNext := mustEntries(t, s, view)
	if !reflect.DeepEqual(gotEntries, entries) || gotNext != next {
		t.Errorf("entries after restart:\n%+v next %d\nwant\n%+v next %d", gotEntries, gotNext, entries, next)
	}
	gotConv, err := s.Conversation(ctx, first.Conversation)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotConv, conv) {
		t.Errorf("conversation after restart = %+v, want %+v", gotConv, conv)
	}
	if got := mustPending(t, s, 10); !reflect.DeepEqual(got, pending) {
		t.Errorf("queue after restart = %+v, want %+v", got, pending)
	}
	for id, want := range map[int64][]byte{first.Message: rawMessage("one@example.com"), second.Message: rawMessage("two"), msg: out.Raw} {
		raw, err := s.MessageRaw(ctx, id)
		if err != nil {
			t.Fatalf("MessageRaw(%d) after restart: %v", id, err)
		}
		if !bytes.Equal(raw, want) {
			t.Errorf("MessageRaw(%d) after restart = %q, want %q", id, raw, want)
		}
	}
	for _, mid := range []string{"one@example.com", "two@example.com", "ref@example.com", out.MessageIDHeader} {
		c, found, err := s.ConversationByMessageID(ctx, []string{mid})
		if err != nil || !found || c != first.Conversation {
			t.Errorf("ConversationByMessageID(%q) after restart = %d, %v, %v", mid, c, found, err)
		}
	}
	dup := mustInbound(t, s, store.Inbound{Inbox: inbox, Conversation: first.Conversation, Sender: "customer@example.com",
		MessageIDHeader: "two@example.com", Raw: []byte("again"), Received: at(3)})
	if !dup.Duplicate || dup.Message != second.Message {
		t.Errorf("re-delivery after restart = %+v, want a duplicate of %d", dup, second.Message)
	}

	// New numbers go on from where they were: no UID, message or
	// conversation number is reused.
	third := mustInbound(t, s, newInbound(inbox, "three@example.com", 4))
	if third.Message <= msg || third.Conversation <= first.Conversation {
		t.Errorf("after restart: message %d conversation %d, want above %d and %d", third.Message, third.Conversation, msg, first.Conversation)
	}
	after, afterNext := mustEntries(t, s, view)
	if len(after) != 4 {
		t.Fatalf("after restart: %d entries, want 4", len(after))
	}
	uids(t, after)
	if last := after[3]; last.Message != third.Message || last.UID != next {
		t.Errorf("new entry after restart = %+v, want message %d at UID %d (the old UIDNEXT)", last, third.Message, next)
	}
	if afterNext != next+1 {
		t.Errorf("UIDNEXT = %d, want %d", afterNext, next+1)
	}
}

// TestRestartKeepsTurnsLimitsAndValidity: what the conformance suite
// checks within one run of the engine holds across a restart: the
// round-robin turn goes on where it was, the acknowledgements counted
// against the daily limit and recorded for their conversations stay, and
// UIDVALIDITY stays as it was last set, a change of inboxes included.
func TestRestartKeepsTurnsLimitsAndValidity(t *testing.T) {
	dir := pg.DSN(t)
	ctx := t.Context()
	s := openTest(t, dir)
	rr := &store.RoundRobin{Agents: []string{"ann@support.example.com", "ben@support.example.com", "cy@support.example.com"}}
	turn := func(s *Store, id string) string {
		t.Helper()
		in := newInbound(inboxA, id, 1)
		in.AssignInTurn = rr
		return mustInbound(t, s, in).Assignee
	}
	if a, b := turn(s, "t1@example.com"), turn(s, "t2@example.com"); a != rr.Agents[0] || b != rr.Agents[1] {
		t.Fatalf("turns %q, %q", a, b)
	}
	acked := newConversation(t, s, "acked@customer.example")
	if got, err := s.QueueAutoAck(ctx, newAck(t, s, acked, "support@x.test", "gina@customer.example", at(2), 1)); err != nil || got != store.AutoAckQueued {
		t.Fatalf("QueueAutoAck = %v, %v", got, err)
	}
	viewA := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}}
	viewAB := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA, "billing@example.com"}}
	v1 := mustUIDValidity(t, s, viewA)
	v2 := mustUIDValidity(t, s, viewAB)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir)
	if c := turn(s, "t3@example.com"); c != rr.Agents[2] {
		t.Errorf("after a restart the turn is %q, want %q", c, rr.Agents[2])
	}
	if n, err := s.AutoAcksSent(ctx, "support@x.test", "gina@customer.example", at(3)); err != nil || n != 1 {
		t.Errorf("AutoAcksSent after a restart = %d, %v; want 1", n, err)
	}
	other := newConversation(t, s, "other@customer.example")
	if got, err := s.QueueAutoAck(ctx, newAck(t, s, other, "support@x.test", "gina@customer.example", at(3), 1)); err != nil || got != store.AutoAckLimitReached {
		t.Errorf("QueueAutoAck over the limit after a restart = %v, %v", got, err)
	}
	if _, found, err := s.AutoAckOf(ctx, acked); !found || err != nil {
		t.Errorf("AutoAckOf after a restart: %v, %v", found, err)
	}
	if v := mustUIDValidity(t, s, viewAB); v != v2 {
		t.Errorf("UIDVALIDITY after a restart = %d, want %d", v, v2)
	}
	if v := mustUIDValidity(t, s, viewA); v <= v2 || v <= v1 {
		t.Errorf("UIDVALIDITY back on the first inboxes after a restart = %d, want above %d", v, v2)
	}
}
