package postgres

import (
	"slices"
	"strings"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// TestAssignInTurn: new conversations go to the agents in turn; the turn
// survives a restart, skips an agent who left, and is not taken by a
// duplicate or by a message into an existing conversation.
func TestAssignInTurn(t *testing.T) {
	ctx := t.Context()
	dir := pg.DSN(t)
	s := openTest(t, dir)
	rr := &store.RoundRobin{Agents: []string{"ann@support.example.com", "ben@support.example.com", "cy@support.example.com"}}
	n := 0
	next := func(s *Store, rr *store.RoundRobin) store.InboundResult {
		t.Helper()
		n++
		in := newInbound(inboxA, "rr"+strings.Repeat("x", n)+"@example.com", n)
		in.AssignInTurn = rr
		res := mustInbound(t, s, in)
		if c, err := s.Conversation(ctx, res.Conversation); err != nil || c.Assignee != res.Assignee {
			t.Fatalf("conversation %d: assignee %q (%v), but AddInbound said %q", res.Conversation, c.Assignee, err, res.Assignee)
		}
		return res
	}
	var got []string
	for range 4 {
		got = append(got, next(s, rr).Assignee)
	}
	if want := []string{"ann@support.example.com", "ben@support.example.com", "cy@support.example.com", "ann@support.example.com"}; !slices.Equal(got, want) {
		t.Fatalf("turns %v, want %v", got, want)
	}

	// The duplicate of a message, and a reply into its conversation, take
	// no turn.
	first := newInbound(inboxA, "rrx@example.com", 1)
	first.AssignInTurn = rr
	if res := mustInbound(t, s, first); !res.Duplicate || res.Assignee != "" {
		t.Errorf("duplicate: %+v", res)
	}
	into := newInbound(inboxA, "into-rr@example.com", 90)
	into.Conversation, into.AssignInTurn = 1, rr
	if res := mustInbound(t, s, into); res.Assignee != "" {
		t.Errorf("a message into conversation 1 was assigned %q", res.Assignee)
	}

	// After a restart the turn goes on where it was.
	s.Close()
	s = openTest(t, dir)
	if a := next(s, rr).Assignee; a != "ben@support.example.com" {
		t.Errorf("after a restart the turn is %q, want ben", a)
	}
	// Ben left: the agent after him is gone from the list, so the first
	// agent takes the turn; then the list goes on in order.
	gone := &store.RoundRobin{Agents: []string{"ann@support.example.com", "cy@support.example.com"}}
	if a := next(s, gone).Assignee; a != "ann@support.example.com" {
		t.Errorf("with ben gone the turn is %q, want ann", a)
	}
	if a := next(s, gone).Assignee; a != "cy@support.example.com" {
		t.Errorf("the turn after ann is %q, want cy", a)
	}

	// The first message of a turn's conversation is in the assignee's Mine.
	res := next(s, rr)
	if got := folderRowsOf(t, s, res.Message); !slices.Contains(got, string(store.FolderMine)) {
		t.Errorf("the assigned conversation's message is in %v, want Mine among them", got)
	}
	evs, err := s.Events(ctx, res.Conversation)
	if err != nil || len(evs) != 1 || evs[0].Type != "assigned" || !strings.Contains(evs[0].Text, res.Assignee) {
		t.Errorf("events %+v, %v; want one assignment naming %s", evs, err, res.Assignee)
	}
}

// TestNewAssigneeAndTags: a conversation a message opens is created with
// the rules' assignee and tags, which win over the turn; into an existing
// conversation they are ignored.
func TestNewAssigneeAndTags(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, pg.DSN(t))
	in := newInbound(inboxA, "rule@example.com", 1)
	in.NewAssignee, in.NewTags = "dee@support.example.com", []string{"billing", "vip"}
	in.AssignInTurn = &store.RoundRobin{Agents: []string{"ann@support.example.com"}}
	res := mustInbound(t, s, in)
	c, err := s.Conversation(ctx, res.Conversation)
	if err != nil || c.Assignee != "dee@support.example.com" || res.Assignee != c.Assignee || !slices.Equal(c.Tags, []string{"billing", "vip"}) {
		t.Fatalf("conversation %+v (%v), result %+v; want dee with billing and vip", c, err, res)
	}
	if sequence(t, s, "rewrites") != 0 {
		t.Errorf("a new conversation counted as a rewrite of existing entries")
	}
	var turns int
	if err := s.pool.QueryRow(t.Context(), `SELECT COUNT(*) FROM round_robin`).Scan(&turns); err != nil || turns != 0 {
		t.Errorf("a rule's assignee took a round-robin turn (%d rows, %v)", turns, err)
	}
	into := newInbound(inboxA, "rule-into@example.com", 2)
	into.Conversation, into.NewAssignee, into.NewTags = res.Conversation, "ann@support.example.com", []string{"other"}
	mustInbound(t, s, into)
	if c, _ := s.Conversation(ctx, res.Conversation); c.Assignee != "dee@support.example.com" || slices.Contains(c.Tags, "other") {
		t.Errorf("a message into the conversation changed it: %+v", c)
	}
}
