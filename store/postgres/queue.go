package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/supportgate/supportgate/store"
)

// The outbound queue (DESIGN.md §9, §15), as in store/sqlite's queue.go.
// Several nodes deliver from it: a claim (BeginAttempt) moves the
// recipient's next attempt to its retry time, which is its lease. It takes
// the row with FOR UPDATE SKIP LOCKED, so that a node never waits for
// another's claim of the same row and then claims it a second time; an
// attempt that does not finish by its retry time (its node died) is due
// again and another node takes it: nothing is lost, and nothing is sent
// twice beyond SMTP's at-least-once.

// recipientColumns selects a QueuedRecipient (scanRecipient reads it); the
// number is the recipient's rank by address within its message.
const recipientColumns = `SELECT o.id, o.message_id, m.conversation_id,
	(SELECT COUNT(*) FROM outbound_recipients n WHERE n.outbound_id = r.outbound_id AND n.recipient <= r.recipient),
	r.recipient, o.mail_from, r.state, r.attempts, r.next_attempt,
	CASE WHEN r.since > 0 THEN r.since ELSE o.created END, r.last_error, r.delay_notified, r.updated
	FROM outbound_recipients r
	JOIN outbound_messages o ON o.id = r.outbound_id
	JOIN messages m ON m.id = o.message_id `

