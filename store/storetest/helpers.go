package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/supportgate/supportgate/store"
)

// Names the tests share.
const (
	inboxA = "support@example.com"
	inboxB = "billing@example.com"
	agent  = "alice@support.example.com"
	agent2 = "bob@support.example.com"
)

// rawMessage returns message bytes that a careless store would mangle: a NUL,
// a bare CR, a bare LF, 8-bit bytes that are not UTF-8 and trailing spaces.
func rawMessage(tag string) []byte {
	return []byte("From: customer@example.com\r\nSubject: " + tag + "\r\n\r\n" +
		"nul:\x00:end\r\nbare cr:\r:end\nbare lf\n8bit:\xff\xfe\x80\xc3(\r\ntrailing   \r\n" + tag + "\r\n")
}

// at returns a fixed instant, a whole number of milliseconds (what an
// engine must keep at least).
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

// into is an inbound message into conversation conv.
func into(conv int64, inbox, messageID string, n int) store.Inbound {
	in := newInbound(inbox, messageID, n)
	in.Conversation = conv
	return in
}

// mustInbound stores in and fails the test on error.
func mustInbound(t T, s store.Store, in store.Inbound) store.InboundResult {
	t.Helper()
	res, err := s.AddInbound(t.Context(), in)
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
func mustReserve(t T, s store.Store) int64 {
	t.Helper()
	n, err := s.NextMessageNumber(t.Context())
	if err != nil {
		t.Fatalf("NextMessageNumber: %v", err)
	}
	return n
}

// mustOutbound records out and fails the test on error.
func mustOutbound(t T, s store.Store, out store.Outbound) {
	t.Helper()
	if err := s.AddOutbound(t.Context(), out); err != nil {
		t.Fatalf("AddOutbound(message %d): %v", out.Message, err)
	}
}

// mustUpdate applies u and fails the test on error.
func mustUpdate(t T, s store.Store, u store.ConversationUpdate) {
	t.Helper()
	if err := s.UpdateConversation(t.Context(), u); err != nil {
		t.Fatalf("UpdateConversation(%+v): %v", u, err)
	}
}

// setStatus, setAssignee and addTags are the quick actions through
// UpdateConversation.
func setStatus(conv int64, st store.Status) store.ConversationUpdate {
	return store.ConversationUpdate{Conversation: conv, Status: &st}
}

func setAssignee(conv int64, who string) store.ConversationUpdate {
	return store.ConversationUpdate{Conversation: conv, Assignee: &who}
}

func addTags(conv int64, tags ...string) store.ConversationUpdate {
	return store.ConversationUpdate{Conversation: conv, AddTags: tags}
}

// mustConversation reads a conversation and fails the test on error.
func mustConversation(t T, s store.Store, id int64) store.Conversation {
	t.Helper()
	c, err := s.Conversation(t.Context(), id)
	if err != nil {
		t.Fatalf("Conversation(%d): %v", id, err)
	}
	return c
}

// mustEntries lists a view and fails the test on error.
func mustEntries(t T, s store.Store, view store.MailboxView) ([]store.MailboxEntry, uint32) {
	t.Helper()
	e, next, err := s.Entries(t.Context(), view)
	if err != nil {
		t.Fatalf("Entries(%+v): %v", view, err)
	}
	return e, next
}

func mustUIDValidity(t T, s store.Store, view store.MailboxView) uint32 {
	t.Helper()
	v, err := s.UIDValidity(t.Context(), view)
	if err != nil {
		t.Fatalf("UIDValidity(%+v): %v", view, err)
	}
	if v == 0 {
		t.Fatalf("UIDValidity(%+v) = 0, RFC 9051 requires a nonzero value", view)
	}
	return v
}

func mustPending(t T, s store.Store, limit int) []store.Delivery {
	t.Helper()
	d, err := s.PendingDeliveries(t.Context(), limit)
	if err != nil {
		t.Fatalf("PendingDeliveries(%d): %v", limit, err)
	}
	return d
}

// inboxView is an agent's INBOX of inboxes.
func inboxView(who string, inboxes ...string) store.MailboxView {
	return store.MailboxView{Agent: who, Folder: store.FolderInbox, Inboxes: inboxes}
}

// uids returns the UIDs of entries, checking that they strictly ascend.
func uids(t T, entries []store.MailboxEntry) []uint32 {
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

func messagesOf(entries []store.MailboxEntry) []int64 {
	var l []int64
	for _, e := range entries {
		l = append(l, e.Message)
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

func wantNotFound(t T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: err = %v, want one wrapping ErrNotFound", what, err)
	}
}

// foldersOf returns the shared folders, in SharedFolders order, whose view
// of inbox by who shows message msg (Mine: who is the assignee).
func foldersOf(t T, s store.Store, inbox, who string, msg int64) []store.Folder {
	t.Helper()
	var out []store.Folder
	for _, f := range store.SharedFolders() {
		entries, _ := mustEntries(t, s, store.MailboxView{Agent: who, Folder: f, Inboxes: []string{inbox}})
		if slices.Contains(messagesOf(entries), msg) {
			out = append(out, f)
		}
	}
	return out
}

// conversationCount counts the stored conversations of every status.
func conversationCount(t T, s store.Store) int {
	t.Helper()
	l, _, err := s.ListConversations(t.Context(), "", 0, 1<<20)
	if err != nil {
		t.Fatalf("ListConversations: %v", err)
	}
	return len(l)
}

// eventsOfType counts a conversation's events of type typ.
func eventsOfType(t T, s store.Store, conv int64, typ string) int {
	t.Helper()
	evs, err := s.Events(t.Context(), conv)
	if err != nil {
		t.Fatalf("Events(%d): %v", conv, err)
	}
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// applyChanges is what a reader does with an incremental read
// (store.FolderChanges): prev without the replaced conversations' entries,
// the replacements merged in by UID, then the new entries.
func applyChanges(prev []store.MailboxEntry, c store.FolderChanges) []store.MailboxEntry {
	if c.Full {
		return c.Entries
	}
	var kept []store.MailboxEntry
	for _, e := range prev {
		if !c.Replaced[e.Conversation] {
			kept = append(kept, e)
		}
	}
	out := append(kept, c.Replacements...)
	slices.SortFunc(out, func(a, b store.MailboxEntry) int { return cmp.Compare(a.UID, b.UID) })
	return append(out, c.Entries...)
}

// changesOf returns a channel closed at the next change s commits after the
// call: a subscription to every change, closed when the test ends.
func changesOf(t T, s store.Store) <-chan struct{} {
	sub := s.Subscribe(store.Filter{All: true})
	t.Cleanup(sub.Close)
	return sub.Changed()
}
