package storetest

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// Agents' messages: recorded and queued in one transaction (DESIGN.md §5),
// and the numbers reserved for them.
func outboundCases() []testCase {
	return []testCase{
		{"AddOutboundNewConversation", testAddOutboundNewConversation},
		{"AddOutboundIsOneTransaction", testAddOutboundIsOneTransaction},
		{"AddOutboundQueuesReplies", testAddOutboundQueuesReplies},
		{"PendingDeliveriesOrderAndLimit", testPendingDeliveriesOrderAndLimit},
		{"NewParticipantsAddedOnceInOrder", testNewParticipantsAddedOnceInOrder},
		{"AuthorHasSeenOwnMessage", testAuthorHasSeenOwnMessage},
		{"DuplicateSubmission", testDuplicateSubmission},
		{"NumbersAreUnique", testNumbersAreUnique},
	}
}

func testAddOutboundNewConversation(t *testing.T, s store.Store) {
	ctx := t.Context()
	conv, err := s.NextConversationNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msg := mustReserve(t, s)
	out := reply(msg, conv, agent, "customer@example.com", "cc@example.com")
	out.NewConversation = &store.NewConversation{Inbox: inboxA, Owner: "customer@example.com", Subject: "We noticed something"}
	out.NewParticipants = []string{"cc@example.com"}
	out.HiddenBCC = []string{"bcc@example.com"}
	mustOutbound(t, s, out)

	c := mustConversation(t, s, conv)
	if c.Inbox != inboxA || c.Owner != "customer@example.com" || c.Subject != "We noticed something" || c.Status != store.StatusOpen ||
		!c.Created.Equal(out.Received) || !slices.Equal(c.Participants, []string{"cc@example.com"}) {
		t.Errorf("Conversation = %+v", c)
	}
	m, err := s.Message(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	if m.Conversation != conv || m.Kind != store.KindReply || m.Sender != agent || m.MessageIDHeader != out.MessageIDHeader ||
		m.Size != int64(len(out.Raw)) || !slices.Equal(m.HiddenBCC, out.HiddenBCC) {
		t.Errorf("Message = %+v", m)
	}
	if got, found, err := s.ConversationByMessageID(ctx, []string{out.MessageIDHeader}); err != nil || !found || got != conv {
		t.Errorf("the reply's Message-ID is not indexed: %d, %v, %v", got, found, err)
	}
	// The reserved numbers are not handed out again by AddInbound.
	next := mustInbound(t, s, newInbound(inboxA, "other@example.com", 9))
	if next.Conversation == conv || next.Message == msg {
		t.Errorf("AddInbound reused reserved numbers: %+v (conversation %d, message %d)", next, conv, msg)
	}
}

func testAddOutboundIsOneTransaction(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := mustInbound(t, s, newInbound(inboxA, "first@example.com", 1))
	conv, err := s.NextConversationNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Reusing a stored message number makes the message's write fail after
	// the conversation's: neither may remain.
	out := reply(first.Message, conv, agent, "customer@example.com")
	out.NewConversation = &store.NewConversation{Inbox: inboxA, Owner: "customer@example.com", Subject: "x"}
	out.NewParticipants = []string{"cc@example.com"}
	changes := changesOf(t, s)
	if err := s.AddOutbound(ctx, out); err == nil {
		t.Fatal("AddOutbound with a taken message number succeeded")
	}
	_, err = s.Conversation(ctx, conv)
	wantNotFound(t, "the conversation of a failed AddOutbound", err)
	if n := len(mustPending(t, s, 10)); n != 0 {
		t.Errorf("a failed AddOutbound queued %d messages", n)
	}
	if _, found, _ := s.ConversationByMessageID(ctx, []string{out.MessageIDHeader}); found {
		t.Error("a failed AddOutbound indexed its Message-ID")
	}
	if isClosed(changes) {
		t.Error("a failed AddOutbound published a change")
	}

	// Without NewConversation, the conversation must exist.
	msg := mustReserve(t, s)
	err = s.AddOutbound(ctx, reply(msg, 4242, agent, "customer@example.com"))
	wantNotFound(t, "AddOutbound into conversation 4242", err)
	if _, err := s.Message(ctx, msg); err == nil {
		t.Error("a failed AddOutbound stored its message")
	}
	if n := len(mustPending(t, s, 10)); n != 0 {
		t.Errorf("a failed AddOutbound queued %d messages", n)
	}
}

func testAddOutboundQueuesReplies(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := mustInbound(t, s, newInbound(inboxA, "first@example.com", 1))
	msg := mustReserve(t, s)
	out := reply(msg, first.Conversation, agent, "customer@example.com", "cc@example.com")
	mustOutbound(t, s, out)

	pending := mustPending(t, s, 10)
	if len(pending) != 1 {
		t.Fatalf("PendingDeliveries = %+v, want one", pending)
	}
	d := pending[0]
	if d.ID <= 0 || d.Message != msg || d.MailFrom != out.MailFrom || !bytes.Equal(d.Raw, out.Raw) {
		t.Errorf("Delivery = %+v, want message %d from %q with its exact bytes", d, msg, out.MailFrom)
	}
	// The order of recipients is not part of the contract.
	rcpts := slices.Sorted(slices.Values(d.Recipients))
	if want := slices.Sorted(slices.Values(out.Recipients)); !slices.Equal(rcpts, want) {
		t.Errorf("Recipients = %q, want %q", d.Recipients, want)
	}

	// A note is recorded but never queued, whatever recipients it names.
	noteMsg := mustReserve(t, s)
	note := reply(noteMsg, first.Conversation, agent, "customer@example.com")
	note.Kind = store.KindNote
	mustOutbound(t, s, note)
	if m, err := s.Message(ctx, noteMsg); err != nil || m.Kind != store.KindNote {
		t.Errorf("note = %+v, %v", m, err)
	}
	// A reply without recipients has nothing to queue.
	bare := mustReserve(t, s)
	mustOutbound(t, s, reply(bare, first.Conversation, agent))
	if got := mustPending(t, s, 10); len(got) != 1 || got[0].Message != msg {
		t.Errorf("after a note and a recipient-less reply: PendingDeliveries = %+v, want only message %d", got, msg)
	}

	if err := s.MarkDelivered(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if got := mustPending(t, s, 10); len(got) != 0 {
		t.Errorf("after MarkDelivered: PendingDeliveries = %+v", got)
	}
	// Marking again, or an unknown id, does no harm.
	if err := s.MarkDelivered(ctx, d.ID); err != nil {
		t.Errorf("MarkDelivered twice: %v", err)
	}
	if err := s.MarkDelivered(ctx, 9999); err != nil {
		t.Errorf("MarkDelivered(9999): %v", err)
	}
}

func testPendingDeliveriesOrderAndLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := mustInbound(t, s, newInbound(inboxA, "first@example.com", 1))
	var msgs []int64
	for i := 0; i < 5; i++ {
		msg := mustReserve(t, s)
		mustOutbound(t, s, reply(msg, first.Conversation, agent, "customer@example.com", "second@example.com"))
		msgs = append(msgs, msg)
	}
	messagesOfDeliveries := func(l []store.Delivery) []int64 {
		var out []int64
		for i, d := range l {
			if i > 0 && d.ID <= l[i-1].ID {
				t.Errorf("queue ids do not ascend: %d after %d", d.ID, l[i-1].ID)
			}
			if len(d.Recipients) != 2 {
				t.Errorf("delivery %d has recipients %q, want 2", d.ID, d.Recipients)
			}
			out = append(out, d.Message)
		}
		return out
	}
	all := mustPending(t, s, 100)
	if got := messagesOfDeliveries(all); !slices.Equal(got, msgs) {
		t.Fatalf("PendingDeliveries(100) = messages %v, want %v", got, msgs)
	}
	if got := messagesOfDeliveries(mustPending(t, s, 2)); !slices.Equal(got, msgs[:2]) {
		t.Errorf("PendingDeliveries(2) = messages %v, want %v (the limit counts messages, not recipients)", got, msgs[:2])
	}
	if got := mustPending(t, s, 0); len(got) != 0 {
		t.Errorf("PendingDeliveries(0) = %+v", got)
	}
	for _, i := range []int{0, 2} {
		if err := s.MarkDelivered(ctx, all[i].ID); err != nil {
			t.Fatal(err)
		}
	}
	if got := messagesOfDeliveries(mustPending(t, s, 2)); !slices.Equal(got, []int64{msgs[1], msgs[3]}) {
		t.Errorf("after delivering the 1st and 3rd: PendingDeliveries(2) = messages %v, want %v", got, []int64{msgs[1], msgs[3]})
	}
}

func testNewParticipantsAddedOnceInOrder(t *testing.T, s store.Store) {
	first := mustInbound(t, s, newInbound(inboxA, "first@example.com", 1))
	add := func(participants ...string) {
		t.Helper()
		out := reply(mustReserve(t, s), first.Conversation, agent, "customer@example.com")
		out.NewParticipants = participants
		mustOutbound(t, s, out)
	}
	add("c@example.com", "a@example.com")
	add("a@example.com", "b@example.com", "b@example.com")
	add()
	add("c@example.com", "d@example.com")
	c := mustConversation(t, s, first.Conversation)
	if want := []string{"c@example.com", "a@example.com", "b@example.com", "d@example.com"}; !slices.Equal(c.Participants, want) {
		t.Errorf("Participants = %q, want %q", c.Participants, want)
	}
}

func testAuthorHasSeenOwnMessage(t *testing.T, s store.Store) {
	first := mustInbound(t, s, newInbound(inboxA, "first@example.com", 1))
	replyMsg := mustReserve(t, s)
	mustOutbound(t, s, reply(replyMsg, first.Conversation, agent, "customer@example.com"))
	noteMsg := mustReserve(t, s)
	note := reply(noteMsg, first.Conversation, agent2)
	note.Kind = store.KindNote
	mustOutbound(t, s, note)

	seen := func(who string) map[int64]bool {
		entries, _ := mustEntries(t, s, inboxView(who, inboxA))
		m := map[int64]bool{}
		for _, e := range entries {
			m[e.Message] = e.Seen
		}
		return m
	}
	if got, want := seen(agent), map[int64]bool{first.Message: false, replyMsg: true, noteMsg: false}; !reflect.DeepEqual(got, want) {
		t.Errorf("%s sees %v, want %v", agent, got, want)
	}
	if got, want := seen(agent2), map[int64]bool{first.Message: false, replyMsg: false, noteMsg: true}; !reflect.DeepEqual(got, want) {
		t.Errorf("%s sees %v, want %v", agent2, got, want)
	}
}

func testNumbersAreUnique(t *testing.T, s store.Store) {
	ctx := t.Context()
	seen := map[int64]bool{}
	for i := 0; i < 5; i++ {
		n := mustReserve(t, s)
		if seen[n] {
			t.Fatalf("NextMessageNumber returned %d twice", n)
		}
		seen[n] = true
		res := mustInbound(t, s, newInbound(inboxA, "", i))
		if seen[res.Message] {
			t.Fatalf("AddInbound used message number %d, already reserved or used", res.Message)
		}
		seen[res.Message] = true
	}
	convs := map[int64]bool{}
	for i := 0; i < 3; i++ {
		c, err := s.NextConversationNumber(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res := mustInbound(t, s, newInbound(inboxA, "", 10+i))
		if convs[c] || convs[res.Conversation] || c == res.Conversation {
			t.Fatalf("conversation numbers repeat: %d, %d in %v", c, res.Conversation, convs)
		}
		convs[c], convs[res.Conversation] = true, true
	}
}

// testDuplicateSubmission: a message an agent's client submits twice
// (the same Message-ID of the client's) is recorded once; Submitted finds
// it, for that agent only.
func testDuplicateSubmission(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := mustInbound(t, s, newInbound(inboxA, "first@example.com", 1))
	out := reply(mustReserve(t, s), first.Conversation, agent, "customer@example.com")
	out.ClientMessageID = "client-1@laptop.example"
	mustOutbound(t, s, out)
	if m, found, err := s.Submitted(ctx, agent, out.ClientMessageID); err != nil || !found || m.ID != out.Message {
		t.Fatalf("Submitted = %+v, %v, %v; want message %d", m, found, err, out.Message)
	}
	if _, found, err := s.Submitted(ctx, agent2, out.ClientMessageID); err != nil || found {
		t.Errorf("Submitted by another agent = %v, %v; want none", found, err)
	}
	again := reply(mustReserve(t, s), first.Conversation, agent, "customer@example.com")
	again.ClientMessageID = out.ClientMessageID
	if err := s.AddOutbound(ctx, again); !errors.Is(err, store.ErrDuplicateSubmission) {
		t.Fatalf("the second submission: %v, want ErrDuplicateSubmission", err)
	}
	if _, err := s.Message(ctx, again.Message); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the second submission was recorded: %v", err)
	}
	if d := mustPending(t, s, 10); len(d) != 1 {
		t.Errorf("%d deliveries queued, want 1", len(d))
	}
	// Another agent's client may use the same Message-ID.
	other := reply(mustReserve(t, s), first.Conversation, agent2, "customer@example.com")
	other.ClientMessageID = out.ClientMessageID
	mustOutbound(t, s, other)
}
