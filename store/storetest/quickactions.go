package storetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// One change at a time through UpdateConversation (store.StatusUpdate,
// AssigneeUpdate, KeywordsUpdate): what the helpdesk's single actions do.
func quickActionCases() []testCase {
	return []testCase{
		{"SingleQuickActions", testSingleQuickActions},
	}
}

// testSingleQuickActions: each one-change update moves the conversation
// and its folders, and a conversation that does not exist is ErrNotFound.
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
	must("assign", s.UpdateConversation(ctx, store.AssigneeUpdate(conv, agent)))
	if got := foldersOf(t, s, inboxA, agent, res.Message); !slices.Equal(got, []store.Folder{store.FolderInbox, store.FolderMine}) {
		t.Errorf("assigned: in %v, want INBOX and Mine", got)
	}
	must("tag", s.UpdateConversation(ctx, store.KeywordsUpdate(conv, []string{"Billing", "vip"}, nil)))
	must("tag again", s.UpdateConversation(ctx, store.KeywordsUpdate(conv, []string{"billing"}, nil))) // case-insensitive: no second tag
	must("untag", s.UpdateConversation(ctx, store.KeywordsUpdate(conv, nil, []string{"VIP", "unknown"})))
	must("flag", s.UpdateConversation(ctx, store.KeywordsUpdate(conv, []string{store.KeywordFlagged}, nil)))
	c := mustConversation(t, s, conv)
	if c.Assignee != agent || !slices.Equal(c.Tags, []string{"Billing"}) || !c.Flagged {
		t.Errorf("conversation %+v", c)
	}
	e, _ := mustEntries(t, s, inboxView(agent2, inboxA))
	if len(e) != 1 || !slices.Contains(e[0].Flags, store.KeywordFlagged) || !slices.Contains(e[0].Flags, "Billing") {
		t.Errorf("INBOX entry flags %+v", e)
	}
	must("unflag", s.UpdateConversation(ctx, store.KeywordsUpdate(conv, nil, []string{store.KeywordFlagged})))
	if c := mustConversation(t, s, conv); c.Flagged {
		t.Error("\\Flagged stays after it was removed")
	}
	must("close", s.UpdateConversation(ctx, store.StatusUpdate(conv, store.StatusClosed)))
	if got := foldersOf(t, s, inboxA, agent, res.Message); !slices.Equal(got, []store.Folder{store.FolderClosed}) {
		t.Errorf("closed: in %v, want Closed", got)
	}
	must("unassign", s.UpdateConversation(ctx, store.AssigneeUpdate(conv, "")))
	must("reopen", s.UpdateConversation(ctx, store.StatusUpdate(conv, store.StatusOpen)))
	if got := foldersOf(t, s, inboxA, agent, res.Message); !slices.Equal(got, []store.Folder{store.FolderInbox, store.FolderUnassigned}) {
		t.Errorf("reopened unassigned: in %v, want INBOX and Unassigned", got)
	}
	for name, err := range map[string]error{
		"status":   s.UpdateConversation(ctx, store.StatusUpdate(999, store.StatusClosed)),
		"assignee": s.UpdateConversation(ctx, store.AssigneeUpdate(999, agent)),
		"tags":     s.UpdateConversation(ctx, store.KeywordsUpdate(999, []string{"x"}, nil)),
		"flagged":  s.UpdateConversation(ctx, store.KeywordsUpdate(999, []string{store.KeywordFlagged}, nil)),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of a missing conversation: %v", name, err)
		}
	}
}
