package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/supportgate/supportgate/store"
)

// queueSchema is migration 3: the durable outbound queue (issue 6). The
// tables of migration 1 keep one row per message (outbound_messages) and
// per message and recipient (outbound_recipients: state, attempts,
// next_attempt, last_error); this adds when the current delivery period
// began (since; 0 = when the message was queued), whether the team was told
// of a delay, and when the row last changed.
const queueSchema = `ALTER TABLE outbound_recipients ADD COLUMN since INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE outbound_recipients ADD COLUMN delay_notified INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE outbound_recipients ADD COLUMN updated INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX outbound_messages_message ON outbound_messages(message_id);`

// recipientColumns selects a QueuedRecipient (scanRecipient reads it); the
// number is the recipient's rank by address within its message.
const recipientColumns = `SELECT o.id, o.message_id, m.conversation_id,
	(SELECT COUNT(*) FROM outbound_recipients n WHERE n.outbound_id = r.outbound_id AND n.recipient <= r.recipient),
	r.recipient, o.mail_from, r.state, r.attempts, r.next_attempt,
	CASE WHEN r.since > 0 THEN r.since ELSE o.created END, r.last_error, r.delay_notified, r.updated
	FROM outbound_recipients r
	JOIN outbound_messages o ON o.id = r.outbound_id
	JOIN messages m ON m.id = o.message_id `

type rowScanner interface{ Scan(dest ...any) error }

func scanRecipient(row rowScanner) (store.QueuedRecipient, error) {
	var q store.QueuedRecipient
	var state string
	var next, since, updated int64
	err := row.Scan(&q.QueueID, &q.Message, &q.Conversation, &q.Number, &q.Recipient, &q.MailFrom, &state,
		&q.Attempts, &next, &since, &q.LastError, &q.DelayNotified, &updated)
	q.State, q.NextAttempt, q.Since = store.RecipientState(state), fromMillis(next), fromMillis(since)
	if updated > 0 {
		q.Updated = fromMillis(updated)
	}
	return q, err
}

func (s *Store) queryRecipients(ctx context.Context, what, query string, args ...any) ([]store.QueuedRecipient, error) {
	out, err := scanRecipients(ctx, s.read, recipientColumns+query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: reading %s: %w", what, err)
	}
	return out, nil
}

