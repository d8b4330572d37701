package sqlite

import (
	"testing"

	"github.com/supportgate/supportgate/store"
)

// TestNoticesMigrationStartsAtLastMessage: followers from before the
// notices existed are told only of what comes after the upgrade.
func TestNoticesMigrationStartsAtLastMessage(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openTest(t, dir)
	res := mustInbound(t, s, newInbound(inboxA, "old@example.com", 1))
	if err := s.UpdateConversation(ctx, store.ConversationUpdate{Conversation: res.Conversation, AddFollowers: []string{"cfo@example.com"}}); err != nil {
		t.Fatal(err)
	}
	in := newInbound(inboxA, "old2@example.com", 2)
	in.Conversation = res.Conversation
	second := mustInbound(t, s, in)
	// A database of before migration 11: followers, no notices.
	for _, q := range []string{`DROP TABLE follower_notices`, `DELETE FROM schema_migrations WHERE version >= 11`} {
		if _, err := s.write.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = openTest(t, dir)
	var since, through int64
	if err := s.read.QueryRow(`SELECT since, notified_through FROM follower_notices WHERE address = 'cfo@example.com'`).Scan(&since, &through); err != nil ||
		since != second.Message || through != second.Message {
		t.Fatalf("after the migration: since %d, through %d (%v); want %d", since, through, err, second.Message)
	}
	if ns, err := s.PendingNotices(ctx); err != nil || len(ns) != 0 {
		t.Errorf("pending after the migration: %+v, %v", ns, err)
	}
}
