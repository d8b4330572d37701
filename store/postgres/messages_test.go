package postgres

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/supportgate/supportgate/store"
)

const (
	inboxA = "support@example.com"
	inboxB = "billing@example.com"
	agent  = "alice@support.example.com"
	agent2 = "bob@support.example.com"
)

func TestAddInboundNewConversation(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := t.Context()
	in := newInbound(inboxA, "first@example.com", 1)
	res := mustInbound(t, s, in)
	if res.Duplicate || res.Conversation <= 0 || res.Message <= 0 {
		t.Fatalf("AddInbound = %+v, want a new conversation and message", res)
	}
	conv, err := s.Conversation(ctx, res.Conversation)
	if err != nil {
		t.Fatal(err)
	}
	want := store.Conversation{ID: res.Conversation, Inbox: inboxA, Owner: in.Owner, Subject: in.Subject,
		Status: store.StatusOpen, Created: in.Received, Updated: in.Received}
	if !conv.Created.Equal(want.Created) || !conv.Updated.Equal(want.Updated) {
		t.Errorf("conversation times = %v, %v; want %v", conv.Created, conv.Updated, in.Received)
	}
	conv.Created, conv.Updated, want.Created, want.Updated = conv.Created.UTC(), conv.Updated.UTC(), want.Created.UTC(), want.Updated.UTC()
	if !reflect.DeepEqual(conv, want) {
		t.Errorf("Conversation = %+v, want %+v", conv, want)
	}
	m, err := s.Message(ctx, res.Message)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != res.Message || m.Conversation != res.Conversation || m.Kind != store.KindInbound || m.Sender != in.Sender ||
		m.MessageIDHeader != in.MessageIDHeader || !m.Received.Equal(in.Received) || m.Size != int64(len(in.Raw)) || m.HiddenBCC != nil {
		t.Errorf("Message = %+v, want the inbound message's metadata", m)
	}
	raw, err := s.MessageRaw(ctx, res.Message)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, in.Raw) {
		t.Errorf("MessageRaw = %q, want %q", raw, in.Raw)
	}

	// Another new conversation gets another number.
	other := mustInbound(t, s, newInbound(inboxA, "other@example.com", 2))
	if other.Conversation == res.Conversation || other.Message == res.Message {
		t.Errorf("second conversation %+v reuses numbers of %+v", other, res)
	}
}

func TestAddInboundThreadsAndKeepsBytes(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := t.Context()
	first := mustInbound(t, s, newInbound(inboxA, "first@example.com", 1))
	// Every byte value, in every position a codec could touch.
	var all []byte
	for i := 0; i < 256; i++ {
		all = append(all, byte(i))
	}
	raw := append(append([]byte("Subject: re\r\n\r\n"), all...), "\r\r\n\x00"...)
	second := mustInbound(t, s, store.Inbound{Inbox: inboxA, Conversation: first.Conversation, Sender: "colleague@example.com",
		MessageIDHeader: "second@example.com", SeenMessageIDs: []string{"first@example.com"}, Raw: raw, Received: at(5)})
	if second.Duplicate || second.Conversation != first.Conversation || second.Message == first.Message {
		t.Fatalf("threaded AddInbound = %+v, want a new message in %d", second, first.Conversation)
	}
	got, err := s.MessageRaw(ctx, second.Message)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, raw) {
		t.Errorf("MessageRaw = %q, want %q", got, raw)
	}
	m, err := s.Message(ctx, second.Message)
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != int64(len(raw)) || m.Conversation != first.Conversation || m.Sender != "colleague@example.com" {
		t.Errorf("Message = %+v", m)
	}
	conv, err := s.Conversation(ctx, first.Conversation)
	if err != nil {
		t.Fatal(err)
	}
	if !conv.Updated.Equal(at(5)) || !conv.Created.Equal(at(1)) {
		t.Errorf("conversation created %v updated %v, want %v and %v", conv.Created, conv.Updated, at(1), at(5))
	}
	// An older message (a late delivery) does not move Updated back.
	mustInbound(t, s, store.Inbound{Inbox: inboxA, Conversation: first.Conversation, Sender: "x@example.com",
		MessageIDHeader: "late@example.com", Raw: []byte("late"), Received: at(3)})
	if conv, err = s.Conversation(ctx, first.Conversation); err != nil || !conv.Updated.Equal(at(5)) {
		t.Errorf("after a late message: updated %v (%v), want %v", conv.Updated, err, at(5))
	}

	if _, err := s.MessageRaw(ctx, 9999); err == nil {
		t.Error("MessageRaw of a missing message succeeded")
	} else {
		wantNotFound(t, "MessageRaw(9999)", err)
	}
	_, err = s.Message(ctx, 9999)
	wantNotFound(t, "Message(9999)", err)
	_, err = s.Conversation(ctx, 9999)
	wantNotFound(t, "Conversation(9999)", err)
}

