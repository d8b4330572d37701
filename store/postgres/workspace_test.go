package postgres

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// TestSharedFoldersFollowStatusAndAssignee: Mine, Unassigned, Closed and
// Spam hold a conversation's messages as its status and assignee say, with
// new UIDs whenever they enter; tags and \Flagged fill the Conversation.
func TestSharedFoldersFollowStatusAndAssignee(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
	inbox := "support@example.com"
	res := mustInbound(t, s, newInbound(inbox, "w1@example.com", 1))
	view := func(f store.Folder, agent string) []store.MailboxEntry {
		e, _ := mustEntries(t, s, store.MailboxView{Agent: agent, Folder: f, Inboxes: []string{inbox}})
		return e
	}
	if len(view(store.FolderUnassigned, "a")) != 1 || len(view(store.FolderMine, "a")) != 0 {
		t.Fatal("a new conversation is not in Unassigned")
	}
	if err := s.SetAssignee(ctx, res.Conversation, "a"); err != nil {
		t.Fatal(err)
	}
	if len(view(store.FolderMine, "a")) != 1 || len(view(store.FolderMine, "b")) != 0 || len(view(store.FolderUnassigned, "a")) != 0 {
		t.Error("assigning did not move the conversation from Unassigned to a's Mine only")
	}
	first := view(store.FolderMine, "a")[0].UID
	s.SetAssignee(ctx, res.Conversation, "")
	s.SetAssignee(ctx, res.Conversation, "a")
	if again := view(store.FolderMine, "a"); len(again) != 1 || again[0].UID <= first {
		t.Errorf("re-entering Mine reused UID %d: %+v", first, again)
	}
	if err := s.AddTags(ctx, res.Conversation, []string{"Billing", "vip"}); err != nil {
		t.Fatal(err)
	}
	s.AddTags(ctx, res.Conversation, []string{"billing"}) // case-insensitive: no second tag
	s.RemoveTags(ctx, res.Conversation, []string{"VIP", "unknown"})
	s.SetFlagged(ctx, res.Conversation, true)
	c, err := s.Conversation(ctx, res.Conversation)
	if err != nil || c.Assignee != "a" || !slices.Equal(c.Tags, []string{"Billing"}) || !c.Flagged {
		t.Errorf("conversation %+v, %v", c, err)
	}
	if e := view(store.FolderInbox, "b"); !slices.Contains(e[0].Flags, `\Flagged`) || !slices.Contains(e[0].Flags, "Billing") {
		t.Errorf("INBOX entry flags %v", e[0].Flags)
	}
	if err := s.SetAssignee(ctx, 999, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetAssignee of an unknown conversation: %v", err)
	}
	s.SetStatus(ctx, res.Conversation, store.StatusSpam)
	// Spam is the folder (\Junk special-use), not a keyword: $Junk is a
	// client's own bookkeeping (DESIGN.md §6).
	if e := view(store.FolderSpam, "b"); len(e) != 1 || slices.Contains(e[0].Flags, "$Junk") || len(view(store.FolderMine, "a")) != 0 {
		t.Errorf("spam: %+v", e)
	}
	s.SetStatus(ctx, res.Conversation, store.StatusClosed)
	closed := view(store.FolderClosed, "b")
	if len(closed) != 1 || len(view(store.FolderSpam, "b")) != 0 {
		t.Fatal("closing did not move the conversation to Closed")
	}
	// Hidden per agent.
	s.SetMarks(ctx, "b", store.FolderClosed, []uint32{closed[0].UID}, store.MarkHidden, true)
	if len(view(store.FolderClosed, "b")) != 0 || len(view(store.FolderClosed, "c")) != 1 {
		t.Error("a hidden entry is not hidden for its agent only")
	}
}

// TestPrivateMailboxes: defaults, create with parents, rename with
// children, delete, and a reply filed in its author's Sent.
func TestPrivateMailboxes(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
	res := mustInbound(t, s, newInbound("support@example.com", "p1@example.com", 1))
	msg := mustReserve(t, s)
	mustOutbound(t, s, reply(msg, res.Conversation, "agent@example.com", "customer@example.com"))
	_, sent, err := s.PrivateEntries(ctx, "agent@example.com", store.MailboxSent)
	if err != nil || len(sent) != 1 || sent[0].Message != msg || !sent[0].Seen {
		t.Fatalf("Sent: %+v %v", sent, err)
	}
	if err := s.CreateMailbox(ctx, "agent@example.com", "a/b"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMailbox(ctx, "agent@example.com", "a"); !errors.Is(err, store.ErrExists) {
		t.Errorf("creating an existing parent: %v", err)
	}
	mb, uids, err := s.AddPrivate(ctx, "agent@example.com", "a/b", []store.PrivateMessage{{Raw: []byte("x"), Flags: []string{`\Draft`}}})
	if err != nil || len(uids) != 1 || uids[0] != 1 || mb.UIDNext != 2 {
		t.Fatalf("AddPrivate: %+v %v %v", mb, uids, err)
	}
	if err := s.RenameMailbox(ctx, "agent@example.com", "a", "z"); err != nil {
		t.Fatal(err)
	}
	if raw, err := s.PrivateRaw(ctx, "agent@example.com", "z/b", 1); err != nil || string(raw) != "x" {
		t.Errorf("after RENAME: %q %v", raw, err)
	}
	if err := s.DeleteMailbox(ctx, "agent@example.com", "z"); !errors.Is(err, store.ErrHasChildren) {
		t.Errorf("deleting a parent: %v", err)
	}
	list, _ := s.PrivateMailboxes(ctx, "agent@example.com")
	var names []string
	for _, m := range list {
		names = append(names, m.Name)
	}
	if !slices.Equal(names, []string{"Drafts", "Sent", "Trash", "z", "z/b"}) {
		t.Errorf("mailboxes %v", names)
	}
	if list2, _ := s.PrivateMailboxes(ctx, "other@example.com"); len(list2) != 3 {
		t.Errorf("another agent has %d mailboxes, want the 3 defaults", len(list2))
	}
}
