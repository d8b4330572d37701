package storetest

import (
	"testing"

	"github.com/supportgate/supportgate/store"
)

// Mod-sequences (RFC 7162 3.1) in shared folders and private mailboxes.
func modSeqCases() []testCase {
	return []testCase{
		{"ModSeqPerAgent", testModSeqPerAgent},
		{"ModSeqPrivate", testModSeqPrivate},
	}
}

// modSeqs reads a view in full and returns each message's mod-sequence and
// the view's HIGHESTMODSEQ, checking that it is at least each of them. An
// engine without incremental reads has no HIGHESTMODSEQ of its own (the IMAP
// side takes the largest entry's): exact is false then.
func modSeqs(t *testing.T, s store.Store, view store.MailboxView) (mod map[int64]int64, high int64, exact bool) {
	t.Helper()
	var entries []store.MailboxEntry
	if inc, ok := s.(store.IncrementalEntries); ok {
		c, err := inc.EntryChanges(t.Context(), view, store.FolderCursor{})
		if err != nil {
			t.Fatal(err)
		}
		entries, high, exact = c.Entries, c.HighestModSeq, true
	} else {
		entries, _ = mustEntries(t, s, view)
		for _, e := range entries {
			high = max(high, e.ModSeq)
		}
	}
	mod = map[int64]int64{}
	for _, e := range entries {
		if e.ModSeq < 1 || e.ModSeq > high {
			t.Fatalf("%s of %s: message %d has MODSEQ %d, HIGHESTMODSEQ %d", view.Folder, view.Agent, e.Message, e.ModSeq, high)
		}
		mod[e.Message] = e.ModSeq
	}
	return mod, high, exact
}