func TestConversationByMessageID(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := t.Context()
	c1 := mustInbound(t, s, newInbound(inboxA, "a@example.com", 1))
	in2 := newInbound(inboxA, "b@example.com", 2)
	in2.SeenMessageIDs = []string{"ref-b1@example.com", "ref-b2@example.com"}
	c2 := mustInbound(t, s, in2)
	noID := newInbound(inboxA, "", 3) // a message without Message-ID
	c3 := mustInbound(t, s, noID)
	if c1.Conversation == c2.Conversation || c3.Conversation == c2.Conversation {
		t.Fatal("conversations share a number")
	}

	for _, tc := range []struct {
		ids   []string
		conv  int64
		found bool
	}{
		{[]string{"a@example.com"}, c1.Conversation, true},
		{[]string{"b@example.com"}, c2.Conversation, true},
		{[]string{"ref-b2@example.com"}, c2.Conversation, true}, // by a reference only
		{[]string{"nope@example.com", "b@example.com", "a@example.com"}, c2.Conversation, true},
		{[]string{"a@example.com", "b@example.com"}, c1.Conversation, true},
		{[]string{"ref-b1@example.com", "a@example.com"}, c2.Conversation, true},
		{[]string{"", "a@example.com"}, c1.Conversation, true},
		{[]string{""}, 0, false}, // the message without Message-ID is not indexed under ""
		{[]string{"nope@example.com"}, 0, false},
		{[]string{"A@EXAMPLE.COM"}, 0, false}, // ids are compared exactly; normalising is the caller's job
		{nil, 0, false},
	} {
		conv, found, err := s.ConversationByMessageID(ctx, tc.ids)
		if err != nil || conv != tc.conv || found != tc.found {
			t.Errorf("ConversationByMessageID(%q) = %d, %v, %v; want %d, %v", tc.ids, conv, found, err, tc.conv, tc.found)
		}
	}
	// Two messages without a Message-ID are both stored (neither is a duplicate).
	again := mustInbound(t, s, store.Inbound{Inbox: inboxA, Conversation: c3.Conversation, Sender: "x@example.com", Raw: []byte("x"), Received: at(4)})
	if again.Duplicate {
		t.Error("a second message without Message-ID was taken for a duplicate")
	}
}

func TestAddInboundDuplicate(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := t.Context()
	view := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}}
	first := mustInbound(t, s, newInbound(inboxA, "dup@example.com", 1))
	entries, next := mustEntries(t, s, view)
	messages, convs := count(t, s, "messages"), count(t, s, "conversations")

	changes := s.Changes()
	// The same Message-ID again, even as a "new conversation" with other bytes.
	again := newInbound(inboxA, "dup@example.com", 2)
	again.Raw = []byte("different bytes")
	again.SeenMessageIDs = []string{"some-ref@example.com"}
	dup := mustInbound(t, s, again)
	if !dup.Duplicate || dup.Conversation != first.Conversation || dup.Message != first.Message {
		t.Fatalf("AddInbound of a duplicate = %+v, want Duplicate with %+v", dup, first)
	}
	// And threaded into the conversation.
	again.Conversation = first.Conversation
	if dup = mustInbound(t, s, again); !dup.Duplicate || dup.Message != first.Message {
		t.Fatalf("AddInbound of a threaded duplicate = %+v, want Duplicate with %+v", dup, first)
	}
	gotEntries, gotNext := mustEntries(t, s, view)
	if !reflect.DeepEqual(gotEntries, entries) || gotNext != next {
		t.Errorf("entries changed by a duplicate: %+v next %d, want %+v next %d", gotEntries, gotNext, entries, next)
	}
	if m, c := count(t, s, "messages"), count(t, s, "conversations"); m != messages || c != convs {
		t.Errorf("after duplicates: %d messages, %d conversations; want %d, %d", m, c, messages, convs)
	}
	if _, found, _ := s.ConversationByMessageID(ctx, []string{"some-ref@example.com"}); found {
		t.Error("a duplicate's references were indexed: nothing should have been written")
	}
	if raw, _ := s.MessageRaw(ctx, first.Message); !bytes.Equal(raw, rawMessage("dup@example.com")) {
		t.Errorf("the stored bytes changed: %q", raw)
	}
	if isClosed(changes) {
		t.Error("a duplicate published a change, but nothing changed")
	}
}

