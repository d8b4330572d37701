package sqlite

import (
	"context"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// TestSubscriptionsMigration: the private mailboxes of before migration 12,
// all shown subscribed then, stay subscribed.
func TestSubscriptionsMigration(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	if err := s.CreateMailbox(ctx, "a", "Old"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TABLE subscriptions`, `DELETE FROM schema_migrations WHERE version >= 12`} {
		if _, err := s.write.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = openTest(t, dir)
	got, err := s.Subscriptions(ctx, "a")
	if err != nil || !got["Old"] || !got[store.MailboxSent] {
		t.Errorf("after migration 12: %v, %v; want Old and Sent subscribed", got, err)
	}
}