func scanRecipient(row pgx.Row) (store.QueuedRecipient, error) {
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

func queryRecipients(ctx context.Context, q querier, what, query string, args ...any) ([]store.QueuedRecipient, error) {
	rows, err := q.Query(ctx, recipientColumns+query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: reading %s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.QueuedRecipient, error) { return scanRecipient(row) })
	if err != nil {
		return nil, fmt.Errorf("store: reading %s: %w", what, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// DueRecipients implements QueueStore.
func (s *Store) DueRecipients(ctx context.Context, now time.Time, limit int) ([]store.QueuedRecipient, error) {
	return queryRecipients(ctx, s.pool, "the due queue",
		`WHERE r.state = 'queued' AND r.next_attempt <= $1 ORDER BY r.next_attempt, o.id, r.recipient LIMIT $2`, millis(now), limit)
}

// NextAttempt implements QueueStore.
func (s *Store) NextAttempt(ctx context.Context) (time.Time, bool, error) {
	var next *int64
	if err := s.pool.QueryRow(ctx, `SELECT MIN(next_attempt) FROM outbound_recipients WHERE state = 'queued'`).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("store: reading the queue: %w", err)
	}
	if next == nil {
		return time.Time{}, false, nil
	}
	return fromMillis(*next), true, nil
}

// claim is the claim of one due recipient: the row is taken only when no
// other transaction holds it (SKIP LOCKED), and only while it is queued
// and due.
const claim = `UPDATE outbound_recipients SET attempts = attempts + 1, next_attempt = $1, updated = $2
	WHERE (outbound_id, recipient) IN (SELECT outbound_id, recipient FROM outbound_recipients
		WHERE outbound_id = $3 AND recipient = $4 AND state = 'queued' AND next_attempt <= $2 FOR UPDATE SKIP LOCKED)
	AND state = 'queued' AND next_attempt <= $2`

// BeginAttempt implements QueueStore.
func (s *Store) BeginAttempt(ctx context.Context, r store.RecipientKey, now, retryAt time.Time) (bool, error) {
	claimed, err := s.BeginAttempts(ctx, []store.Claim{{Key: r, RetryAt: retryAt}}, now)
	if err != nil {
		return false, err
	}
	return claimed[0], nil
}

// BeginAttempts implements QueueStore.
func (s *Store) BeginAttempts(ctx context.Context, claims []store.Claim, now time.Time) ([]bool, error) {
	claimed := make([]bool, len(claims))
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		for i, c := range claims {
			n, err := execCount(ctx, tx, claim, millis(c.RetryAt), millis(now), c.Key.QueueID, c.Key.Recipient)
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
	var next *int64 // NULL keeps the next attempt BeginAttempt set
	if !res.NextAttempt.IsZero() {
		n := millis(res.NextAttempt)
		next = &n
	}
	var n int64
	err := s.commit(ctx, func(tx pgx.Tx, ch *changes) (err error) {
		n, err = execCount(ctx, tx, `UPDATE outbound_recipients
			SET state = $1, last_error = $2, delay_notified = delay_notified OR $3, next_attempt = COALESCE($4, next_attempt), updated = $5
			WHERE outbound_id = $6 AND recipient = $7 AND state = 'queued'`,
			string(res.State), res.LastError, res.DelayNotified, next, millis(res.At), r.QueueID, r.Recipient)
		if err != nil || n == 0 {
			return err
		}
		// The outcome's events commit with it, or neither does.
		for _, ev := range res.Events {
			if _, err := s.addEvent(ctx, tx, ev); err != nil {
				return err
			}
			ch.Event(ev)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: recording an attempt on a queued recipient: %w", err)
	}
	return n > 0, nil
}

// MarkBounced implements QueueStore: the mark and the event are one
// transaction (issue 13).
func (s *Store) MarkBounced(ctx context.Context, r store.RecipientKey, lastError string, now time.Time, ev store.Event) (bool, error) {
	var changed bool
	err := s.commit(ctx, func(tx pgx.Tx, ch *changes) error {
		n, err := execCount(ctx, tx, `UPDATE outbound_recipients SET state = 'failed', last_error = $1, updated = $2
			WHERE outbound_id = $3 AND recipient = $4 AND state <> 'dropped' AND NOT (state = 'failed' AND last_error = $1)`,
			lastError, millis(now), r.QueueID, r.Recipient)
		changed = n > 0
		if err != nil || !changed {
			return err
		}
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

// QueueRecipients implements QueueStore.
func (s *Store) QueueRecipients(ctx context.Context, queueID int64, activeOnly bool) ([]store.QueuedRecipient, error) {
	var where []string
	var args []any
	if queueID > 0 {
		where, args = append(where, "o.id = $1"), append(args, queueID)
	}
	if activeOnly {
		where = append(where, "r.state = 'queued'")
	}
	q := "ORDER BY o.id, r.recipient"
	if len(where) > 0 {
		q = "WHERE " + strings.Join(where, " AND ") + " " + q
	}
	return queryRecipients(ctx, s.pool, "the queue", q, args...)
}

// QueuePage implements QueueStore: keyset paging on the primary key
// (outbound_id, recipient), one index range per page.
func (s *Store) QueuePage(ctx context.Context, q store.QueuePageQuery) ([]store.QueuedRecipient, error) {
	if q.Limit <= 0 {
		return nil, fmt.Errorf("store: reading the queue: a page of %d", q.Limit)
	}
	where := "WHERE (r.outbound_id, r.recipient) > ($1, $2)"
	args := []any{q.After.QueueID, q.After.Recipient, q.Limit}
	if len(q.States) > 0 {
		states := make([]string, len(q.States))
		for i, st := range q.States {
			states[i] = string(st)
		}
		where += " AND r.state = ANY($4)"
		args = append(args, states)
	}
	return queryRecipients(ctx, s.pool, "the queue", where+" ORDER BY r.outbound_id, r.recipient LIMIT $3", args...)
}

// MessageRecipients implements QueueStore.
func (s *Store) MessageRecipients(ctx context.Context, message int64) ([]store.QueuedRecipient, error) {
	return queryRecipients(ctx, s.pool, "the queue", `WHERE o.message_id = $1 ORDER BY o.id, r.recipient`, message)
}

// RetryNow implements QueueStore.
func (s *Store) RetryNow(ctx context.Context, queueID int64, now time.Time) (int, error) {
	var n int64
	err := s.change(ctx, fmt.Sprintf("retrying queue entry %d", queueID), func(tx pgx.Tx, ch *changes) (err error) {
		ch.Add(store.Change{Queue: true}) // due now: the worker wakes
		n, err = execCount(ctx, tx, `UPDATE outbound_recipients
			SET state = 'queued', next_attempt = $1, since = CASE WHEN state = 'queued' THEN since ELSE $1 END,
				delay_notified = CASE WHEN state = 'queued' THEN delay_notified ELSE false END, updated = $1
			WHERE outbound_id = $2 AND state <> 'delivered'`, millis(now), queueID)
		return err
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// Drop implements QueueStore: the recipients still queued are dropped in
// one transaction with the team's events (issue 15), each only if it is
// still queued under its row's lock (an attempt finishing at once on
// another node wins or loses whole).
func (s *Store) Drop(ctx context.Context, queueID int64, reason string, now time.Time, event func(store.QueuedRecipient) store.Event) ([]store.QueuedRecipient, error) {
	var dropped []store.QueuedRecipient
	err := s.commit(ctx, func(tx pgx.Tx, ch *changes) error {
		dropped = nil
		queued, err := queryRecipients(ctx, tx, "the queue", `WHERE o.id = $1 AND r.state = 'queued' ORDER BY o.id, r.recipient`, queueID)
		if err != nil {
			return err
		}
		for _, q := range queued {
			n, err := execCount(ctx, tx, `UPDATE outbound_recipients SET state = 'dropped', last_error = $1, updated = $2
				WHERE outbound_id = $3 AND recipient = $4 AND state = 'queued'`, reason, millis(now), q.QueueID, q.Recipient)
			if err != nil {
				return err
			}
			if n == 0 {
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
	rows, err := s.pool.Query(ctx, `SELECT state, COUNT(*) FROM outbound_recipients GROUP BY state`)
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
	rows, err := s.pool.Query(ctx, `SELECT o.id, o.message_id, o.mail_from, r.recipient, m.raw
		FROM outbound_messages o
		JOIN outbound_recipients r ON r.outbound_id = o.id
		JOIN messages m ON m.id = o.message_id
		WHERE o.id IN (SELECT DISTINCT outbound_id FROM outbound_recipients WHERE state = 'queued' ORDER BY outbound_id LIMIT $1)
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
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE outbound_recipients SET state = 'delivered', attempts = attempts + 1
			WHERE outbound_id = $1 AND state = 'queued'`, queueID)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: marking queue entry %d delivered: %w", queueID, err)
	}
	return nil
}