func TestReferenceRowGetsAttached(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := t.Context()
	// A reply arrives before the message it answers (e.g. it was Cc'd to us first).
	in := newInbound(inboxA, "reply@example.com", 1)
	in.SeenMessageIDs = []string{"original@example.com"}
	first := mustInbound(t, s, in)
	if conv, found, err := s.ConversationByMessageID(ctx, []string{"original@example.com"}); err != nil || !found || conv != first.Conversation {
		t.Fatalf("reference not indexed: %d, %v, %v", conv, found, err)
	}
	// The referenced message now arrives: it is not a duplicate of the reference ...
	original := mustInbound(t, s, store.Inbound{Inbox: inboxA, Conversation: first.Conversation, Sender: "customer@example.com",
		MessageIDHeader: "original@example.com", Raw: []byte("the original"), Received: at(2)})
	if original.Duplicate || original.Message == first.Message {
		t.Fatalf("the referenced message = %+v, want it stored as a new message", original)
	}
	var attached int64
	if err := s.pool.QueryRow(context.Background(), `SELECT message_id FROM message_ids WHERE message_id_header = $1`, "original@example.com").Scan(&attached); err != nil {
		t.Fatal(err)
	}
	if attached != original.Message {
		t.Errorf("index row attached to message %d, want %d", attached, original.Message)
	}
	// ... and once attached, it is found as a duplicate.
	dup := mustInbound(t, s, store.Inbound{Inbox: inboxA, Conversation: first.Conversation, Sender: "customer@example.com",
		MessageIDHeader: "original@example.com", Raw: []byte("the original"), Received: at(3)})
	if !dup.Duplicate || dup.Message != original.Message || dup.Conversation != first.Conversation {
		t.Errorf("re-delivery of the original = %+v, want a duplicate of %+v", dup, original)
	}
	// A later reference to an indexed id does not detach it.
	mustInbound(t, s, store.Inbound{Inbox: inboxA, Conversation: first.Conversation, Sender: "customer@example.com",
		MessageIDHeader: "later@example.com", SeenMessageIDs: []string{"original@example.com", "reply@example.com"},
		Raw: []byte("later"), Received: at(4)})
	dup = mustInbound(t, s, store.Inbound{Inbox: inboxA, Conversation: first.Conversation, Sender: "customer@example.com",
		MessageIDHeader: "original@example.com", Raw: []byte("the original"), Received: at(5)})
	if !dup.Duplicate || dup.Message != original.Message {
		t.Errorf("after a later reference: %+v, want a duplicate of %d", dup, original.Message)
	}
}

func TestAddInboundUnknownConversation(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := t.Context()
	mustInbound(t, s, newInbound(inboxA, "first@example.com", 1))
	messages, seq, ids := count(t, s, "messages"), sequence(t, s, "message"), count(t, s, "message_ids")
	changes := s.Changes()

	in := store.Inbound{Inbox: inboxA, Conversation: 4242, Sender: "x@example.com", MessageIDHeader: "lost@example.com",
		SeenMessageIDs: []string{"ref@example.com"}, Raw: []byte("x"), Received: at(2)}
	res, err := s.AddInbound(ctx, in)
	wantNotFound(t, "AddInbound into conversation 4242", err)
	if res != (store.InboundResult{}) {
		t.Errorf("failed AddInbound returned %+v", res)
	}
	if m, sq, i := count(t, s, "messages"), sequence(t, s, "message"), count(t, s, "message_ids"); m != messages || sq != seq || i != ids {
		t.Errorf("a failed AddInbound wrote: messages %d→%d, sequence %d→%d, index %d→%d", messages, m, seq, sq, ids, i)
	}
	if _, found, _ := s.ConversationByMessageID(ctx, []string{"lost@example.com", "ref@example.com"}); found {
		t.Error("a failed AddInbound indexed its Message-IDs")
	}
	if isClosed(changes) {
		t.Error("a failed AddInbound published a change")
	}
	// The id can still be stored properly later.
	in.Conversation = 0
	if res := mustInbound(t, s, in); res.Duplicate {
		t.Error("the Message-ID of a failed AddInbound is now taken for a duplicate")
	}
}

