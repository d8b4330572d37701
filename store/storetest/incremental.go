package storetest

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// Incremental reads of a shared folder (store.IncrementalEntries), for an
// engine that has them. The concurrent writers' side is
// CheckIncrementalReads.
func incrementalCases() []testCase {
	return []testCase{
		{"EntriesSince", testEntriesSince},
		{"EntryChangesMatchFullReads", testEntryChangesMatchFullReads},
	}
}

// testEntriesSince: a read from the zero cursor is everything; after new
// entries only, the next read is them, appended; after any rewrite of an
// existing entry, everything again.
func testEntriesSince(t *testing.T, s store.Store) {
	inc := incremental(t, s)
	ctx := t.Context()
	view := inboxView(agent, inboxA)
	a := mustInbound(t, s, newInbound(inboxA, "a@example.com", 1))
	read := func(cur store.FolderCursor) ([]store.MailboxEntry, store.FolderCursor, bool) {
		t.Helper()
		es, next, cur, appended, err := inc.EntriesSince(ctx, view, cur)
		if err != nil {
			t.Fatal(err)
		}
		full, fullNext := mustEntries(t, s, view)
		if next != fullNext {
			t.Errorf("EntriesSince's UIDNEXT %d, Entries' %d", next, fullNext)
		}
		if !appended && !reflect.DeepEqual(es, full) {
			t.Errorf("EntriesSince, not appended: %+v, Entries: %+v", es, full)
		}
		uids(t, es)
		return es, cur, appended
	}
	es, cur, appended := read(store.FolderCursor{})
	if appended || len(es) != 1 {
		t.Fatalf("from the zero cursor: %d entries, appended %v; want all (1), not appended", len(es), appended)
	}
	b := mustInbound(t, s, newInbound(inboxA, "b@example.com", 2))
	c := mustInbound(t, s, into(a.Conversation, inboxA, "c@example.com", 3))
	mustInbound(t, s, newInbound(inboxB, "elsewhere@example.com", 4)) // not in the view
	es2, cur2, appended := read(cur)
	if !appended || !reflect.DeepEqual(messagesOf(es2), []int64{b.Message, c.Message}) || es2[0].UID <= es[0].UID {
		t.Fatalf("after two new messages: %v appended %v; want %d and %d appended", messagesOf(es2), appended, b.Message, c.Message)
	}
	full, _ := mustEntries(t, s, view)
	if got := append(es, es2...); !reflect.DeepEqual(got, full) {
		t.Errorf("the earlier read followed by the new entries: %+v; Entries: %+v", got, full)
	}
	if es3, _, appended := read(cur2); !appended || len(es3) != 0 {
		t.Errorf("nothing since: %+v, appended %v", es3, appended)
	}
	mustUpdate(t, s, addTags(b.Conversation, "billing"))
	if es4, _, appended := read(cur2); appended || len(es4) != 3 {
		t.Errorf("after a tag: %d entries, appended %v; want all 3, not appended", len(es4), appended)
	}
}

