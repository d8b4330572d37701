package sqlite

import (
	"testing"

	"github.com/supportgate/supportgate/store"
)

// modSeqs reads a view in full and returns each message's mod-sequence and
// the view's HIGHESTMODSEQ, checking that it is at least each of them.
func modSeqs(t *testing.T, s *Store, view store.MailboxView) (map[int64]int64, int64) {
	t.Helper()
	c, err := s.EntryChanges(t.Context(), view, store.FolderCursor{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]int64{}
	for _, e := range c.Entries {
		if e.ModSeq < 1 || e.ModSeq > c.HighestModSeq {
			t.Fatalf("%s of %s: message %d has MODSEQ %d, HIGHESTMODSEQ %d", view.Folder, view.Agent, e.Message, e.ModSeq, c.HighestModSeq)
		}
		out[e.Message] = e.ModSeq
	}
	return out, c.HighestModSeq
}

// TestModSeqMigrationAgain runs migration 14 again on a database that has
// it (its ADD COLUMNs are skipped) and on one without the counter row: the
// mod-sequences recorded stay, and the next is above them.
func TestModSeqMigrationAgain(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	a := mustInbound(t, s, newInbound(inboxA, "a@example.com", 1))
	view := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}}
	before, high := modSeqs(t, s, view)
	if _, err := s.write.ExecContext(t.Context(), `DELETE FROM schema_migrations WHERE version >= 14`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir)
	after, high2 := modSeqs(t, s, view)
	if after[a.Message] != before[a.Message] || high2 != high {
		t.Fatalf("after the migration again: MODSEQ %v (was %v), HIGHESTMODSEQ %d (was %d)", after, before, high2, high)
	}
	if err := s.SetSeen(t.Context(), agent, []int64{a.Message}, true); err != nil {
		t.Fatal(err)
	}
	if now, _ := modSeqs(t, s, view); now[a.Message] <= high {
		t.Errorf("MODSEQ after a change: %d, not above %d", now[a.Message], high)
	}
}
