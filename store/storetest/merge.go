package storetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// mergeCases check merging (DESIGN.md §14).
func mergeCases() []testCase {
	return []testCase{
		{"MergeConversation", testMergeConversation},
	}
}

// testMergeConversation: every message, event, participant, follower, tag
// and side conversation moves into the target; the messages get new UIDs
// in its folders; the merged number, its Message-IDs and its lookups answer
// to the target; over the cap everyone is kept with an event; a
// conversation never merges into itself.
func testMergeConversation(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustInbound(t, s, newInbound(inboxA, "ma1@example.com", 1))
	inB := newInbound(inboxA, "mb1@example.com", 2)
	inB.Owner, inB.Sender = "second@example.com", "second@example.com"
	b := mustInbound(t, s, inB)
	mustUpdate(t, s, store.ConversationUpdate{Conversation: a.Conversation, AddParticipants: []string{"p1@example.org"},
		AddFollowers: []string{"boss@support.example.com"}, AddTags: []string{"refund"}})
	mustUpdate(t, s, addTags(b.Conversation, "vip"))
	side := func(conv int64, n int, rcpt string) int64 {
		o := reply(mustReserve(t, s), conv, agent, rcpt)
		o.Kind, o.Side = store.KindSide, &store.SideWrite{Number: n, Recipients: []string{rcpt}}
		mustOutbound(t, s, o)
		return o.Message
	}
	side(b.Conversation, 1, "vendor-b@vendor.example")
	sideA := side(a.Conversation, 1, "vendor-a@vendor.example")
	view := inboxView(agent, inboxA)
	before, _ := mustEntries(t, s, view)
	oldUID := map[int64]uint32{}
	for _, e := range before {
		oldUID[e.Message] = e.UID
	}
	err := s.MergeConversation(ctx, store.Merge{From: a.Conversation, Into: b.Conversation, Cap: store.ParticipantCap{Max: 1, Enforce: true},
		Events:    []store.Event{{Type: "merged", Text: "alice merged #1 into #2", At: at(10), Quiet: true}},
		FromEvent: store.Event{Type: "merged", Text: "alice merged #1 into #2", At: at(10)}})
	if err != nil {
		t.Fatalf("MergeConversation: %v", err)
	}

	if c := mustConversation(t, s, a.Conversation); c.ID != b.Conversation {
		t.Errorf("Conversation(%d) after the merge is %d, want the target %d", a.Conversation, c.ID, b.Conversation)
	}
	c := mustConversation(t, s, b.Conversation)
	if !slices.Equal(c.Participants, []string{"customer@example.com", "p1@example.org"}) {
		t.Errorf("participants %v, want the merged owner and participant, over the cap of 1", c.Participants)
	}
	if !slices.Contains(c.Followers, "boss@support.example.com") || !slices.Equal(c.Tags, []string{"refund", "vip"}) {
		t.Errorf("followers %v, tags %v", c.Followers, c.Tags)
	}
	msgs, err := s.ConversationMessages(ctx, b.Conversation)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(msgs, func(m store.Message) bool { return m.ID == a.Message }) {
		t.Errorf("the merged conversation's first message is not in the target: %+v", msgs)
	}
	if m, err := s.Message(ctx, sideA); err != nil || m.Conversation != b.Conversation || m.Side != 2 {
		t.Errorf("the merged side message reads %+v, %v; want side 2 of the target", m, err)
	}
	sides, err := s.Sides(ctx, b.Conversation)
	if err != nil || len(sides) != 2 || sides[1].Number != 2 || !slices.Equal(sides[1].Recipients, []string{"vendor-a@vendor.example"}) {
		t.Errorf("sides after the merge: %+v, %v", sides, err)
	}
	if m, err := s.MessageByHeaderID(ctx, "ma1@example.com"); err != nil || m.Conversation != b.Conversation {
		t.Errorf("MessageByHeaderID after the merge: %+v, %v", m, err)
	}
	if conv, ok, err := s.ConversationByMessageID(ctx, []string{"ma1@example.com"}); err != nil || !ok || conv != b.Conversation {
		t.Errorf("ConversationByMessageID after the merge: %d, %v, %v", conv, ok, err)
	}
	// The moved messages have new UIDs; no entry is left of the merged one.
	after, _ := mustEntries(t, s, view)
	uids(t, after)
	for _, e := range after {
		if e.Conversation != b.Conversation {
			t.Errorf("entry %+v still in conversation %d", e, e.Conversation)
		}
		if e.Message == a.Message && e.UID <= oldUID[a.Message] {
			t.Errorf("the moved message kept UID %d (was %d)", e.UID, oldUID[a.Message])
		}
	}
	if len(after) != len(before)+1 { // and the over-cap event, never quiet
		t.Errorf("%d INBOX entries after the merge, %d before", len(after), len(before))
	}
	evs, err := s.Events(ctx, b.Conversation)
	if err != nil || !slices.ContainsFunc(evs, func(e store.Event) bool { return e.Type == "merged" }) ||
		!slices.ContainsFunc(evs, func(e store.Event) bool { return e.Type == "participants-over-cap" }) {
		t.Errorf("the target's events: %+v, %v", evs, err)
	}
	list, _, err := s.ListConversations(ctx, "", 0, 10)
	if err != nil || len(list) != 1 || list[0].ID != b.Conversation {
		t.Errorf("ListConversations after the merge: %+v, %v", list, err)
	}
	if counts, err := s.ConversationCounts(ctx); err != nil || counts[store.StatusOpen] != 1 {
		t.Errorf("ConversationCounts after the merge: %v, %v; want 1 open (a merged one is none)", counts, err)
	}
	for _, m := range []store.Merge{{From: b.Conversation, Into: b.Conversation}, {From: a.Conversation, Into: b.Conversation}} {
		if err := s.MergeConversation(ctx, m); !errors.Is(err, store.ErrMergeSelf) {
			t.Errorf("merging %d into %d: %v, want ErrMergeSelf", m.From, m.Into, err)
		}
	}
	if err := s.MergeConversation(ctx, store.Merge{From: b.Conversation, Into: 999}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("merging into a conversation that does not exist: %v", err)
	}
}
