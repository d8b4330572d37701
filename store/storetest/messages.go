package storetest

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// Inbound messages, threading and the Message-ID index (DESIGN.md §3, §4).
func messageCases() []testCase {
	return []testCase{
		{"AddInboundNewConversation", testAddInboundNewConversation},
		{"AddInboundThreadsAndKeepsBytes", testAddInboundThreadsAndKeepsBytes},
		{"ConversationByMessageID", testConversationByMessageID},
		{"AddInboundDuplicate", testAddInboundDuplicate},
		{"ReferenceGetsAttached", testReferenceGetsAttached},
		{"AddInboundUnknownConversation", testAddInboundUnknownConversation},
		{"DuplicateReportsTheStoredConversation", testDuplicateReportsTheStoredConversation},
	}
}

func testAddInboundNewConversation(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := newInbound(inboxA, "first@example.com", 1)
	res := mustInbound(t, s, in)
	if res.Duplicate || res.Conversation <= 0 || res.Message <= 0 {
		t.Fatalf("AddInbound = %+v, want a new conversation and message", res)
	}
	conv := mustConversation(t, s, res.Conversation)
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
	if byID, err := s.MessageByHeaderID(ctx, in.MessageIDHeader); err != nil || byID.ID != res.Message {
		t.Errorf("MessageByHeaderID = %+v, %v; want message %d", byID, err, res.Message)
	}

	// Another new conversation gets another number.
	other := mustInbound(t, s, newInbound(inboxA, "other@example.com", 2))
	if other.Conversation == res.Conversation || other.Message == res.Message {
		t.Errorf("second conversation %+v reuses numbers of %+v", other, res)
	}
}

func testAddInboundThreadsAndKeepsBytes(t *testing.T, s store.Store) {
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
	conv := mustConversation(t, s, first.Conversation)
	if !conv.Updated.Equal(at(5)) || !conv.Created.Equal(at(1)) {
		t.Errorf("conversation created %v updated %v, want %v and %v", conv.Created, conv.Updated, at(1), at(5))
	}
	// An older message (a late delivery) does not move Updated back.
	mustInbound(t, s, store.Inbound{Inbox: inboxA, Conversation: first.Conversation, Sender: "x@example.com",
		MessageIDHeader: "late@example.com", Raw: []byte("late"), Received: at(3)})
	if conv, err = s.Conversation(ctx, first.Conversation); err != nil || !conv.Updated.Equal(at(5)) {
		t.Errorf("after a late message: updated %v (%v), want %v", conv.Updated, err, at(5))
	}

	_, err = s.MessageRaw(ctx, 9999)
	wantNotFound(t, "MessageRaw(9999)", err)
	_, err = s.Message(ctx, 9999)
	wantNotFound(t, "Message(9999)", err)
	_, err = s.Conversation(ctx, 9999)
	wantNotFound(t, "Conversation(9999)", err)
	_, err = s.MessageByHeaderID(ctx, "nobody@example.com")
	wantNotFound(t, "MessageByHeaderID(nobody)", err)
}

func testConversationByMessageID(t *testing.T, s store.Store) {
	ctx := t.Context()
	c1 := mustInbound(t, s, newInbound(inboxA, "a@example.com", 1))
	in2 := newInbound(inboxA, "b@example.com", 2)
	in2.SeenMessageIDs = []string{"ref-b1@example.com", "ref-b2@example.com"}
	c2 := mustInbound(t, s, in2)
	c3 := mustInbound(t, s, newInbound(inboxA, "", 3)) // a message without Message-ID
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

func testAddInboundDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	view := inboxView(agent, inboxA)
	first := mustInbound(t, s, newInbound(inboxA, "dup@example.com", 1))
	entries, next := mustEntries(t, s, view)
	convs := conversationCount(t, s)
	msgs, err := s.ConversationMessages(ctx, first.Conversation)
	if err != nil {
		t.Fatal(err)
	}

	changes := changesOf(t, s)
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
	if c := conversationCount(t, s); c != convs {
		t.Errorf("after duplicates: %d conversations; want %d", c, convs)
	}
	if got, err := s.ConversationMessages(ctx, first.Conversation); err != nil || len(got) != len(msgs) {
		t.Errorf("after duplicates: %d messages (%v), want %d", len(got), err, len(msgs))
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

func testReferenceGetsAttached(t *testing.T, s store.Store) {
	ctx := t.Context()
	// A reply arrives before the message it answers (e.g. it was Cc'd to us first).
	in := newInbound(inboxA, "reply@example.com", 1)
	in.SeenMessageIDs = []string{"original@example.com"}
	first := mustInbound(t, s, in)
	if conv, found, err := s.ConversationByMessageID(ctx, []string{"original@example.com"}); err != nil || !found || conv != first.Conversation {
		t.Fatalf("reference not indexed: %d, %v, %v", conv, found, err)
	}
	if _, err := s.MessageByHeaderID(ctx, "original@example.com"); err == nil {
		t.Error("a Message-ID only referenced is found as a stored message")
	}
	// The referenced message now arrives: it is not a duplicate of the reference ...
	original := mustInbound(t, s, store.Inbound{Inbox: inboxA, Conversation: first.Conversation, Sender: "customer@example.com",
		MessageIDHeader: "original@example.com", Raw: []byte("the original"), Received: at(2)})
	if original.Duplicate || original.Message == first.Message {
		t.Fatalf("the referenced message = %+v, want it stored as a new message", original)
	}
	if m, err := s.MessageByHeaderID(ctx, "original@example.com"); err != nil || m.ID != original.Message {
		t.Errorf("MessageByHeaderID(original) = %+v, %v; want message %d", m, err, original.Message)
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

func testAddInboundUnknownConversation(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustInbound(t, s, newInbound(inboxA, "first@example.com", 1))
	convs := conversationCount(t, s)
	entries, _ := mustEntries(t, s, inboxView(agent, inboxA))
	changes := changesOf(t, s)

	in := store.Inbound{Inbox: inboxA, Conversation: 4242, Sender: "x@example.com", MessageIDHeader: "lost@example.com",
		SeenMessageIDs: []string{"ref@example.com"}, Raw: []byte("x"), Received: at(2)}
	res, err := s.AddInbound(ctx, in)
	wantNotFound(t, "AddInbound into conversation 4242", err)
	if res != (store.InboundResult{}) {
		t.Errorf("failed AddInbound returned %+v", res)
	}
	if _, err := s.MessageByHeaderID(ctx, "lost@example.com"); err == nil {
		t.Error("a failed AddInbound stored its message")
	}
	if c := conversationCount(t, s); c != convs {
		t.Errorf("a failed AddInbound changed the conversations: %d, want %d", c, convs)
	}
	if got, _ := mustEntries(t, s, inboxView(agent, inboxA)); !reflect.DeepEqual(got, entries) {
		t.Errorf("a failed AddInbound changed INBOX: %+v, want %+v", got, entries)
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

// A message that was first seen as a reference of a message in conversation X
// may itself arrive unthreaded and start conversation Y. Re-delivering it must
// report where it is stored (Y), not where the reference was seen.
func testDuplicateReportsTheStoredConversation(t *testing.T, s store.Store) {
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
