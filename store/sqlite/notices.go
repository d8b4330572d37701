package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/supportgate/supportgate/store"
)

// noticesSchema keeps one row per follower and conversation (notices.go).
// Written so that running it again creates nothing twice; followers of
// before it start from the conversation's last message, so an upgrade
// sends no notification about old mail.
const noticesSchema = `CREATE TABLE IF NOT EXISTS follower_notices (
	conversation_id INTEGER NOT NULL REFERENCES conversations(id),
	address TEXT NOT NULL,
	since INTEGER NOT NULL,
	notified_through INTEGER NOT NULL,
	pending_since INTEGER,
	last_sent INTEGER NOT NULL DEFAULT 0,
	sent_times TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (conversation_id, address)
);
CREATE INDEX IF NOT EXISTS follower_notices_pending ON follower_notices(pending_since) WHERE pending_since IS NOT NULL;
INSERT OR IGNORE INTO follower_notices (conversation_id, address, since, notified_through)
	SELECT f.conversation_id, f.address, COALESCE(m.last, 0), COALESCE(m.last, 0) FROM followers f
	LEFT JOIN (SELECT conversation_id, MAX(id) AS last FROM messages GROUP BY conversation_id) m ON m.conversation_id = f.conversation_id`

// updateOf is the condition on a message m that makes it an update for the
// follower given as its one argument: customer mail, a reply or a note,
// written by a person (automatic acknowledgements have no sender) other than
// the follower.
const updateOf = `m.kind IN ('inbound', 'reply', 'note') AND m.sender != '' AND lower(m.sender) != ?`

// startNotice begins a follower's notices from conv's last message.
func startNotice(ctx context.Context, tx *sql.Tx, conv int64, addr string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO follower_notices (conversation_id, address, since, notified_through)
		SELECT ?, ?, COALESCE(MAX(id), 0), COALESCE(MAX(id), 0) FROM messages WHERE conversation_id = ?
		ON CONFLICT DO NOTHING`, conv, addr, conv)
	return err
}

// markPending records that an update by sender arrived in conv: every other
// follower with nothing waiting now has something since now.
func markPending(ctx context.Context, tx *sql.Tx, conv int64, sender string, now int64) error {
	if sender == "" {
		return nil // an automatic acknowledgement: no one wrote it
	}
	_, err := tx.ExecContext(ctx, `UPDATE follower_notices SET pending_since = ?
		WHERE conversation_id = ? AND pending_since IS NULL AND address != ?`, now, conv, strings.ToLower(sender))
	return err
}

// PendingNotices implements NoticeStore.
func (s *Store) PendingNotices(ctx context.Context) ([]store.Notice, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT conversation_id, address, since, notified_through, pending_since, last_sent, sent_times
		FROM follower_notices WHERE pending_since IS NOT NULL ORDER BY pending_since`)
	if err != nil {
		return nil, fmt.Errorf("store: reading pending notices: %w", err)
	}
	defer rows.Close()
	var out []store.Notice
	for rows.Next() {
		var n store.Notice
		var pending, last int64
		var times string
		if err := rows.Scan(&n.Conversation, &n.Follower, &n.Since, &n.NotifiedThrough, &pending, &last, &times); err != nil {
			return nil, fmt.Errorf("store: reading pending notices: %w", err)
		}
		n.PendingSince = fromMillis(pending)
		if last > 0 {
			n.LastSent = fromMillis(last)
		}
		for _, t := range splitList(times) {
			if ms, err := strconv.ParseInt(t, 10, 64); err == nil {
				n.SentTimes = append(n.SentTimes, fromMillis(ms))
			}
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading pending notices: %w", err)
	}
	return out, nil
}

