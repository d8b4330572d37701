package storetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// The shared folders' views, UIDs, UIDVALIDITY and \Seen (DESIGN.md §6,
// §13 "UIDs without a row per agent").
func mailboxCases() []testCase {
	return []testCase{
		{"EntriesPerView", testEntriesPerView},
		{"EntriesEmptyStore", testEntriesEmptyStore},
		{"UIDsAscendAcrossInboxesAndAreNeverReused", testUIDsAscendAcrossInboxes},
		{"UIDValidity", testUIDValidity},
		{"SetSeenPerAgent", testSetSeenPerAgent},
		{"StatusMovesEntries", testStatusMovesEntries},
		{"SharedFoldersFollowStatusAndAssignee", testSharedFoldersFollowStatusAndAssignee},
	}
}

func testEntriesPerView(t *testing.T, s store.Store) {
	a1 := mustInbound(t, s, newInbound(inboxA, "a1@example.com", 1))
	b1 := mustInbound(t, s, newInbound(inboxB, "b1@example.com", 2))
	a2 := mustInbound(t, s, store.Inbound{Inbox: inboxA, Conversation: a1.Conversation, Sender: "customer@example.com",
		MessageIDHeader: "a2@example.com", Raw: []byte("short"), Received: at(3)})
	replyMsg := mustReserve(t, s)
	out := reply(replyMsg, b1.Conversation, agent, "customer@example.com", "hidden@example.com")
	out.HiddenBCC = []string{"hidden@example.com", "hidden2@example.com"}
	mustOutbound(t, s, out)
	noteMsg := mustReserve(t, s)
	note := reply(noteMsg, a1.Conversation, agent2)
	note.Kind = store.KindNote
	note.Raw = []byte("internal")
	mustOutbound(t, s, note)
	// An inbound message into conversation a1 with Inbox naming B: the entry
	// follows the conversation's inbox, not the field.
	a3 := mustInbound(t, s, store.Inbound{Inbox: inboxB, Conversation: a1.Conversation, Sender: "customer@example.com",
		MessageIDHeader: "a3@example.com", Raw: []byte("a3"), Received: at(4)})

	entries, next := mustEntries(t, s, inboxView(agent, inboxA))
	if got, want := messagesOf(entries), []int64{a1.Message, a2.Message, noteMsg, a3.Message}; !slices.Equal(got, want) {
		t.Fatalf("view of %s = messages %v, want %v", inboxA, got, want)
	}
	checkUIDs(t, entries, next)
	compareEntries(t, entries, []store.MailboxEntry{
		{Message: a1.Message, Conversation: a1.Conversation, Kind: store.KindInbound, Size: int64(len(rawMessage("a1@example.com"))), Received: at(1)},
		{Message: a2.Message, Conversation: a1.Conversation, Kind: store.KindInbound, Size: 5, Received: at(3)},
		{Message: noteMsg, Conversation: a1.Conversation, Kind: store.KindNote, Size: 8, Received: note.Received},
		{Message: a3.Message, Conversation: a1.Conversation, Kind: store.KindInbound, Size: 2, Received: at(4)},
	})

	entries, nextB := mustEntries(t, s, inboxView(agent, inboxB))
	if nextB != next {
		t.Errorf("UIDNEXT differs between views: %d and %d", nextB, next)
	}
	checkUIDs(t, entries, nextB)
	compareEntries(t, entries, []store.MailboxEntry{
		{Message: b1.Message, Conversation: b1.Conversation, Kind: store.KindInbound, Size: int64(len(rawMessage("b1@example.com"))), Received: at(2)},
		{Message: replyMsg, Conversation: b1.Conversation, Kind: store.KindReply, Size: int64(len(out.Raw)), Received: out.Received,
			HiddenBCC: out.HiddenBCC, Seen: true},
	})

	entries, nextBoth := mustEntries(t, s, inboxView(agent, inboxB, inboxA))
	checkUIDs(t, entries, nextBoth)
	if got, want := messagesOf(entries), []int64{a1.Message, b1.Message, a2.Message, replyMsg, noteMsg, a3.Message}; !slices.Equal(got, want) {
		t.Errorf("view of both = messages %v, want %v (arrival order)", got, want)
	}

	entries, nextNone := mustEntries(t, s, inboxView(agent))
	if len(entries) != 0 {
		t.Errorf("view of no inbox = %+v, want nothing", entries)
	}
	if nextNone != next {
		t.Errorf("UIDNEXT of an empty view = %d, want %d", nextNone, next)
	}
	if entries, _ := mustEntries(t, s, inboxView(agent, "nobody@example.com")); len(entries) != 0 {
		t.Errorf("view of an unknown inbox = %+v", entries)
	}
}

