package storetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// The single-purpose writes of a conversation (Store.SetStatus and
// WorkspaceStore's SetAssignee, AddTags, RemoveTags, SetFlagged). The rest
// of the suite changes conversations through UpdateConversation; should
// these leave the contract, this file goes with them.
func quickActionCases() []testCase {
	return []testCase{
		{"SingleQuickActions", testSingleQuickActions},
	}
}

// testSingleQuickActions: each method changes the conversation and its
// folders as the same change through UpdateConversation does, and refuses
// a conversation that does not exist.
func testSingleQuickActions(t *testing.T, s store.Store) {
	ctx := t.Context()
	res := mustInbound(t, s, newInbound(inboxA, "q1@example.com", 1))
	conv := res.Conversation
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("SetAssignee", s.SetAssignee(ctx, conv, agent))
	if got := foldersOf(t, s, inboxA, agent, res.Message); !slices.Equal(got, []store.Folder{store.FolderInbox, store.FolderMine}) {
		t.Errorf("assigned: in %v, want INBOX and Mine", got)
	}
	must("AddTags", s.AddTags(ctx, conv, []string{"Billing", "vip"}))
	must("AddTags again", s.AddTags(ctx, conv, []string{"billing"})) // case-insensitive: no second tag
	must("RemoveTags", s.RemoveTags(ctx, conv, []string{"VIP", "unknown"}))
	must("SetFlagged", s.SetFlagged(ctx, conv, true))
	c := mustConversation(t, s, conv)
	if c.Assignee != agent || !slices.Equal(c.Tags, []string{"Billing"}) || !c.Flagged {
		t.Errorf("conversation %+v", c)
	}
	e, _ := mustEntries(t, s, inboxView(agent2, inboxA))
	if len(e) != 1 || !slices.Contains(e[0].Flags, store.KeywordFlagged) || !slices.Contains(e[0].Flags, "Billing") {
		t.Errorf("INBOX entry flags %+v", e)
	}
	must("SetFlagged off", s.SetFlagged(ctx, conv, false))
	if c := mustConversation(t, s, conv); c.Flagged {
		t.Error("\\Flagged stays after SetFlagged(false)")
	}
	must("SetStatus", s.SetStatus(ctx, conv, store.StatusClosed))
	if got := foldersOf(t, s, inboxA, agent, res.Message); !slices.Equal(got, []store.Folder{store.FolderClosed}) {
		t.Errorf("closed: in %v, want Closed", got)
	}
	must("SetAssignee none", s.SetAssignee(ctx, conv, ""))
	must("SetStatus open", s.SetStatus(ctx, conv, store.StatusOpen))
	if got := foldersOf(t, s, inboxA, agent, res.Message); !slices.Equal(got, []store.Folder{store.FolderInbox, store.FolderUnassigned}) {
		t.Errorf("reopened unassigned: in %v, want INBOX and Unassigned", got)
	}
	for name, err := range map[string]error{
		"SetStatus":   s.SetStatus(ctx, 999, store.StatusClosed),
		"SetAssignee": s.SetAssignee(ctx, 999, agent),
		"AddTags":     s.AddTags(ctx, 999, []string{"x"}),
		"SetFlagged":  s.SetFlagged(ctx, 999, true),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of a missing conversation: %v", name, err)
		}
	}
}