// NoticeUpdates implements NoticeStore.
func (s *Store) NoticeUpdates(ctx context.Context, conv int64, follower string, after int64) ([]store.NoticeUpdate, int64, error) {
	follower = strings.ToLower(follower)
	rows, err := s.read.QueryContext(ctx, `SELECT m.id, m.kind, m.sender, m.sender_role, m.message_id_header, m.received, m.size,
		EXISTS (SELECT 1 FROM seen WHERE agent = ? AND message_id = m.id)
		FROM messages m WHERE m.conversation_id = ? AND m.id > ? AND `+updateOf+`
		ORDER BY m.id`, follower, conv, after, follower)
	if err != nil {
		return nil, 0, fmt.Errorf("store: reading updates of conversation %d: %w", conv, err)
	}
	defer rows.Close()
	var out []store.NoticeUpdate
	for rows.Next() {
		u := store.NoticeUpdate{Message: store.Message{Conversation: conv}}
		var received int64
		if err := rows.Scan(&u.ID, &u.Kind, &u.Sender, &u.SenderRole, &u.MessageIDHeader, &received, &u.Size, &u.Seen); err != nil {
			return nil, 0, fmt.Errorf("store: reading updates of conversation %d: %w", conv, err)
		}
		u.Received = fromMillis(received)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("store: reading updates of conversation %d: %w", conv, err)
	}
	var wrote int64
	if err := s.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM messages WHERE conversation_id = ? AND lower(sender) = ? AND kind IN (?, ?, ?)`,
		conv, follower, store.KindInbound, store.KindReply, store.KindNote).Scan(&wrote); err != nil {
		return nil, 0, fmt.Errorf("store: reading updates of conversation %d: %w", conv, err)
	}
	return out, wrote, nil
}

// settle moves a notice's mark to through; it stays pending, from now,
// when a later update is already there.
func settle(ctx context.Context, tx *sql.Tx, conv int64, follower string, through, now int64, sent bool) error {
	var times string
	if err := tx.QueryRowContext(ctx, `SELECT sent_times FROM follower_notices WHERE conversation_id = ? AND address = ?`,
		conv, follower).Scan(&times); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	}
	var more int
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = ? AND m.id > ? AND `+updateOf+`)`,
		conv, through, follower).Scan(&more); err != nil {
		return err
	}
	var pending sql.NullInt64
	if more == 1 {
		pending = sql.NullInt64{Int64: now, Valid: true}
	}
	if !sent {
		_, err := tx.ExecContext(ctx, `UPDATE follower_notices SET notified_through = MAX(notified_through, ?), pending_since = ?
			WHERE conversation_id = ? AND address = ?`, through, pending, conv, follower)
		return err
	}
	// Only the last day's notifications count against max_per_day.
	var kept []string
	for _, t := range splitList(times) {
		if ms, err := strconv.ParseInt(t, 10, 64); err == nil && ms > now-int64(24*time.Hour/time.Millisecond) {
			kept = append(kept, t)
		}
	}
	kept = append(kept, strconv.FormatInt(now, 10))
	_, err := tx.ExecContext(ctx, `UPDATE follower_notices SET notified_through = MAX(notified_through, ?), pending_since = ?,
		last_sent = ?, sent_times = ? WHERE conversation_id = ? AND address = ?`, through, pending, now, joinList(kept), conv, follower)
	return err
}

// SettleNotice implements NoticeStore.
func (s *Store) SettleNotice(ctx context.Context, conv int64, follower string, through int64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return settle(ctx, tx, conv, strings.ToLower(follower), through, millis(time.Now()), false)
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("store: settling the notice of %s in conversation %d: %w", follower, conv, err)
	}
	return err
}

// QueueNotification implements NoticeStore.
func (s *Store) QueueNotification(ctx context.Context, n store.Notification) error {
	if n.Outbound.Kind != store.KindNotification {
		return fmt.Errorf("store: a notification must be of kind %q, not %q", store.KindNotification, n.Outbound.Kind)
	}
	meta := s.computeMeta(n.Outbound.Raw)
	err := s.commit(ctx, func(tx *sql.Tx, ch *changes) error {
		// Settled first: ErrNotFound (they stopped following) writes nothing.
		if err := settle(ctx, tx, n.Conversation, strings.ToLower(n.Follower), n.Through, millis(n.Outbound.Received), true); err != nil {
			return err
		}
		return s.addOutbound(ctx, tx, ch, n.Outbound, meta) // the queue wakes
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("store: queueing a notification to %s: %w", n.Follower, err)
	}
	return err
}