func testEntriesEmptyStore(t *testing.T, s store.Store) {
	for _, view := range []store.MailboxView{inboxView(agent, inboxA), inboxView(agent)} {
		entries, next := mustEntries(t, s, view)
		if len(entries) != 0 || next != 1 {
			t.Errorf("empty store, view %v: %d entries, UIDNEXT %d; want none and 1", view.Inboxes, len(entries), next)
		}
	}
}

// checkUIDs checks that UIDs ascend, are nonzero and are all below UIDNEXT.
func checkUIDs(t *testing.T, entries []store.MailboxEntry, next uint32) {
	t.Helper()
	for _, u := range uids(t, entries) {
		if u == 0 || u >= next {
			t.Errorf("UID %d, UIDNEXT %d", u, next)
		}
	}
}

// compareEntries compares entries with want, ignoring UIDs.
func compareEntries(t *testing.T, got, want []store.MailboxEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Message != w.Message || g.Conversation != w.Conversation || g.Kind != w.Kind || g.Size != w.Size ||
			!g.Received.Equal(w.Received) || !slices.Equal(g.HiddenBCC, w.HiddenBCC) || g.Seen != w.Seen {
			t.Errorf("entry %d = %+v, want %+v", i, g, w)
		}
	}
}

func testUIDsAscendAcrossInboxes(t *testing.T, s store.Store) {
	all := inboxView(agent, inboxA, inboxB)
	used := map[uint32]int64{}
	var last uint32
	for i := range 10 {
		res := mustInbound(t, s, newInbound([]string{inboxA, inboxB}[i%3%2], "", i))
		entries, next := mustEntries(t, s, all)
		e := entries[len(entries)-1]
		if e.Message != res.Message {
			t.Fatalf("the newest entry is message %d, want %d", e.Message, res.Message)
		}
		if e.UID <= last {
			t.Fatalf("message %d got UID %d, not above the previous %d", res.Message, e.UID, last)
		}
		if m, ok := used[e.UID]; ok {
			t.Fatalf("UID %d reused (was message %d)", e.UID, m)
		}
		if next <= e.UID {
			t.Fatalf("UIDNEXT %d not above UID %d", next, e.UID)
		}
		used[e.UID], last = res.Message, e.UID
	}
}

func testUIDValidity(t *testing.T, s store.Store) {
	viewA := inboxView(agent, inboxA)
	v1 := mustUIDValidity(t, s, viewA)
	for i := 0; i < 3; i++ {
		if v := mustUIDValidity(t, s, viewA); v != v1 {
			t.Fatalf("UIDVALIDITY call %d = %d, want the stable %d", i, v, v1)
		}
	}
	// Messages arriving do not change it.
	mustInbound(t, s, newInbound(inboxA, "", 1))
	if v := mustUIDValidity(t, s, viewA); v != v1 {
		t.Fatalf("UIDVALIDITY after a message = %d, want %d", v, v1)
	}

	// Another agent has its own value, untouched by the first one's changes.
	bob := inboxView(agent2, inboxA, inboxB)
	vb := mustUIDValidity(t, s, bob)

	// A new set of inboxes: a new, greater value, then stable again.
	v2 := mustUIDValidity(t, s, inboxView(agent, inboxA, inboxB))
	if v2 <= v1 {
		t.Fatalf("UIDVALIDITY after the inboxes changed = %d, want above %d", v2, v1)
	}
	// The order in which inboxes are listed does not matter.
	if v := mustUIDValidity(t, s, inboxView(agent, inboxB, inboxA)); v != v2 {
		t.Fatalf("UIDVALIDITY with the inboxes reordered = %d, want %d", v, v2)
	}
	// Back to the old set: a new value again (clients may have cached the
	// wider view), never an old one.
	v3 := mustUIDValidity(t, s, viewA)
	if v3 <= v2 {
		t.Fatalf("UIDVALIDITY back on the first set = %d, want above %d", v3, v2)
	}
	// No inboxes at all is a set too.
	v4 := mustUIDValidity(t, s, inboxView(agent))
	if v4 <= v3 {
		t.Fatalf("UIDVALIDITY with no inboxes = %d, want above %d", v4, v3)
	}
	if v := mustUIDValidity(t, s, bob); v != vb {
		t.Fatalf("%s's UIDVALIDITY changed from %d to %d when %s's inboxes changed", agent2, vb, v, agent)
	}
	// A view named apart (an agent's per-inbox folder) has its own value.
	named := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}, Name: "Inboxes/" + inboxA}
	vn := mustUIDValidity(t, s, named)
	mustUIDValidity(t, s, inboxView(agent, inboxB))
	if v := mustUIDValidity(t, s, named); v != vn {
		t.Fatalf("the named view's UIDVALIDITY changed from %d to %d when INBOX's inboxes changed", vn, v)
	}
}

