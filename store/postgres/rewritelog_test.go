package postgres

import (
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/supportgate/supportgate/store"
)

// applyChanges is what a reader does with an incremental read
// (FolderChanges): prev without the replaced conversations' entries, the
// replacements merged in by UID, then the new entries.
func applyChanges(prev []store.MailboxEntry, c store.FolderChanges) []store.MailboxEntry {
	if c.Full {
		return c.Entries
	}
	var kept []store.MailboxEntry
	for _, e := range prev {
		if !c.Replaced[e.Conversation] {
			kept = append(kept, e)
		}
	}
	out := append(kept, c.Replacements...)
	slices.SortFunc(out, func(a, b store.MailboxEntry) int { return int(a.UID) - int(b.UID) })
	return append(out, c.Entries...)
}

// TestEntryChangesReadsEverything: a reader reads everything when a
// rewrite named no conversation or too many, or when the log rows since its
// cursor were pruned; the log keeps only the last rewrites.
func TestEntryChangesReadsEverything(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, pg.DSN(t))
	a := mustInbound(t, s, newInbound(inboxA, "a@example.com", 1))
	mustInbound(t, s, newInbound(inboxA, "b@example.com", 2))
	view := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}}
	read := func(cur store.FolderCursor) store.FolderChanges {
		t.Helper()
		c, err := s.EntryChanges(ctx, view, cur)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	rewrite := func(times int, convs []int64) {
		t.Helper()
		if err := s.inTx(ctx, func(tx pgx.Tx) error {
			for range times {
				if err := noteRewrite(ctx, tx, convs); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	cur := read(store.FolderCursor{}).Cursor

	rewrite(1, []int64{a.Conversation})
	if c := read(cur); c.Full || len(c.Replaced) != 1 || len(c.Replacements) != 1 {
		t.Fatalf("one conversation rewritten: full %v, replaced %v, %d replacements", c.Full, c.Replaced, len(c.Replacements))
	}
	rewrite(1, nil) // nothing a reader holds
	if c := read(cur); c.Full || len(c.Replaced) != 1 {
		t.Fatalf("and then nothing: full %v, replaced %v", c.Full, c.Replaced)
	}
	cur = read(cur).Cursor
	if c := read(cur); c.Full || c.Replaced != nil || c.Entries != nil {
		t.Fatalf("nothing since: %+v", c)
	}
	rewrite(1, []int64{0})
	if c := read(cur); !c.Full || len(c.Entries) != 2 {
		t.Fatalf("everything rewritten: full %v, %d entries", c.Full, len(c.Entries))
	}
	cur = read(cur).Cursor
	many := make([]int64, maxPatchConversations+1)
	for i := range many {
		many[i] = int64(i + 1)
	}
	rewrite(1, many)
	if c := read(cur); !c.Full {
		t.Fatal("too many conversations rewritten at once: not a full read")
	}
	cur = read(cur).Cursor
	rewrite(1, many[:maxPatchConversations/2])
	rewrite(1, many[maxPatchConversations/2:])
	if c := read(cur); !c.Full {
		t.Fatal("too many conversations rewritten since: not a full read")
	}

	// Pruning: a cursor older than the last keepRows rows (here one a
	// rewrite) reads everything; a newer one does not.
	old := read(cur).Cursor
	rewrite(keepRows, []int64{a.Conversation})
	recent := read(old).Cursor
	rewrite(pruneEvery, []int64{a.Conversation})
	if c := read(old); !c.Full {
		t.Fatal("a cursor older than the log kept: not a full read")
	}
	if c := read(recent); c.Full {
		t.Fatal("a cursor within the log kept: a full read")
	}
	if rows := count(t, s, "rewrite_log"); rows > keepRows+pruneEvery {
		t.Fatalf("rewrite_log has %d rows, want at most %d", rows, keepRows+pruneEvery)
	}
}
