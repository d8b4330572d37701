package storetest

import (
	"slices"
	"strings"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// What a conversation an inbound message opens is created with: the
// round-robin turn, the inbox rules' assignee and tags, a quarantine's
// status (DESIGN.md §7, §8).
func triageCases() []testCase {
	return []testCase{
		{"AssignInTurn", testAssignInTurn},
		{"NewAssigneeAndTags", testNewAssigneeAndTags},
		{"AddInboundNewStatusSpam", testAddInboundNewStatusSpam},
	}
}

const (
	ann = "ann@support.example.com"
	ben = "ben@support.example.com"
	cy  = "cy@support.example.com"
)

// testAssignInTurn: new conversations go to the agents in turn; the turn
// skips an agent who left, and is not taken by a duplicate or by a message
// into an existing conversation. (That it survives a restart is the
// engine's own test.)
func testAssignInTurn(t *testing.T, s store.Store) {
	ctx := t.Context()
	rr := &store.RoundRobin{Agents: []string{ann, ben, cy}}
	n := 0
	next := func(rr *store.RoundRobin) store.InboundResult {
		t.Helper()
		n++
		in := newInbound(inboxA, "rr"+strings.Repeat("x", n)+"@example.com", n)
		in.AssignInTurn = rr
		res := mustInbound(t, s, in)
		if c := mustConversation(t, s, res.Conversation); c.Assignee != res.Assignee {
			t.Fatalf("conversation %d: assignee %q, but AddInbound said %q", res.Conversation, c.Assignee, res.Assignee)
		}
		return res
	}
	var got []string
	var first store.InboundResult
	for i := range 4 {
		res := next(rr)
		if i == 0 {
			first = res
		}
		got = append(got, res.Assignee)
	}
	if want := []string{ann, ben, cy, ann}; !slices.Equal(got, want) {
		t.Fatalf("turns %v, want %v", got, want)
	}

	// The duplicate of a message, and a message into its conversation,
	// take no turn.
	dup := newInbound(inboxA, "rrx@example.com", 1)
	dup.AssignInTurn = rr
	if res := mustInbound(t, s, dup); !res.Duplicate || res.Assignee != "" {
		t.Errorf("duplicate: %+v", res)
	}
	in := into(first.Conversation, inboxA, "into-rr@example.com", 90)
	in.AssignInTurn = rr
	if res := mustInbound(t, s, in); res.Assignee != "" {
		t.Errorf("a message into conversation %d was assigned %q", first.Conversation, res.Assignee)
	}
	if a := next(rr).Assignee; a != ben {
		t.Errorf("after a duplicate and a message into a conversation, the turn is %q, want ben", a)
	}
	// Ben left: the agent after him is gone from the list, so the first
	// agent takes the turn; then the list goes on in order.
	gone := &store.RoundRobin{Agents: []string{ann, cy}}
	if a := next(gone).Assignee; a != ann {
		t.Errorf("with ben gone the turn is %q, want ann", a)
	}
	if a := next(gone).Assignee; a != cy {
		t.Errorf("the turn after ann is %q, want cy", a)
	}

	// The first message of a turn's conversation is in the assignee's Mine,
	// and an event says who.
	res := next(rr)
	if got := foldersOf(t, s, inboxA, res.Assignee, res.Message); !slices.Contains(got, store.FolderMine) {
		t.Errorf("the assigned conversation's message is in %v, want Mine among them", got)
	}
	evs, err := s.Events(ctx, res.Conversation)
	if err != nil || len(evs) != 1 || evs[0].Type != "assigned" || !strings.Contains(evs[0].Text, res.Assignee) {
		t.Errorf("events %+v, %v; want one assignment naming %s", evs, err, res.Assignee)
	}
	// A quiet turn is logged, not shown.
	quiet := &store.RoundRobin{Agents: []string{ann}, QuietEvent: true}
	res = next(quiet)
	evs, err = s.Events(ctx, res.Conversation)
	if err != nil || len(evs) != 1 || !evs[0].Quiet {
		t.Errorf("a quiet turn's events %+v, %v", evs, err)
	}
	if e, _ := mustEntries(t, s, store.MailboxView{Agent: ann, Folder: store.FolderMine, Inboxes: []string{inboxA}}); slices.ContainsFunc(e,
		func(e store.MailboxEntry) bool {
			return e.Conversation == res.Conversation && e.Kind == store.KindEvent
		}) {
		t.Error("a quiet turn's event is a message in Mine")
	}
}

// testNewAssigneeAndTags: a conversation a message opens is created with
// the rules' assignee and tags, which win over the turn (and take none);
// into an existing conversation they are ignored. Nothing existing is
// rewritten by it.
func testNewAssigneeAndTags(t *testing.T, s store.Store) {
	ctx := t.Context()
	var cur store.FolderCursor
	inc, incremental := s.(store.IncrementalEntries)
	if incremental {
		mustInbound(t, s, newInbound(inboxA, "before@example.com", 0))
		var err error
		if _, _, cur, _, err = inc.EntriesSince(ctx, inboxView(agent, inboxA), store.FolderCursor{}); err != nil {
			t.Fatal(err)
		}
	}
	in := newInbound(inboxA, "rule@example.com", 1)
	in.NewAssignee, in.NewTags = "dee@support.example.com", []string{"billing", "vip"}
	in.AssignInTurn = &store.RoundRobin{Agents: []string{ann, ben}}
	res := mustInbound(t, s, in)
	c := mustConversation(t, s, res.Conversation)
	if c.Assignee != "dee@support.example.com" || res.Assignee != c.Assignee || !slices.Equal(c.Tags, []string{"billing", "vip"}) {
		t.Fatalf("conversation %+v, result %+v; want dee with billing and vip", c, res)
	}
	if incremental {
		es, _, _, appended, err := inc.EntriesSince(ctx, inboxView(agent, inboxA), cur)
		if err != nil || !appended || !slices.Equal(messagesOf(es), []int64{res.Message}) {
			t.Errorf("read incrementally: %v, appended %v, %v; want message %d appended (nothing existing changed)",
				messagesOf(es), appended, err, res.Message)
		}
	}
	inRule := into(res.Conversation, inboxA, "rule-into@example.com", 2)
	inRule.NewAssignee, inRule.NewTags = ann, []string{"other"}
	mustInbound(t, s, inRule)
	if c := mustConversation(t, s, res.Conversation); c.Assignee != "dee@support.example.com" || slices.Contains(c.Tags, "other") {
		t.Errorf("a message into the conversation changed it: %+v", c)
	}
	// The rule's assignee took no turn: the first turn is still ann's.
	turn := newInbound(inboxA, "turn@example.com", 3)
	turn.AssignInTurn = &store.RoundRobin{Agents: []string{ann, ben}}
	if r := mustInbound(t, s, turn); r.Assignee != ann {
		t.Errorf("the first turn after a rule's assignee went to %q, want ann", r.Assignee)
	}
}

// testAddInboundNewStatusSpam: a message that opens a conversation with
// NewStatus spam (auth_failure = "quarantine", DESIGN.md §8) is stored with
// its conversation already in Spam: its only folder entry is in Spam,
// never in INBOX, and nothing existing was rewritten, so IMAP readers see
// it as one new Spam entry. NewStatus is ignored for a message into an
// existing conversation and for a duplicate.
func testAddInboundNewStatusSpam(t *testing.T, s store.Store) {
	ctx := t.Context()
	open := mustInbound(t, s, newInbound(inboxA, "open@example.com", 1))

	spamView := store.MailboxView{Agent: agent, Folder: store.FolderSpam, Inboxes: []string{inboxA}}
	inbox := inboxView(agent, inboxA)
	inc, incremental := s.(store.IncrementalEntries)
	var spamCur, inboxCur store.FolderCursor
	if incremental {
		var err error
		if _, _, spamCur, _, err = inc.EntriesSince(ctx, spamView, store.FolderCursor{}); err != nil {
			t.Fatal(err)
		}
		if _, _, inboxCur, _, err = inc.EntriesSince(ctx, inbox, store.FolderCursor{}); err != nil {
			t.Fatal(err)
		}
	}

	in := newInbound(inboxA, "forged@example.com", 2)
	in.NewStatus = store.StatusSpam
	res := mustInbound(t, s, in)
	if res.Duplicate || res.Conversation == open.Conversation {
		t.Fatalf("AddInbound = %+v, want a new conversation", res)
	}
	if c := mustConversation(t, s, res.Conversation); c.Status != store.StatusSpam {
		t.Fatalf("new conversation: status %q; want spam", c.Status)
	}
	if got := foldersOf(t, s, inboxA, agent, res.Message); !slices.Equal(got, []store.Folder{store.FolderSpam}) {
		t.Errorf("the quarantined message is in %v, want Spam only", got)
	}
	if incremental {
		entries, _, _, appended, err := inc.EntriesSince(ctx, spamView, spamCur)
		if err != nil || !appended || !slices.Equal(messagesOf(entries), []int64{res.Message}) {
			t.Errorf("Spam read incrementally: %v, appended %v, %v; want message %d appended", messagesOf(entries), appended, err, res.Message)
		}
		entries, _, _, appended, err = inc.EntriesSince(ctx, inbox, inboxCur)
		if err != nil || !appended || len(entries) != 0 {
			t.Errorf("INBOX read incrementally: %v, appended %v, %v; want nothing new", messagesOf(entries), appended, err)
		}
	}

	// Ignored into an existing conversation, and for a duplicate.
	intoOpen := into(open.Conversation, inboxA, "into@example.com", 3)
	intoOpen.NewStatus = store.StatusSpam
	mustInbound(t, s, intoOpen)
	if c := mustConversation(t, s, open.Conversation); c.Status != store.StatusOpen {
		t.Errorf("NewStatus moved an existing conversation to %q", c.Status)
	}
	dup := newInbound(inboxA, "open@example.com", 4)
	dup.NewStatus = store.StatusSpam
	if r := mustInbound(t, s, dup); !r.Duplicate {
		t.Fatalf("retry = %+v, want a duplicate", r)
	}
	if c := mustConversation(t, s, open.Conversation); c.Status != store.StatusOpen {
		t.Errorf("a duplicate with NewStatus moved its conversation to %q", c.Status)
	}

	// A status that is none is refused, and writes nothing.
	bad := newInbound(inboxA, "bad@example.com", 5)
	bad.NewStatus = "deleted"
	if _, err := s.AddInbound(ctx, bad); err == nil {
		t.Error("AddInbound with NewStatus \"deleted\" succeeded")
	}
	if _, err := s.MessageByHeaderID(ctx, "bad@example.com"); err == nil {
		t.Error("the refused message was stored")
	}
}