func testSetSeenPerAgent(t *testing.T, s store.Store) {
	ctx := t.Context()
	var msgs []int64
	for i := 0; i < 3; i++ {
		msgs = append(msgs, mustInbound(t, s, newInbound(inboxA, "", i)).Message)
	}
	seenBy := func(who string) []bool {
		t.Helper()
		entries, _ := mustEntries(t, s, inboxView(who, inboxA))
		var l []bool
		for _, e := range entries {
			l = append(l, e.Seen)
		}
		return l
	}
	set := func(who string, ms []int64, seen bool) {
		t.Helper()
		if err := s.SetSeen(ctx, who, ms, seen); err != nil {
			t.Fatal(err)
		}
	}
	set(agent, []int64{msgs[0], msgs[2]}, true)
	if got, want := seenBy(agent), []bool{true, false, true}; !slices.Equal(got, want) {
		t.Errorf("%s: Seen = %v, want %v", agent, got, want)
	}
	if got, want := seenBy(agent2), []bool{false, false, false}; !slices.Equal(got, want) {
		t.Errorf("%s: Seen = %v, want %v", agent2, got, want)
	}
	// Setting twice is harmless; the other agent's flags are theirs.
	set(agent, []int64{msgs[0]}, true)
	set(agent2, []int64{msgs[0], msgs[1]}, true)
	set(agent, []int64{msgs[0], msgs[1]}, false)
	if got, want := seenBy(agent), []bool{false, false, true}; !slices.Equal(got, want) {
		t.Errorf("%s: Seen = %v, want %v", agent, got, want)
	}
	if got, want := seenBy(agent2), []bool{true, true, false}; !slices.Equal(got, want) {
		t.Errorf("%s: Seen = %v, want %v", agent2, got, want)
	}
	if err := s.SetSeen(ctx, agent, nil, true); err != nil {
		t.Errorf("SetSeen of no messages: %v", err)
	}
}

// testStatusMovesEntries: closing takes a conversation out of INBOX;
// reopening brings it back with new, higher UIDs (never reused).
func testStatusMovesEntries(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustInbound(t, s, newInbound(inboxA, "a@x", 1))
	mustInbound(t, s, into(a.Conversation, inboxA, "a2@x", 2))
	b := mustInbound(t, s, newInbound(inboxA, "b@x", 3))
	convsOf := func(es []store.MailboxEntry) []int64 {
		var l []int64
		for _, e := range es {
			l = append(l, e.Conversation)
		}
		return l
	}
	before, _ := mustEntries(t, s, inboxView(agent, inboxA))
	mustUpdate(t, s, setStatus(a.Conversation, store.StatusClosed))
	if e, _ := mustEntries(t, s, inboxView(agent, inboxA)); !slices.Equal(convsOf(e), []int64{b.Conversation}) {
		t.Fatalf("after closing, INBOX holds conversations %v", convsOf(e))
	}
	if c := mustConversation(t, s, a.Conversation); c.Status != store.StatusClosed {
		t.Errorf("status %q", c.Status)
	}
	mustUpdate(t, s, setStatus(a.Conversation, store.StatusOpen))
	after, _ := mustEntries(t, s, inboxView(agent, inboxA))
	if !slices.Equal(convsOf(after), []int64{b.Conversation, a.Conversation, a.Conversation}) {
		t.Fatalf("after reopening, INBOX holds conversations %v", convsOf(after))
	}
	if after[1].UID <= before[len(before)-1].UID {
		t.Errorf("reopened entries got UIDs %v, not above the old maximum %v", uids(t, after), uids(t, before))
	}
	if err := s.UpdateConversation(ctx, setStatus(999, store.StatusClosed)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("closing a missing conversation: %v", err)
	}
}

