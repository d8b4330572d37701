package postgres

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/supportgate/supportgate/store"
)

// folderRows lists every shared folder entry as "folder uid message assignee".
func folderRows(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT folder, uid, message_id, assignee FROM folder_entries ORDER BY folder, uid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var f, a string
		var uid, msg int64
		if err := rows.Scan(&f, &uid, &msg, &a); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %d %d %s", f, uid, msg, a))
	}
	return out
}

// TestNewMessagesEnterFoldersLikeAFullSync: a message added to a
// conversation gets only its own folder entries (enterFolders), and the
// result is what re-syncing the whole conversation would give, whatever
// the conversation went through before: assigned, unassigned, closed,
// reopened by a reply, marked spam, or created closed or in Spam.
func TestNewMessagesEnterFoldersLikeAFullSync(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
	inbox := "support@example.com"
	conv := mustInbound(t, s, newInbound(inbox, "f1@example.com", 1)).Conversation
	n := 2
	add := func() {
		in := newInbound(inbox, fmt.Sprintf("f%d@example.com", n), n)
		in.Conversation = conv
		mustInbound(t, s, in)
		n++
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"open, unassigned", func() error { return nil }},
		{"assigned", func() error { return s.UpdateConversation(ctx, store.AssigneeUpdate(conv, "alice@example.com")) }},
		{"unassigned again", func() error { return s.UpdateConversation(ctx, store.AssigneeUpdate(conv, "")) }},
		{"closed", func() error { return s.UpdateConversation(ctx, store.StatusUpdate(conv, store.StatusClosed)) }},
		{"reopened", func() error { return s.UpdateConversation(ctx, store.StatusUpdate(conv, store.StatusOpen)) }},
		{"assigned again", func() error { return s.UpdateConversation(ctx, store.AssigneeUpdate(conv, "bob@example.com")) }},
		{"spam", func() error { return s.UpdateConversation(ctx, store.StatusUpdate(conv, store.StatusSpam)) }},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		add()
		add()
		got := folderRows(t, s)
		// A full re-sync must find nothing to change.
		if err := s.inTx(ctx, func(tx pgx.Tx) error { return syncFolders(ctx, tx, conv) }); err != nil {
			t.Fatal(err)
		}
		if want := folderRows(t, s); !slices.Equal(got, want) {
			t.Fatalf("after %s, adding messages gave folders\n%v\na full sync gives\n%v", st.name, got, want)
		}
	}

	// A conversation created with a status (Inbound.NewStatus: a mail
	// quarantined to Spam, DESIGN.md §8) gets for its first message, and
	// for those that follow, the entries a full sync gives: none in INBOX.
	for _, status := range []store.Status{store.StatusSpam, store.StatusClosed, store.StatusOpen} {
		in := newInbound(inbox, fmt.Sprintf("f%d@example.com", n), n)
		in.NewStatus = status
		n++
		conv = mustInbound(t, s, in).Conversation
		add()
		got := folderRows(t, s)
		if err := s.inTx(ctx, func(tx pgx.Tx) error { return syncFolders(ctx, tx, conv) }); err != nil {
			t.Fatal(err)
		}
		if want := folderRows(t, s); !slices.Equal(got, want) {
			t.Fatalf("a conversation opened %s gave folders\n%v\na full sync gives\n%v", status, got, want)
		}
	}
}
