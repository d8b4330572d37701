package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/supportgate/supportgate/store"
)

// sideSchema is migration 15: side conversations (DESIGN.md §14). A
// message of one has kind 'side' and its number; a side keeps its own
// recipients, the visible ones and the Bcc ones agents alone see.
const sideSchema = `
ALTER TABLE messages ADD COLUMN side INTEGER NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS sides (
	conversation_id INTEGER NOT NULL REFERENCES conversations(id),
	number INTEGER NOT NULL,
	recipients TEXT NOT NULL DEFAULT '',
	hidden TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (conversation_id, number)
);`

// Sides implements Store.
func (s *Store) Sides(ctx context.Context, conv int64) ([]store.Side, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT number, recipients, hidden FROM sides WHERE conversation_id = ? ORDER BY number`, conv)
	if err != nil {
		return nil, fmt.Errorf("store: reading side conversations of %d: %w", conv, err)
	}
	defer rows.Close()
	var out []store.Side
	for rows.Next() {
		sd := store.Side{Conversation: conv}
		var rcpts, hidden string
		if err := rows.Scan(&sd.Number, &rcpts, &hidden); err != nil {
			return nil, fmt.Errorf("store: reading side conversations of %d: %w", conv, err)
		}
		sd.Recipients, sd.Hidden = splitList(rcpts), splitList(hidden)
		out = append(out, sd)
	}
	return out, rows.Err()
}

// writeSide creates side w.Number of conv when it has no row, and adds
// w's recipients to it, in tx.
func writeSide(ctx context.Context, tx *sql.Tx, conv int64, w store.SideWrite) error {
	if w.Number <= 0 {
		return fmt.Errorf("store: side conversation number %d", w.Number)
	}
	var rcpts, hidden string
	err := tx.QueryRowContext(ctx, `SELECT recipients, hidden FROM sides WHERE conversation_id = ? AND number = ?`, conv, w.Number).Scan(&rcpts, &hidden)
	if errors.Is(err, sql.ErrNoRows) {
		_, err = tx.ExecContext(ctx, `INSERT INTO sides (conversation_id, number) VALUES (?, ?)`, conv, w.Number)
	}
	if err != nil {
		return err
	}
	r, h := store.JoinSide(splitList(rcpts), splitList(hidden), w)
	_, err = tx.ExecContext(ctx, `UPDATE sides SET recipients = ?, hidden = ? WHERE conversation_id = ? AND number = ?`,
		joinList(r), joinList(h), conv, w.Number)
	return err
}