// scanRecipients reads the QueuedRecipients a query of recipientColumns
// selects, on the read pool or in a write transaction.
func scanRecipients(ctx context.Context, db querier, query string, args ...any) ([]store.QueuedRecipient, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.QueuedRecipient
	for rows.Next() {
		q, err := scanRecipient(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, rows.Err()
}

// DueRecipients implements QueueStore.
func (s *Store) DueRecipients(ctx context.Context, now time.Time, limit int) ([]store.QueuedRecipient, error) {
	return s.queryRecipients(ctx, "the due queue",
		`WHERE r.state = 'queued' AND r.next_attempt <= ? ORDER BY r.next_attempt, o.id, r.recipient LIMIT ?`, millis(now), limit)
}

// NextAttempt implements QueueStore.
func (s *Store) NextAttempt(ctx context.Context) (time.Time, bool, error) {
	var next sql.NullInt64
	if err := s.read.QueryRowContext(ctx, `SELECT MIN(next_attempt) FROM outbound_recipients WHERE state = 'queued'`).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("store: reading the queue: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return fromMillis(next.Int64), true, nil
}

// BeginAttempt implements QueueStore.
func (s *Store) BeginAttempt(ctx context.Context, r store.RecipientKey, now, retryAt time.Time) (bool, error) {
	return s.updateRecipient(ctx, "claiming", `UPDATE outbound_recipients SET attempts = attempts + 1, next_attempt = ?, updated = ?
		WHERE outbound_id = ? AND recipient = ? AND state = 'queued' AND next_attempt <= ?`,
		millis(retryAt), millis(now), r.QueueID, r.Recipient, millis(now))
}

// BeginAttempts implements QueueStore.
func (s *Store) BeginAttempts(ctx context.Context, claims []store.Claim, now time.Time) ([]bool, error) {
	claimed := make([]bool, len(claims))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `UPDATE outbound_recipients SET attempts = attempts + 1, next_attempt = ?, updated = ?
			WHERE outbound_id = ? AND recipient = ? AND state = 'queued' AND next_attempt <= ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i, c := range claims {
			res, err := stmt.ExecContext(ctx, millis(c.RetryAt), millis(now), c.Key.QueueID, c.Key.Recipient, millis(now))
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			claimed[i] = n > 0
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: claiming queued recipients: %w", err)
	}
	return claimed, nil
}

// FinishAttempt implements QueueStore.
func (s *Store) FinishAttempt(ctx context.Context, r store.RecipientKey, res store.AttemptResult) (bool, error) {
	switch res.State {
	case store.RecipientQueued, store.RecipientDelivered, store.RecipientFailed:
	default:
		return false, fmt.Errorf("store: an attempt cannot end in state %q", res.State)
	}
	notified := 0
	if res.DelayNotified {
		notified = 1
	}
	var next any // NULL keeps the next attempt BeginAttempt set
	if !res.NextAttempt.IsZero() {
		next = millis(res.NextAttempt)
	}
	var n int64
	err := s.commit(ctx, func(tx *sql.Tx, ch *changes) error {
		out, err := tx.ExecContext(ctx, `UPDATE outbound_recipients
			SET state = ?, last_error = ?, delay_notified = MAX(delay_notified, ?), next_attempt = COALESCE(?, next_attempt), updated = ?
			WHERE outbound_id = ? AND recipient = ? AND state = 'queued'`,
			res.State, res.LastError, notified, next, millis(res.At), r.QueueID, r.Recipient)
		if err != nil {
			return err
		}
		if n, err = out.RowsAffected(); err != nil || n == 0 {
			return err
		}
		for _, ev := range res.Events {
			if _, err := s.addEvent(ctx, tx, ev); err != nil {
				return err
			}
			ch.Event(ev) // the team sees it; the queue has nothing more to do
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: recording an attempt on a queued recipient: %w", err)
	}
	return n > 0, nil
}

// MarkBounced implements QueueStore.
//
// Issue 13: the mark and the event are one transaction. They were two
// writes: when the second failed, the retried bounce changed nothing and
// the team never heard of the failure.
func (s *Store) MarkBounced(ctx context.Context, r store.RecipientKey, lastError string, now time.Time, ev store.Event) (bool, error) {
	var changed bool
	err := s.commit(ctx, func(tx *sql.Tx, ch *changes) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbound_recipients SET state = 'failed', last_error = ?, updated = ?
			WHERE outbound_id = ? AND recipient = ? AND state <> 'dropped' AND NOT (state = 'failed' AND last_error = ?)`,
			lastError, millis(now), r.QueueID, r.Recipient, lastError)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			return err
		}
		changed = true
		if _, err = s.addEvent(ctx, tx, ev); err != nil {
			return err
		}
		ch.Event(ev) // no queue change: nothing more to deliver
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: recording a bounce for a queued recipient: %w", err)
	}
	return changed, nil
}

func (s *Store) updateRecipient(ctx context.Context, what, query string, args ...any) (bool, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: %s a queued recipient: %w", what, err)
	}
	return n > 0, nil
}

// QueueRecipients implements QueueStore.
func (s *Store) QueueRecipients(ctx context.Context, queueID int64, activeOnly bool) ([]store.QueuedRecipient, error) {
	var where []string
	var args []any
	if queueID > 0 {
		where, args = append(where, "o.id = ?"), append(args, queueID)
	}
	if activeOnly {
		where = append(where, "r.state = 'queued'")
	}
	q := "ORDER BY o.id, r.recipient"
	if len(where) > 0 {
		q = "WHERE " + strings.Join(where, " AND ") + " " + q
	}
	return s.queryRecipients(ctx, "the queue", q, args...)
}

// QueuePage implements QueueStore: keyset paging on the primary key
// (outbound_id, recipient), one index range per page.
func (s *Store) QueuePage(ctx context.Context, q store.QueuePageQuery) ([]store.QueuedRecipient, error) {
	if q.Limit <= 0 {
		return nil, fmt.Errorf("store: reading the queue: a page of %d", q.Limit)
	}
	where := "WHERE (r.outbound_id > ? OR r.outbound_id = ? AND r.recipient > ?)"
	args := []any{q.After.QueueID, q.After.QueueID, q.After.Recipient}
	if len(q.States) > 0 {
		where += " AND r.state IN (?" + strings.Repeat(", ?", len(q.States)-1) + ")"
		for _, st := range q.States {
			args = append(args, string(st))
		}
	}
	return s.queryRecipients(ctx, "the queue", where+" ORDER BY r.outbound_id, r.recipient LIMIT ?", append(args, q.Limit)...)
}

