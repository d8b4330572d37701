package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Subscriptions (DESIGN.md §6, RFC 9051 6.3.7), per agent, as in
// store/sqlite's subscriptions.go: a row records what the agent chose for a
// name; a name without one has the IMAP gateway's default.

// Subscriptions implements WorkspaceStore.
func (s *Store) Subscriptions(ctx context.Context, agent string) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, subscribed FROM subscriptions WHERE agent = $1`, agent)
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
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO subscriptions (agent, name, subscribed) VALUES ($1, $2, $3)
			ON CONFLICT (agent, name) DO UPDATE SET subscribed = excluded.subscribed`, agent, name, on)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: storing a subscription: %w", err)
	}
	return nil
}

// renameSubscriptions moves the subscriptions of a renamed mailbox and of
// those below it to their new names, as the mailboxes move.
func renameSubscriptions(ctx context.Context, tx pgx.Tx, agent, from, to string) error {
	// What was recorded for the new names (of mailboxes that did not
	// exist) gives way.
	if _, err := tx.Exec(ctx, `DELETE FROM subscriptions WHERE agent = $1 AND (name = $2 OR starts_with(name, $3))`,
		agent, to, to+"/"); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE subscriptions SET name = $1 || substr(name, char_length($2) + 1)
		WHERE agent = $3 AND (name = $2 OR starts_with(name, $4))`, to, from, agent, from+"/")
	return err
}
