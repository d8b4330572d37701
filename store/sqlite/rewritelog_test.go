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

// TestEntryChangesReadsOnlyTouched: in a folder of n conversations, a
// status change, an assignment, keywords, \Seen or a mark on one
// conversation is read back as that conversation's entries only (not the
// n conversations'), through the indexes of its messages. That the
// changes applied give what a full read gives is the conformance suite's
// (storetest, EntryChangesMatchFullReads).
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
	curs := map[store.Folder]store.FolderCursor{}
	for _, f := range store.SharedFolders() {
		views[f] = store.MailboxView{Agent: agent, Folder: f, Inboxes: []string{inboxA}}
		c, err := s.EntryChanges(ctx, views[f], store.FolderCursor{})
		if err != nil || !c.Full {
			t.Fatalf("first read of %s: full %v, %v", f, c.Full, err)
		}
		curs[f] = c.Cursor
	}

	conv := convs[n/2] // two messages (150 % 3 == 0)
	// entriesOf returns the conversation's entries in who's INBOX.
	entriesOf := func(who string) []store.MailboxEntry {
		es, _ := mustEntries(t, s, store.MailboxView{Agent: who, Folder: store.FolderInbox, Inboxes: []string{inboxA}})
		return slices.DeleteFunc(es, func(e store.MailboxEntry) bool { return e.Conversation != conv })
	}
	tag, assignee, none := []string{"billing"}, agent, ""
	status := func(st store.Status) error {
		return s.UpdateConversation(ctx, store.ConversationUpdate{Conversation: conv, Status: &st})
	}
	writes := []struct {
		name string
		do   func() error
	}{
		{"flagged", func() error { return s.SetFlagged(ctx, conv, true) }},
		{"tag", func() error {
			return s.UpdateConversation(ctx, store.ConversationUpdate{Conversation: conv, AddTags: tag})
		}},
		{"seen", func() error { return s.SetSeen(ctx, agent, messagesOf(entriesOf(agent)), true) }},
		{"deleted", func() error {
			return s.SetMarks(ctx, agent, store.FolderInbox, []uint32{entriesOf(agent)[0].UID}, store.MarkDeleted, true)
		}},
		{"hidden", func() error {
			return s.SetMarks(ctx, agent, store.FolderInbox, []uint32{entriesOf(agent)[0].UID}, store.MarkHidden, true)
		}},
		{"shown", func() error {
			// The entry the reader no longer has comes back below the last UID.
			return s.SetMarks(ctx, agent, store.FolderInbox, []uint32{entriesOf("bob@example.com")[0].UID}, store.MarkHidden, false)
		}},
		{"assigned", func() error {
			return s.UpdateConversation(ctx, store.ConversationUpdate{Conversation: conv, Assignee: &assignee})
		}},
		{"closed", func() error { return status(store.StatusClosed) }},
		{"spam", func() error { return status(store.StatusSpam) }},
		{"reopened", func() error { return status(store.StatusOpen) }},
		{"unassigned", func() error {
			return s.UpdateConversation(ctx, store.ConversationUpdate{Conversation: conv, Assignee: &none})
		}},
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
			if w.name == "shown" && f == store.FolderInbox && len(c.Replacements) == 0 {
				t.Fatalf("an entry shown again is not among the replacements")
			}
			curs[f] = c.Cursor
		}
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