func TestAddOutboundNewConversation(t *testing.T) {
	s := openTest(t, pg.DSN(t))
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

	c, err := s.Conversation(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
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
	// A customer's answer to it threads, and the reserved numbers are not
	// handed out again by AddInbound.
	next := mustInbound(t, s, newInbound(inboxA, "other@example.com", 9))
	if next.Conversation == conv || next.Message == msg {
		t.Errorf("AddInbound reused reserved numbers: %+v (conversation %d, message %d)", next, conv, msg)
	}
}

func TestAddOutboundIsOneTransaction(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := t.Context()
	first := mustInbound(t, s, newInbound(inboxA, "first@example.com", 1))
	conv, err := s.NextConversationNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Reusing a stored message number makes the message insert fail after
	// the conversation insert: neither may remain.
	out := reply(first.Message, conv, agent, "customer@example.com")
	out.NewConversation = &store.NewConversation{Inbox: inboxA, Owner: "customer@example.com", Subject: "x"}
	out.NewParticipants = []string{"cc@example.com"}
	changes := s.Changes()
	if err := s.AddOutbound(ctx, out); err == nil {
		t.Fatal("AddOutbound with a taken message number succeeded")
	}
	_, err = s.Conversation(ctx, conv)
	wantNotFound(t, "the conversation of a failed AddOutbound", err)
	if n := len(mustPending(t, s, 10)); n != 0 {
		t.Errorf("a failed AddOutbound queued %d messages", n)
	}
	if n := count(t, s, "participants"); n != 0 {
		t.Errorf("a failed AddOutbound added %d participants", n)
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

func TestAddOutboundQueuesReplies(t *testing.T) {
	s := openTest(t, pg.DSN(t))
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

func TestPendingDeliveriesOrderAndLimit(t *testing.T) {
	s := openTest(t, pg.DSN(t))
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
	if err := s.MarkDelivered(ctx, all[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered(ctx, all[2].ID); err != nil {
		t.Fatal(err)
	}
	if got := messagesOfDeliveries(mustPending(t, s, 2)); !slices.Equal(got, []int64{msgs[1], msgs[3]}) {
		t.Errorf("after delivering the 1st and 3rd: PendingDeliveries(2) = messages %v, want %v", got, []int64{msgs[1], msgs[3]})
	}
}

func TestNewParticipantsAddedOnceInOrder(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := t.Context()
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
	c, err := s.Conversation(ctx, first.Conversation)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"c@example.com", "a@example.com", "b@example.com", "d@example.com"}; !slices.Equal(c.Participants, want) {
		t.Errorf("Participants = %q, want %q", c.Participants, want)
	}
}

func TestAuthorHasSeenOwnMessage(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	first := mustInbound(t, s, newInbound(inboxA, "first@example.com", 1))
	replyMsg := mustReserve(t, s)
	mustOutbound(t, s, reply(replyMsg, first.Conversation, agent, "customer@example.com"))
	noteMsg := mustReserve(t, s)
	note := reply(noteMsg, first.Conversation, agent2)
	note.Kind = store.KindNote
	mustOutbound(t, s, note)

	seen := func(who string) map[int64]bool {
		entries, _ := mustEntries(t, s, store.MailboxView{Agent: who, Folder: store.FolderInbox, Inboxes: []string{inboxA}})
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

func TestNumbersAreUnique(t *testing.T) {
	s := openTest(t, pg.DSN(t))
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

// A message that was first seen as a reference of a message in conversation X
// may itself arrive unthreaded and start conversation Y. Re-delivering it must
// report where it is stored (Y), not where the reference was seen.
func TestDuplicateReportsTheStoredConversation(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := t.Context()
	in := newInbound(inboxA, "reply@example.com", 1)
	in.SeenMessageIDs = []string{"original@example.com"}
	x := mustInbound(t, s, in)
	original := newInbound(inboxA, "original@example.com", 2) // no references: a new conversation
	y := mustInbound(t, s, original)
	if y.Duplicate || y.Conversation == x.Conversation {
		t.Fatalf("the original = %+v, want a new conversation beside %d", y, x.Conversation)
	}
	if m, err := s.Message(ctx, y.Message); err != nil || m.Conversation != y.Conversation {
		t.Fatalf("Message(%d) = %+v, %v", y.Message, m, err)
	}
	dup := mustInbound(t, s, original)
	if !dup.Duplicate || dup.Message != y.Message || dup.Conversation != y.Conversation {
		t.Errorf("re-delivery = %+v, want a duplicate of message %d in conversation %d", dup, y.Message, y.Conversation)
	}
}
