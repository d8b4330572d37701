package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/supportgate/supportgate/store"
)

// sideSchema is migration 3: side conversations (DESIGN.md §14), as
// store/sqlite's migration 15.
const sideSchema = `
ALTER TABLE messages ADD COLUMN IF NOT EXISTS side bigint NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS sides (
	conversation_id bigint NOT NULL REFERENCES conversations (id),
	number bigint NOT NULL,
	recipients ctext NOT NULL DEFAULT '',
	hidden ctext NOT NULL DEFAULT '',
	PRIMARY KEY (conversation_id, number)
);`

// Sides implements Store.
func (s *Store) Sides(ctx context.Context, conv int64) ([]store.Side, error) {
	rows, err := s.pool.Query(ctx, `SELECT number, recipients, hidden FROM sides WHERE conversation_id = $1 ORDER BY number`, conv)
	if err != nil {
		return nil, fmt.Errorf("store: reading side conversations of %d: %w", conv, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Side, error) {
		var n int64
		var rcpts, hidden string
		err := row.Scan(&n, &rcpts, &hidden)
		return store.Side{Conversation: conv, Number: int(n), Recipients: splitList(rcpts), Hidden: splitList(hidden)}, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: reading side conversations of %d: %w", conv, err)
	}
	return out, nil
}

// writeSide creates side w.Number of conv when it has no row, and adds
// w's recipients to it, in tx; the caller holds the conversation's lock.
func writeSide(ctx context.Context, tx pgx.Tx, conv int64, w store.SideWrite) error {
	if w.Number <= 0 {
		return fmt.Errorf("store: side conversation number %d", w.Number)
	}
	var rcpts, hidden string
	err := tx.QueryRow(ctx, `SELECT recipients, hidden FROM sides WHERE conversation_id = $1 AND number = $2`, conv, w.Number).Scan(&rcpts, &hidden)
	if errors.Is(err, pgx.ErrNoRows) {
		_, err = tx.Exec(ctx, `INSERT INTO sides (conversation_id, number) VALUES ($1, $2)`, conv, w.Number)
	}
	if err != nil {
		return err
	}
	r, h := store.JoinSide(splitList(rcpts), splitList(hidden), w)
	_, err = tx.Exec(ctx, `UPDATE sides SET recipients = $1, hidden = $2 WHERE conversation_id = $3 AND number = $4`,
		joinList(r), joinList(h), conv, w.Number)
	return err
}
