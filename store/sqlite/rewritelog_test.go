package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

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

// TestEntryChangesReadsOnlyTouched: in a folder of n conversations, a
// status change, an assignment, keywords, \Seen or a mark on one
// conversation is read back as that conversation's entries only (not the
// n conversations'), through the indexes of its messages, and applying it
// to the earlier read gives what a full read gives.
func TestEntryChangesReadsOnlyTouched(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, t.TempDir())
	const n = 300
	var convs []int64
	for i := range n {
		res := mustInbound(t, s, newInbound(inboxA, fmt.Sprintf("c%d@example.com", i), i))
		convs = append(convs, res.Conversation)
		if i%3 == 0 { // some conversations have several messages
			in := newInbound(inboxA, fmt.Sprintf("c%d-r@example.com", i), n+i)
			in.Conversation = res.Conversation
			mustInbound(t, s, in)
		}
	}
	views := map[store.Folder]store.MailboxView{}
	prev := map[store.Folder][]store.MailboxEntry{}
	curs := map[store.Folder]store.FolderCursor{}
	for _, f := range store.SharedFolders() {
		views[f] = store.MailboxView{Agent: agent, Folder: f, Inboxes: []string{inboxA}}
		c, err := s.EntryChanges(ctx, views[f], store.FolderCursor{})
		if err != nil || !c.Full {
			t.Fatalf("first read of %s: full %v, %v", f, c.Full, err)
		}
		prev[f], curs[f] = c.Entries, c.Cursor
	}
	if len(prev[store.FolderInbox]) < n {
		t.Fatalf("INBOX has %d entries, want at least %d", len(prev[store.FolderInbox]), n)
	}

	conv := convs[n/2] // two messages (150 % 3 == 0)
	entriesOf := func(es []store.MailboxEntry, c int64) int {
		k := 0
		for _, e := range es {
			if e.Conversation == c {
				k++
			}
		}
		return k
	}
	inboxUID := func() uint32 {
		for _, e := range prev[store.FolderInbox] {
			if e.Conversation == conv {
				return e.UID
			}
		}
		t.Fatal("no INBOX entry of the conversation")
		return 0
	}
	writes := []struct {
		name string
		do   func() error
	}{
		{"flagged", func() error { return s.SetFlagged(ctx, conv, true) }},
		{"tag", func() error { return s.AddTags(ctx, conv, []string{"billing"}) }},
		{"seen", func() error {
			var ms []int64
			for _, e := range prev[store.FolderInbox] {
				if e.Conversation == conv {
					ms = append(ms, e.Message)
				}
			}
			return s.SetSeen(ctx, agent, ms, true)
		}},
		{"deleted", func() error {
			return s.SetMarks(ctx, agent, store.FolderInbox, []uint32{inboxUID()}, store.MarkDeleted, true)
		}},
		{"hidden", func() error {
			return s.SetMarks(ctx, agent, store.FolderInbox, []uint32{inboxUID()}, store.MarkHidden, true)
		}},
		{"shown", func() error {
			// The entry prev no longer has comes back below the last UID.
			es, _, err := s.Entries(ctx, store.MailboxView{Agent: "bob@example.com", Folder: store.FolderInbox, Inboxes: []string{inboxA}})
			for _, e := range es {
				if e.Conversation == conv {
					return s.SetMarks(ctx, agent, store.FolderInbox, []uint32{e.UID}, store.MarkHidden, false)
				}
			}
			return err
		}},
		{"assigned", func() error { return s.SetAssignee(ctx, conv, agent) }},
		{"closed", func() error { return s.SetStatus(ctx, conv, store.StatusClosed) }},
		{"spam", func() error { return s.SetStatus(ctx, conv, store.StatusSpam) }},
		{"reopened", func() error { return s.SetStatus(ctx, conv, store.StatusOpen) }},
		{"unassigned", func() error { return s.SetAssignee(ctx, conv, "") }},
	}
	for _, w := range writes {
		if err := w.do(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		for _, f := range store.SharedFolders() {
			c, err := s.EntryChanges(ctx, views[f], curs[f])
			if err != nil {
				t.Fatal(err)
			}
			if c.Full || !reflect.DeepEqual(c.Replaced, map[int64]bool{conv: true}) {
				t.Fatalf("after %s, %s: full %v, replaced %v; want conversation %d replaced", w.name, f, c.Full, c.Replaced, conv)
			}
			// O(1) conversations read: the entries of conv only, a few.
			for _, e := range slices.Concat(c.Replacements, c.Entries) {
				if e.Conversation != conv {
					t.Fatalf("after %s, %s: read an entry of conversation %d", w.name, f, e.Conversation)
				}
			}
			if k := len(c.Replacements) + len(c.Entries); k > 2 {
				t.Fatalf("after %s, %s: %d entries read, want at most the conversation's 2", w.name, f, k)
			}
			full, _, err := s.Entries(ctx, views[f])
			if err != nil {
				t.Fatal(err)
			}
			got := applyChanges(prev[f], c)
			if !reflect.DeepEqual(got, full) {
				t.Fatalf("after %s, %s: applied %v, full read %v", w.name, f, got, full)
			}
			if w.name == "shown" && f == store.FolderInbox && entriesOf(c.Replacements, conv) == 0 {
				t.Fatalf("an entry shown again is not among the replacements")
			}
			prev[f], curs[f] = got, c.Cursor
		}
	}

	// EntriesSince still reads everything after a rewrite.
	_, _, cur, _, err := s.EntriesSince(ctx, views[store.FolderInbox], store.FolderCursor{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetFlagged(ctx, conv, false); err != nil {
		t.Fatal(err)
	}
	if es, _, _, appended, err := s.EntriesSince(ctx, views[store.FolderInbox], cur); err != nil || appended || len(es) < n {
		t.Fatalf("EntriesSince after a rewrite: %d entries, appended %v, %v; want all of them", len(es), appended, err)
	}

	// The query of a few conversations' entries goes through their
	// messages, never through the folder.
	for _, f := range store.SharedFolders() {
		q, args := entriesQuery(views[f], 0, 1<<31, []int64{conv, convs[1]})
		plan := queryPlan(t, s, q, args)
		if strings.Contains(plan, "SCAN ") || !strings.Contains(plan, "SEARCH m USING INDEX messages_conversation (conversation_id=?)") ||
			!strings.Contains(plan, "SEARCH e USING INDEX folder_entries_message (message_id=? AND folder=?)") {
			t.Fatalf("plan of the %s query scans:\n%s", f, plan)
		}
	}
}

func queryPlan(t *testing.T, s *Store, q string, args []any) string {
	t.Helper()
	rows, err := s.read.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// TestEntryChangesReadsEverything: a reader reads everything when a
// rewrite named no conversation or too many, or when the log rows since its
// cursor were pruned; the log keeps only the last rewrites.
func TestEntryChangesReadsEverything(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, t.TempDir())
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
		if err := s.inTx(ctx, func(tx *sql.Tx) error {
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
	rewrite(1, allConversations)
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

// TestRewriteLogMigration: a database whose rewrites were counted before
// the log existed has them below the log's floor, so cursors of then read
// everything, and the migration can run again.
func TestRewriteLogMigration(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	mustInbound(t, s, newInbound(inboxA, "a@example.com", 1))
	view := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}}
	c, err := s.EntryChanges(ctx, view, store.FolderCursor{})
	if err != nil {
		t.Fatal(err)
	}
	cur := c.Cursor
	for _, q := range []string{`DROP TABLE rewrite_log`, `DELETE FROM sequences WHERE name = 'rewrite_log_floor'`,
		`UPDATE sequences SET value = value + 5 WHERE name = 'rewrites'`,
		`INSERT INTO sequences (name, value) VALUES ('rewrites', 5) ON CONFLICT DO NOTHING`,
		`DELETE FROM schema_migrations WHERE version >= 9`} {
		if _, err := s.write.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.Close()
	s = openTest(t, dir)
	if got, want := sequence(t, s, rewriteLogFloor), sequence(t, s, rewritesSequence); got != want || got == 0 {
		t.Fatalf("floor %d after the migration, want the rewrites counter %d", got, want)
	}
	if c, err := s.EntryChanges(ctx, view, cur); err != nil || !c.Full {
		t.Fatalf("a cursor from before the migration: full %v, %v", c.Full, err)
	}
	if _, err := s.write.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version >= 9`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	openTest(t, dir)
}
