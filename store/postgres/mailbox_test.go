package postgres

import (
	"slices"
	"testing"

	"github.com/supportgate/supportgate/store"
)

func TestEntriesPerView(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := t.Context()
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

	viewA := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}}
	entries, next := mustEntries(t, s, viewA)
	if got, want := messagesOf(entries), []int64{a1.Message, a2.Message, noteMsg, a3.Message}; !slices.Equal(got, want) {
		t.Fatalf("view of %s = messages %v, want %v", inboxA, got, want)
	}
	checkUIDs(t, entries, next)
	want := []store.MailboxEntry{
		{Message: a1.Message, Conversation: a1.Conversation, Kind: store.KindInbound, Size: int64(len(rawMessage("a1@example.com"))), Received: at(1)},
		{Message: a2.Message, Conversation: a1.Conversation, Kind: store.KindInbound, Size: 5, Received: at(3)},
		{Message: noteMsg, Conversation: a1.Conversation, Kind: store.KindNote, Size: 8, Received: note.Received},
		{Message: a3.Message, Conversation: a1.Conversation, Kind: store.KindInbound, Size: 2, Received: at(4)},
	}
	compareEntries(t, entries, want)

	viewB := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxB}}
	entries, nextB := mustEntries(t, s, viewB)
	if nextB != next {
		t.Errorf("UIDNEXT differs between views: %d and %d", nextB, next)
	}
	checkUIDs(t, entries, nextB)
	compareEntries(t, entries, []store.MailboxEntry{
		{Message: b1.Message, Conversation: b1.Conversation, Kind: store.KindInbound, Size: int64(len(rawMessage("b1@example.com"))), Received: at(2)},
		{Message: replyMsg, Conversation: b1.Conversation, Kind: store.KindReply, Size: int64(len(out.Raw)), Received: out.Received,
			HiddenBCC: out.HiddenBCC, Seen: true},
	})

	both := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxB, inboxA}}
	entries, nextBoth := mustEntries(t, s, both)
	checkUIDs(t, entries, nextBoth)
	if got, want := messagesOf(entries), []int64{a1.Message, b1.Message, a2.Message, replyMsg, noteMsg, a3.Message}; !slices.Equal(got, want) {
		t.Errorf("view of both = messages %v, want %v (arrival order)", got, want)
	}

	none := store.MailboxView{Agent: agent, Folder: store.FolderInbox}
	entries, nextNone := mustEntries(t, s, none)
	if len(entries) != 0 {
		t.Errorf("view of no inbox = %+v, want nothing", entries)
	}
	if nextNone != next {
		t.Errorf("UIDNEXT of an empty view = %d, want %d", nextNone, next)
	}
	other := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{"nobody@example.com"}}
	if entries, _ := mustEntries(t, s, other); len(entries) != 0 {
		t.Errorf("view of an unknown inbox = %+v", entries)
	}
	if _, err := s.Conversation(ctx, a1.Conversation); err != nil {
		t.Fatal(err)
	}
}

func TestEntriesEmptyStore(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	for _, view := range []store.MailboxView{
		{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}},
		{Agent: agent, Folder: store.FolderInbox},
	} {
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

func TestUIDsAscendAcrossInboxesAndAreNeverReused(t *testing.T) {
	dir := pg.DSN(t)
	s := openTest(t, dir)
	all := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA, inboxB}}
	used := map[uint32]int64{}
	var last uint32
	add := func(inbox string, n int) {
		t.Helper()
		res := mustInbound(t, s, newInbound(inbox, "", n))
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
	for i := 0; i < 6; i++ {
		add([]string{inboxA, inboxB}[i%2], i)
	}
	s.Close()
	s = openTest(t, dir)
	for i := 6; i < 10; i++ {
		add([]string{inboxA, inboxB}[i%3%2], i)
	}
}

func TestUIDValidity(t *testing.T) {
	dir := pg.DSN(t)
	s := openTest(t, dir)
	viewA := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}}
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
	s.Close()
	s = openTest(t, dir)
	if v := mustUIDValidity(t, s, viewA); v != v1 {
		t.Fatalf("UIDVALIDITY after reopening = %d, want %d", v, v1)
	}

	// Another agent has its own value, untouched by the first one's changes.
	bob := store.MailboxView{Agent: agent2, Folder: store.FolderInbox, Inboxes: []string{inboxA, inboxB}}
	vb := mustUIDValidity(t, s, bob)

	// A new set of inboxes: a new, greater value, then stable again.
	viewAB := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA, inboxB}}
	v2 := mustUIDValidity(t, s, viewAB)
	if v2 <= v1 {
		t.Fatalf("UIDVALIDITY after the inboxes changed = %d, want above %d", v2, v1)
	}
	// The order in which inboxes are listed does not matter.
	viewBA := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxB, inboxA}}
	if v := mustUIDValidity(t, s, viewBA); v != v2 {
		t.Fatalf("UIDVALIDITY with the inboxes reordered = %d, want %d", v, v2)
	}
	// Back to the old set: a new value again (clients may have cached the
	// wider view), never an old one.
	v3 := mustUIDValidity(t, s, viewA)
	if v3 <= v2 {
		t.Fatalf("UIDVALIDITY back on the first set = %d, want above %d", v3, v2)
	}
	// No inboxes at all is a set too.
	v4 := mustUIDValidity(t, s, store.MailboxView{Agent: agent, Folder: store.FolderInbox})
	if v4 <= v3 {
		t.Fatalf("UIDVALIDITY with no inboxes = %d, want above %d", v4, v3)
	}
	if v := mustUIDValidity(t, s, bob); v != vb {
		t.Fatalf("%s's UIDVALIDITY changed from %d to %d when %s's inboxes changed", agent2, vb, v, agent)
	}
	s.Close()
	s = openTest(t, dir)
	if v := mustUIDValidity(t, s, store.MailboxView{Agent: agent, Folder: store.FolderInbox}); v != v4 {
		t.Fatalf("UIDVALIDITY after reopening = %d, want %d", v, v4)
	}
	if v := mustUIDValidity(t, s, bob); v != vb {
		t.Fatalf("%s's UIDVALIDITY after reopening = %d, want %d", agent2, v, vb)
	}
}

func TestSetSeenPerAgent(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := t.Context()
	var msgs []int64
	for i := 0; i < 3; i++ {
		msgs = append(msgs, mustInbound(t, s, newInbound(inboxA, "", i)).Message)
	}
	seenBy := func(who string) []bool {
		t.Helper()
		entries, _ := mustEntries(t, s, store.MailboxView{Agent: who, Folder: store.FolderInbox, Inboxes: []string{inboxA}})
		var l []bool
		for _, e := range entries {
			l = append(l, e.Seen)
		}
		return l
	}
	if err := s.SetSeen(ctx, agent, []int64{msgs[0], msgs[2]}, true); err != nil {
		t.Fatal(err)
	}
	if got, want := seenBy(agent), []bool{true, false, true}; !slices.Equal(got, want) {
		t.Errorf("%s: Seen = %v, want %v", agent, got, want)
	}
	if got, want := seenBy(agent2), []bool{false, false, false}; !slices.Equal(got, want) {
		t.Errorf("%s: Seen = %v, want %v", agent2, got, want)
	}
	// Setting twice is harmless; the other agent's flags are theirs.
	if err := s.SetSeen(ctx, agent, []int64{msgs[0]}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSeen(ctx, agent2, []int64{msgs[0], msgs[1]}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSeen(ctx, agent, []int64{msgs[0], msgs[1]}, false); err != nil {
		t.Fatal(err)
	}
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
