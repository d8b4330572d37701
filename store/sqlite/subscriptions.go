package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// Subscriptions (DESIGN.md §6, RFC 9051 6.3.7): per agent and real. A row
// records what the agent chose for a name, which need not be a mailbox
// that exists (RFC 3501 6.3.6: subscribing to any name is allowed, and a
// deleted mailbox stays subscribed). A name without a row has the default
// the IMAP gateway gives it: subscribed for the shared folders, Drafts,
// Sent and Trash, not for a folder the agent creates (the client
// subscribes it, and imaptest checks that CREATE does not).

// subscriptionsSchema is migration 12 (tests run it again). The agents' existing private
// mailboxes were all shown subscribed before it; they stay subscribed.
const subscriptionsSchema = `CREATE TABLE IF NOT EXISTS subscriptions (
	agent TEXT NOT NULL,
	name TEXT NOT NULL,
	subscribed INTEGER NOT NULL,
	PRIMARY KEY (agent, name)
);
INSERT OR IGNORE INTO subscriptions (agent, name, subscribed) SELECT agent, name, 1 FROM private_mailboxes`

// Subscriptions implements WorkspaceStore.
func (s *Store) Subscriptions(ctx context.Context, agent string) (map[string]bool, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT name, subscribed FROM subscriptions WHERE agent = ?`, agent)
	if err != nil {
		return nil, fmt.Errorf("store: reading subscriptions of %s: %w", agent, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var name string
		var on bool
		if err := rows.Scan(&name, &on); err != nil {
			return nil, fmt.Errorf("store: reading subscriptions of %s: %w", agent, err)
		}
		out[name] = on
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading subscriptions of %s: %w", agent, err)
	}
	return out, nil
}

// SetSubscribed implements WorkspaceStore.
func (s *Store) SetSubscribed(ctx context.Context, agent, name string, on bool) error {
	// Not published: no folder's contents change.
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO subscriptions (agent, name, subscribed) VALUES (?, ?, ?)
			ON CONFLICT (agent, name) DO UPDATE SET subscribed = excluded.subscribed`, agent, name, on)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: storing a subscription: %w", err)
	}
	return nil
}

// renameSubscriptions moves the subscriptions of a renamed mailbox and of
// those below it to their new names, as the mailboxes move (the client
// keeps seeing what it had subscribed).
func renameSubscriptions(ctx context.Context, tx *sql.Tx, agent, from, to string) error {
	// What was recorded for the new names (of mailboxes that did not
	// exist) gives way.
	if _, err := tx.ExecContext(ctx, `DELETE FROM subscriptions WHERE agent = ? AND (name = ? OR substr(name, 1, ?) = ?)`,
		agent, to, len(to)+1, to+"/"); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE subscriptions SET name = ? || substr(name, ?) WHERE agent = ? AND (name = ? OR substr(name, 1, ?) = ?)`,
		to, len(from)+1, agent, from, len(from)+1, from+"/")
	return err
}
