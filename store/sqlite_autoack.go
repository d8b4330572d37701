package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// autoAckSchema keeps one row per automatic acknowledgement sent, for a day:
// enough to count them per inbox and recipient over the last 24 hours.
const autoAckSchema = `CREATE TABLE auto_acks (
		inbox TEXT NOT NULL,
		recipient TEXT NOT NULL,
		sent INTEGER NOT NULL
	);
	CREATE INDEX auto_acks_recipient ON auto_acks(inbox, recipient, sent);
	CREATE INDEX auto_acks_sent ON auto_acks(sent)`

// autoAckWindow is the period the limit counts over.
const autoAckWindow = 24 * time.Hour

// ClaimAutoAck implements Store. The count and the insert are one write
// transaction, so two messages from the same address arriving at once
// cannot both claim the last acknowledgement. Rows older than the window
// are deleted on the way.
func (s *SQLite) ClaimAutoAck(ctx context.Context, inbox, recipient string, now time.Time, limit int) (bool, error) {
	inbox, recipient = strings.ToLower(inbox), strings.ToLower(recipient)
	since := millis(now.Add(-autoAckWindow))
	claimed := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM auto_acks WHERE sent <= ?`, since); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM auto_acks WHERE inbox = ? AND recipient = ? AND sent > ?`,
			inbox, recipient, since).Scan(&n); err != nil {
			return err
		}
		if n >= limit {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO auto_acks (inbox, recipient, sent) VALUES (?, ?, ?)`,
			inbox, recipient, millis(now)); err != nil {
			return err
		}
		claimed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: recording an automatic acknowledgement: %w", err)
	}
	return claimed, nil
}

// ReleaseAutoAck implements Store: it deletes the one row ClaimAutoAck
// recorded for inbox and recipient at claimed, so that the claim no longer
// counts. Releasing what was not claimed, or twice, does nothing.
func (s *SQLite) ReleaseAutoAck(ctx context.Context, inbox, recipient string, claimed time.Time) error {
	inbox, recipient = strings.ToLower(inbox), strings.ToLower(recipient)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM auto_acks WHERE rowid IN
			(SELECT rowid FROM auto_acks WHERE inbox = ? AND recipient = ? AND sent = ? LIMIT 1)`,
			inbox, recipient, millis(claimed))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: releasing an automatic acknowledgement: %w", err)
	}
	return nil
}
