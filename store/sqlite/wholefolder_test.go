package sqlite

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// TestWholeFolderInTwoHalves checks that a folder read in two halves at
// once (wholefolder.go) is the folder read in one, in every view kind, and
// that a write committed between the two halves' transactions makes the
// first read the upper half itself, so that the entries are still those
// of one commit.
func TestWholeFolderInTwoHalves(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, t.TempDir())
	var msgs []int64
	for i := range 120 {
		inbox := inboxA
		if i%3 == 0 {
			inbox = inboxB
		}
		res := mustInbound(t, s, newInbound(inbox, fmt.Sprintf("whole%d@example.com", i), i))
		msgs = append(msgs, res.Message)
	}
	if err := s.SetSeen(ctx, agent, msgs[10:40], true); err != nil {
		t.Fatal(err)
	}
	views := []store.MailboxView{
		{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}},
		{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA, inboxB}},
		{Agent: agent, Folder: store.FolderUnassigned, Inboxes: []string{inboxA, inboxB}},
	}
	read := func(view store.MailboxView, splitAbove int) []store.MailboxEntry {
		t.Helper()
		s.whole.splitAbove = splitAbove
		c, err := s.EntryChanges(ctx, view, store.FolderCursor{})
		if err != nil {
			t.Fatal(err)
		}
		if !c.Full {
			t.Fatal("a read without a cursor is not full")
		}
		return c.Entries
	}
	for _, view := range views {
		one := read(view, 1<<30)
		if len(one) < 40 {
			t.Fatalf("%s %v: %d entries, want at least 40", view.Folder, view.Inboxes, len(one))
		}
		two := read(view, 10)
		if !reflect.DeepEqual(one, two) {
			t.Fatalf("%s %v: in two halves %d entries, in one %d; they differ", view.Folder, view.Inboxes, len(two), len(one))
		}
	}

	// A write between the two halves: the upper half's transaction sees
	// it, and the first transaction reads the upper half itself.
	view := views[1]
	before := read(view, 1<<30)
	var moved bool
	s.whole.beforeUpper = func() {
		if moved {
			return
		}
		moved = true
		mustInbound(t, s, newInbound(inboxA, "between@example.com", 500))
	}
	got := read(view, 10)
	s.whole.beforeUpper = nil
	if !moved {
		t.Fatal("the folder was not read in two halves")
	}
	if !reflect.DeepEqual(got, before) {
		t.Fatalf("with a write between the halves: %d entries, want the %d of the first transaction", len(got), len(before))
	}
	if after := read(view, 1<<30); len(after) != len(before)+1 {
		t.Fatalf("after the write: %d entries, want %d", len(after), len(before)+1)
	}
}