// testEntryChangesMatchFullReads: after each kind of write to one
// conversation among several, the earlier read with the changes applied
// (FolderChanges) is what a full read gives, in every shared folder, flags
// included; what is re-read belongs to the conversations named replaced.
func testEntryChangesMatchFullReads(t *testing.T, s store.Store) {
	inc := incremental(t, s)
	ctx := t.Context()
	const n = 30
	var convs []int64
	for i := range n {
		res := mustInbound(t, s, newInbound(inboxA, fmt.Sprintf("c%d@example.com", i), i))
		convs = append(convs, res.Conversation)
		if i%3 == 0 { // some conversations have several messages
			mustInbound(t, s, into(res.Conversation, inboxA, fmt.Sprintf("c%d-r@example.com", i), n+i))
		}
	}
	views := map[store.Folder]store.MailboxView{}
	prev := map[store.Folder][]store.MailboxEntry{}
	curs := map[store.Folder]store.FolderCursor{}
	for _, f := range store.SharedFolders() {
		views[f] = store.MailboxView{Agent: agent, Folder: f, Inboxes: []string{inboxA}}
		c, err := inc.EntryChanges(ctx, views[f], store.FolderCursor{})
		if err != nil || !c.Full {
			t.Fatalf("first read of %s: full %v, %v", f, c.Full, err)
		}
		prev[f], curs[f] = c.Entries, c.Cursor
	}

	conv := convs[n/2] // two messages (15 % 3 == 0)
	messagesOfConv := func() []int64 {
		msgs, err := s.ConversationMessages(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		return ids
	}
	uidOf := func(who string) uint32 {
		es, _ := mustEntries(t, s, inboxView(who, inboxA))
		for _, e := range es {
			if e.Conversation == conv {
				return e.UID
			}
		}
		t.Fatal("no INBOX entry of the conversation")
		return 0
	}
	writes := []struct {
		name string
		do   func() error
	}{
		{"tag", func() error { return s.UpdateConversation(ctx, addTags(conv, "billing")) }},
		{"seen", func() error { return s.SetSeen(ctx, agent, messagesOfConv(), true) }},
		{"agent keyword", func() error { return s.SetAgentKeywords(ctx, agent, messagesOfConv(), []string{"$Forwarded"}, nil) }},
		{"deleted", func() error {
			return s.SetMarks(ctx, agent, store.FolderInbox, []uint32{uidOf(agent)}, store.MarkDeleted, true)
		}},
		{"hidden", func() error {
			return s.SetMarks(ctx, agent, store.FolderInbox, []uint32{uidOf(agent)}, store.MarkHidden, true)
		}},
		// The entry the reader no longer has comes back below its last UID.
		{"shown", func() error {
			return s.SetMarks(ctx, agent, store.FolderInbox, []uint32{uidOf(agent2)}, store.MarkHidden, false)
		}},
		{"assigned", func() error { return s.UpdateConversation(ctx, setAssignee(conv, agent)) }},
		{"a new message", func() error {
			_, err := s.AddInbound(ctx, into(conv, inboxA, "new@example.com", 2*n))
			return err
		}},
		{"a reply", func() error {
			return s.AddOutbound(ctx, reply(mustReserve(t, s), conv, agent2, "customer@example.com"))
		}},
		{"closed", func() error { return s.UpdateConversation(ctx, setStatus(conv, store.StatusClosed)) }},
		{"spam", func() error { return s.UpdateConversation(ctx, setStatus(conv, store.StatusSpam)) }},
		{"reopened", func() error { return s.UpdateConversation(ctx, setStatus(conv, store.StatusOpen)) }},
		{"unassigned", func() error { return s.UpdateConversation(ctx, setAssignee(conv, "")) }},
	}
	for _, w := range writes {
		if err := w.do(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		for _, f := range store.SharedFolders() {
			c, err := inc.EntryChanges(ctx, views[f], curs[f])
			if err != nil {
				t.Fatal(err)
			}
			full, next := mustEntries(t, s, views[f])
			got := applyChanges(prev[f], c)
			if !reflect.DeepEqual(got, full) {
				t.Fatalf("after %s, %s: applied %+v\nfull read %+v", w.name, f, got, full)
			}
			if c.UIDNext != next {
				t.Errorf("after %s, %s: UIDNEXT %d, Entries' %d", w.name, f, c.UIDNext, next)
			}
			if !c.Full {
				for _, e := range c.Replacements {
					if !c.Replaced[e.Conversation] {
						t.Errorf("after %s, %s: a replacement of conversation %d, not replaced", w.name, f, e.Conversation)
					}
				}
				if last := lastUID(prev[f]); len(c.Entries) > 0 && c.Entries[0].UID <= last {
					t.Errorf("after %s, %s: new entry UID %d not above the earlier read's %d", w.name, f, c.Entries[0].UID, last)
				}
			}
			for _, e := range got {
				if e.ModSeq > c.HighestModSeq {
					t.Errorf("after %s, %s: MODSEQ %d above HIGHESTMODSEQ %d", w.name, f, e.ModSeq, c.HighestModSeq)
				}
			}
			prev[f], curs[f] = got, c.Cursor
		}
	}
}

// lastUID is the UID of the last of entries, 0 for none.
func lastUID(entries []store.MailboxEntry) uint32 {
	if len(entries) == 0 {
		return 0
	}
	return entries[len(entries)-1].UID
}