// testSharedFoldersFollowStatusAndAssignee: Mine, Unassigned, Closed and
// Spam hold a conversation's messages as its status and assignee say, with
// new UIDs whenever they enter; tags fill the entries' flags.
func testSharedFoldersFollowStatusAndAssignee(t *testing.T, s store.Store) {
	ctx := t.Context()
	res := mustInbound(t, s, newInbound(inboxA, "w1@example.com", 1))
	view := func(f store.Folder, who string) []store.MailboxEntry {
		e, _ := mustEntries(t, s, store.MailboxView{Agent: who, Folder: f, Inboxes: []string{inboxA}})
		return e
	}
	if len(view(store.FolderUnassigned, "a")) != 1 || len(view(store.FolderMine, "a")) != 0 {
		t.Fatal("a new conversation is not in Unassigned")
	}
	mustUpdate(t, s, setAssignee(res.Conversation, "a"))
	if len(view(store.FolderMine, "a")) != 1 || len(view(store.FolderMine, "b")) != 0 || len(view(store.FolderUnassigned, "a")) != 0 {
		t.Error("assigning did not move the conversation from Unassigned to a's Mine only")
	}
	first := view(store.FolderMine, "a")[0].UID
	mustUpdate(t, s, setAssignee(res.Conversation, ""))
	mustUpdate(t, s, setAssignee(res.Conversation, "a"))
	if again := view(store.FolderMine, "a"); len(again) != 1 || again[0].UID <= first {
		t.Errorf("re-entering Mine reused UID %d: %+v", first, again)
	}
	mustUpdate(t, s, addTags(res.Conversation, "Billing", "vip"))
	mustUpdate(t, s, store.ConversationUpdate{Conversation: res.Conversation, AddTags: []string{"billing"}, RemoveTags: []string{"VIP"}})
	if c := mustConversation(t, s, res.Conversation); c.Assignee != "a" || !slices.Equal(c.Tags, []string{"Billing"}) {
		t.Errorf("conversation %+v", c)
	}
	if e := view(store.FolderInbox, "b"); !slices.Contains(e[0].Flags, "Billing") || slices.Contains(e[0].Flags, "vip") {
		t.Errorf("INBOX entry flags %v", e[0].Flags)
	}
	if err := s.UpdateConversation(ctx, setAssignee(999, "a")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("assigning an unknown conversation: %v", err)
	}
	mustUpdate(t, s, setStatus(res.Conversation, store.StatusSpam))
	// Spam is the folder (\Junk special-use), not a keyword: $Junk is a
	// client's own bookkeeping (DESIGN.md §6).
	if e := view(store.FolderSpam, "b"); len(e) != 1 || slices.Contains(e[0].Flags, "$Junk") || len(view(store.FolderMine, "a")) != 0 {
		t.Errorf("spam: %+v", e)
	}
	mustUpdate(t, s, setStatus(res.Conversation, store.StatusClosed))
	closed := view(store.FolderClosed, "b")
	if len(closed) != 1 || len(view(store.FolderSpam, "b")) != 0 {
		t.Fatal("closing did not move the conversation to Closed")
	}
	// Hidden per agent.
	if err := s.SetMarks(ctx, "b", store.FolderClosed, []uint32{closed[0].UID}, store.MarkHidden, true); err != nil {
		t.Fatal(err)
	}
	if len(view(store.FolderClosed, "b")) != 0 || len(view(store.FolderClosed, "c")) != 1 {
		t.Error("a hidden entry is not hidden for its agent only")
	}
	// \Deleted is the agent's own, among the entry's flags.
	inbox := mustInbound(t, s, newInbound(inboxA, "w2@example.com", 2))
	e := view(store.FolderInbox, "b")
	if err := s.SetMarks(ctx, "b", store.FolderInbox, []uint32{e[0].UID}, store.MarkDeleted, true); err != nil {
		t.Fatal(err)
	}
	if e := view(store.FolderInbox, "b"); len(e) != 1 || e[0].Message != inbox.Message || !slices.Contains(e[0].Flags, `\Deleted`) {
		t.Errorf("b's INBOX after \\Deleted: %+v", e)
	}
	if e := view(store.FolderInbox, "c"); len(e) != 1 || slices.Contains(e[0].Flags, `\Deleted`) {
		t.Errorf("c's INBOX after b's \\Deleted: %+v", e)
	}
}