// testModSeqPerAgent checks mod-sequences in a shared folder: what an agent
// sees of a message's flags changing raises its mod-sequence for that
// agent, above the HIGHESTMODSEQ read before, and leaves the other
// messages', and other agents' where they see no change, as they were.
func testModSeqPerAgent(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustInbound(t, s, newInbound(inboxA, "a@example.com", 1))
	b := mustInbound(t, s, newInbound(inboxA, "b@example.com", 2))
	alice, bob := inboxView(agent, inboxA), inboxView(agent2, inboxA)

	prevA, highA, _ := modSeqs(t, s, alice)
	prevB, highB, _ := modSeqs(t, s, bob)
	if prevA[a.Message] >= prevA[b.Message] {
		t.Errorf("a message that entered later has a smaller MODSEQ: %v", prevA)
	}
	// step applies a change and checks which messages' mod-sequences grew
	// for each agent.
	step := func(what string, change func() error, grewA, grewB []int64) {
		t.Helper()
		if err := change(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		for _, c := range []struct {
			view store.MailboxView
			prev map[int64]int64
			high *int64
			grew []int64
		}{{alice, prevA, &highA, grewA}, {bob, prevB, &highB, grewB}} {
			now, high, exact := modSeqs(t, s, c.view)
			if exact && high <= *c.high {
				t.Errorf("%s: HIGHESTMODSEQ of %s went from %d to %d", what, c.view.Agent, *c.high, high)
			}
			for m, ms := range now {
				want := false
				for _, g := range c.grew {
					want = want || g == m
				}
				switch {
				case ms < c.prev[m] && c.prev[m] != 0:
					t.Errorf("%s: MODSEQ of message %d for %s decreased from %d to %d", what, m, c.view.Agent, c.prev[m], ms)
				case want && ms <= *c.high:
					t.Errorf("%s: MODSEQ of message %d for %s is %d, not above the HIGHESTMODSEQ before (%d)", what, m, c.view.Agent, ms, *c.high)
				case !want && c.prev[m] != 0 && ms != c.prev[m]:
					t.Errorf("%s: MODSEQ of message %d for %s changed from %d to %d", what, m, c.view.Agent, c.prev[m], ms)
				}
				c.prev[m] = ms
			}
			*c.high = max(*c.high, high)
		}
	}
	step("alice's \\Seen", func() error { return s.SetSeen(ctx, agent, []int64{a.Message}, true) }, []int64{a.Message}, nil)
	step("alice's \\Seen off", func() error { return s.SetSeen(ctx, agent, []int64{a.Message}, false) }, []int64{a.Message}, nil)
	step("a tag", func() error { return s.UpdateConversation(ctx, addTags(a.Conversation, "billing")) }, []int64{a.Message}, []int64{a.Message})
	step("another tag", func() error { return s.UpdateConversation(ctx, addTags(b.Conversation, "vip")) }, []int64{b.Message}, []int64{b.Message})
	step("bob's own keyword", func() error {
		return s.SetAgentKeywords(ctx, agent2, []int64{b.Message}, []string{"$Forwarded"}, nil)
	}, nil, []int64{b.Message})
	entries, _ := mustEntries(t, s, alice)
	step("alice's \\Deleted", func() error {
		return s.SetMarks(ctx, agent, store.FolderInbox, []uint32{entries[1].UID}, store.MarkDeleted, true)
	}, []int64{b.Message}, nil)
	// A public reply answers b (\Answered, computed): every agent sees it.
	replyMsg := mustReserve(t, s)
	step("a reply", func() error {
		return s.AddOutbound(ctx, reply(replyMsg, b.Conversation, agent, "customer@example.com"))
	}, []int64{b.Message, replyMsg}, []int64{b.Message, replyMsg})
	// Closing and opening again: new entries, new UIDs, new mod-sequences.
	step("closed", func() error { return s.UpdateConversation(ctx, setStatus(a.Conversation, store.StatusClosed)) }, nil, nil)
	step("opened", func() error { return s.UpdateConversation(ctx, setStatus(a.Conversation, store.StatusOpen)) }, []int64{a.Message}, []int64{a.Message})
	step("a new message", func() error {
		_, err := s.AddInbound(ctx, newInbound(inboxA, "c@example.com", 3))
		return err
	}, nil, nil)
}

// testModSeqPrivate checks mod-sequences in a private mailbox: filing and
// every flag change raise the message's, an expunge raises HIGHESTMODSEQ.
func testModSeqPrivate(t *testing.T, s store.Store) {
	ctx := t.Context()
	read := func() (map[uint32]int64, int64) {
		mb, entries, err := s.PrivateEntries(ctx, agent, store.MailboxDrafts)
		if err != nil {
			t.Fatal(err)
		}
		out := map[uint32]int64{}
		for _, e := range entries {
			if e.ModSeq < 1 || e.ModSeq > mb.HighestModSeq {
				t.Fatalf("UID %d has MODSEQ %d, HIGHESTMODSEQ %d", e.UID, e.ModSeq, mb.HighestModSeq)
			}
			out[e.UID] = e.ModSeq
		}
		return out, mb.HighestModSeq
	}
	_, uids, err := s.AddPrivate(ctx, agent, store.MailboxDrafts, []store.PrivateMessage{{Raw: []byte("one")}, {Raw: []byte("two")}})
	if err != nil {
		t.Fatal(err)
	}
	before, high := read()
	if before[uids[0]] >= before[uids[1]] {
		t.Errorf("filed later, smaller MODSEQ: %v", before)
	}
	if err := s.ChangePrivateFlags(ctx, agent, store.MailboxDrafts, []uint32{uids[0]}, []string{`\Seen`}, true); err != nil {
		t.Fatal(err)
	}
	after, high2 := read()
	if after[uids[0]] <= high || after[uids[1]] != before[uids[1]] {
		t.Errorf("after \\Seen on UID %d: MODSEQ %v, before %v (HIGHESTMODSEQ %d)", uids[0], after, before, high)
	}
	if err := s.SetPrivateFlags(ctx, agent, store.MailboxDrafts, map[uint32][]string{uids[1]: {"$label1"}}); err != nil {
		t.Fatal(err)
	}
	again, high3 := read()
	if again[uids[1]] <= high2 || again[uids[0]] != after[uids[0]] {
		t.Errorf("after FLAGS on UID %d: MODSEQ %v, before %v (HIGHESTMODSEQ %d)", uids[1], again, after, high2)
	}
	if err := s.RemovePrivate(ctx, agent, store.MailboxDrafts, []uint32{uids[0]}); err != nil {
		t.Fatal(err)
	}
	if _, high4 := read(); high4 <= high3 {
		t.Errorf("HIGHESTMODSEQ after an expunge: %d, before %d", high4, high3)
	}
}