// MessageRecipients implements QueueStore.
func (s *Store) MessageRecipients(ctx context.Context, message int64) ([]store.QueuedRecipient, error) {
	return s.queryRecipients(ctx, "the queue", `WHERE o.message_id = ? ORDER BY o.id, r.recipient`, message)
}

// RetryNow implements QueueStore.
func (s *Store) RetryNow(ctx context.Context, queueID int64, now time.Time) (int, error) {
	var n int64
	err := s.commit(ctx, func(tx *sql.Tx, ch *changes) error {
		ch.Add(store.Change{Queue: true}) // due now: the worker wakes
		res, err := tx.ExecContext(ctx, `UPDATE outbound_recipients
			SET state = 'queued', next_attempt = ?, since = CASE WHEN state = 'queued' THEN since ELSE ? END,
				delay_notified = CASE WHEN state = 'queued' THEN delay_notified ELSE 0 END, updated = ?
			WHERE outbound_id = ? AND state <> 'delivered'`, millis(now), millis(now), millis(now), queueID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: retrying queue entry %d: %w", queueID, err)
	}
	return int(n), nil
}

// Drop implements QueueStore.
//
// Issue 15: the drop and the team's events are one transaction. They were
// a write per recipient and then an event each: a failure between them left
// dropped recipients that the team never heard of.
func (s *Store) Drop(ctx context.Context, queueID int64, reason string, now time.Time, event func(store.QueuedRecipient) store.Event) ([]store.QueuedRecipient, error) {
	var dropped []store.QueuedRecipient
	err := s.commit(ctx, func(tx *sql.Tx, ch *changes) error {
		dropped = nil
		queued, err := scanRecipients(ctx, tx, recipientColumns+`WHERE o.id = ? AND r.state = 'queued' ORDER BY o.id, r.recipient`, queueID)
		if err != nil {
			return err
		}
		for _, q := range queued {
			res, err := tx.ExecContext(ctx, `UPDATE outbound_recipients SET state = 'dropped', last_error = ?, updated = ?
				WHERE outbound_id = ? AND recipient = ? AND state = 'queued'`, reason, millis(now), q.QueueID, q.Recipient)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				continue // it left the queued state since the read (another writer)
			}
			if event != nil {
				// The event sees the row as it was: its last remote answer.
				ev := event(q)
				if _, err := s.addEvent(ctx, tx, ev); err != nil {
					return err
				}
				ch.Event(ev)
			}
			// LastError stays the last answer before the drop: the team's
			// event names it.
			q.State = store.RecipientDropped
			dropped = append(dropped, q)
			ch.Add(store.Change{Queue: true})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: dropping queue entry %d: %w", queueID, err)
	}
	return dropped, nil
}

// QueueCounts implements QueueStore.
func (s *Store) QueueCounts(ctx context.Context) (map[store.RecipientState]int64, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT state, COUNT(*) FROM outbound_recipients GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("store: counting the queue: %w", err)
	}
	defer rows.Close()
	out := map[store.RecipientState]int64{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("store: counting the queue: %w", err)
		}
		out[store.RecipientState(st)] = n
	}
	return out, rows.Err()
}

// PendingDeliveries implements QueueStore.
func (s *Store) PendingDeliveries(ctx context.Context, limit int) ([]store.Delivery, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT o.id, o.message_id, o.mail_from, r.recipient, m.raw
		FROM outbound_messages o
		JOIN outbound_recipients r ON r.outbound_id = o.id
		JOIN messages m ON m.id = o.message_id
		WHERE o.id IN (SELECT DISTINCT outbound_id FROM outbound_recipients WHERE state = 'queued' ORDER BY outbound_id LIMIT ?)
		AND r.state = 'queued'
		ORDER BY o.id, r.recipient`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: reading the queue: %w", err)
	}
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		var d store.Delivery
		var rcpt string
		if err := rows.Scan(&d.ID, &d.Message, &d.MailFrom, &rcpt, &d.Raw); err != nil {
			return nil, fmt.Errorf("store: reading the queue: %w", err)
		}
		if n := len(out); n > 0 && out[n-1].ID == d.ID {
			out[n-1].Recipients = append(out[n-1].Recipients, rcpt)
			continue
		}
		d.Recipients = []string{rcpt}
		out = append(out, d)
	}
	return out, rows.Err()
}

// MarkDelivered implements QueueStore.
func (s *Store) MarkDelivered(ctx context.Context, queueID int64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE outbound_recipients SET state = 'delivered', attempts = attempts + 1
			WHERE outbound_id = ? AND state = 'queued'`, queueID)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: marking queue entry %d delivered: %w", queueID, err)
	}
	return nil
}
