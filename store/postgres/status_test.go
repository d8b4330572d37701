package postgres

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/supportgate/supportgate/store"
)

func inboxUIDs(t *testing.T, s store.Store, agent string) (uids []uint32, convs []int64) {
	t.Helper()
	entries, _, err := s.Entries(context.Background(), store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{"support@example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		uids = append(uids, e.UID)
		convs = append(convs, e.Conversation)
	}
	return uids, convs
}

// TestSetStatusMovesEntries: closing takes a conversation out of INBOX;
// reopening brings it back with new, higher UIDs (never reused).
func TestSetStatusMovesEntries(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
	a := mustInbound(t, s, newInbound("support@example.test", "a@x", 1))
	in := newInbound("support@example.test", "a2@x", 2)
	in.Conversation = a.Conversation
	mustInbound(t, s, in)
	b := mustInbound(t, s, newInbound("support@example.test", "b@x", 3))

	before, _ := inboxUIDs(t, s, "alice@example.test")
	if err := s.SetStatus(ctx, a.Conversation, store.StatusClosed); err != nil {
		t.Fatal(err)
	}
	_, convs := inboxUIDs(t, s, "alice@example.test")
	if !slices.Equal(convs, []int64{b.Conversation}) {
		t.Fatalf("after closing, INBOX holds conversations %v", convs)
	}
	c, _ := s.Conversation(ctx, a.Conversation)
	if c.Status != store.StatusClosed {
		t.Errorf("status %q", c.Status)
	}
	if err := s.SetStatus(ctx, a.Conversation, store.StatusOpen); err != nil {
		t.Fatal(err)
	}
	after, convs := inboxUIDs(t, s, "alice@example.test")
	if !slices.Equal(convs, []int64{b.Conversation, a.Conversation, a.Conversation}) {
		t.Fatalf("after reopening, INBOX holds conversations %v", convs)
	}
	if after[1] <= before[len(before)-1] {
		t.Errorf("reopened entries got UIDs %v, not above the old maximum %v", after, before)
	}
	if err := s.SetStatus(ctx, 999, store.StatusClosed); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetStatus of a missing conversation: %v", err)
	}
}

// TestAddInboundReopensAndAddsParticipants.
func TestAddInboundReopensAndAddsParticipants(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
	a := mustInbound(t, s, newInbound("support@example.test", "a@x", 1))
	if err := s.SetStatus(ctx, a.Conversation, store.StatusClosed); err != nil {
		t.Fatal(err)
	}
	// An auto-reply (Reopen false) is stored but leaves it closed.
	auto := newInbound("support@example.test", "auto@x", 2)
	auto.Conversation = a.Conversation
	mustInbound(t, s, auto)
	if c, _ := s.Conversation(ctx, a.Conversation); c.Status != store.StatusClosed {
		t.Fatalf("a message without Reopen opened the conversation")
	}
	if _, convs := inboxUIDs(t, s, "alice@example.test"); len(convs) != 0 {
		t.Errorf("a closed conversation's message is in INBOX: %v", convs)
	}
	in := newInbound("support@example.test", "c@x", 3)
	in.Conversation, in.Reopen = a.Conversation, true
	in.SenderRole = store.SenderStranger
	in.NewParticipants = []string{"cow@customer.example"}
	mustInbound(t, s, in)
	c, _ := s.Conversation(ctx, a.Conversation)
	if c.Status != store.StatusOpen || !slices.Equal(c.Participants, []string{"cow@customer.example"}) {
		t.Errorf("after a customer message with Reopen: %+v", c)
	}
	entries, _, _ := s.Entries(ctx, store.MailboxView{Agent: "a", Folder: store.FolderInbox, Inboxes: []string{"support@example.test"}})
	if len(entries) != 3 || entries[2].SenderRole != store.SenderStranger {
		t.Errorf("entries after reopening: %+v", entries)
	}
}

func TestContinuityCandidate(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
	mk := func(owner, norm string, n int) int64 {
		in := newInbound("support@example.test", owner+norm+string(rune('a'+n)), n)
		in.Owner, in.Sender, in.NormSubject = owner, owner, norm
		return mustInbound(t, s, in).Conversation
	}
	old := mk("o@x", "printer", 1)
	recent := mk("o@x", "printer", 10)
	mk("other@x", "printer", 11)
	for _, tc := range []struct {
		inbox, owner, norm string
		since              int
		want               int64
	}{
		{"support@example.test", "o@x", "printer", 0, recent},
		{"support@example.test", "o@x", "printer", 20, 0},     // too old
		{"support@example.test", "o@x", "scanner", 0, 0},      // other subject
		{"billing@example.test", "o@x", "printer", 0, 0},      // other inbox
		{"support@example.test", "nobody@x", "printer", 0, 0}, // other owner
	} {
		got, found, err := s.ContinuityCandidate(ctx, tc.inbox, tc.owner, tc.norm, at(tc.since))
		if err != nil || got != tc.want || found != (tc.want != 0) {
			t.Errorf("ContinuityCandidate(%+v) = %d %v %v", tc, got, found, err)
		}
	}
	if err := s.SetStatus(ctx, recent, store.StatusClosed); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.ContinuityCandidate(ctx, "support@example.test", "o@x", "printer", at(0)); got != old {
		t.Errorf("with the recent one closed, got %d, want the older open %d", got, old)
	}
}

// TestKeywordsOfManyConversations: a folder may hold more conversations
// than SQLite allows variables in one statement (found by bench/run at
// 200,000 messages: SELECT INBOX failed).
func TestKeywordsOfManyConversations(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
	a := mustInbound(t, s, newInbound("support@example.test", "a@x", 1))
	if err := s.AddTags(ctx, a.Conversation, []string{"vip"}); err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, 40000)
	for i := range ids {
		ids[i] = int64(i + 1000)
	}
	ids[39999] = a.Conversation
	kws, err := keywords(ctx, s.pool, ids)
	if err != nil || !slices.Equal(kws[a.Conversation], []string{"vip"}) {
		t.Errorf("keywords of 40,000 conversations: %v %v", kws, err)
	}
}
