package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/supportgate/supportgate/store"
)

// Follower notifications (DESIGN.md §7), as in store/sqlite's notices.go:
// one row per follower and conversation.

// updateOf is the condition on a message m that makes it an update for the
// follower given as the parameter named: customer mail, a reply or a note,
// written by a person other than the follower.
func updateOf(param string) string {
	return `m.kind IN ('inbound', 'reply', 'note') AND m.sender <> '' AND lower(m.sender) <> ` + param
}

// startNotice begins a follower's notices from conv's last message.
func startNotice(ctx context.Context, tx pgx.Tx, conv int64, addr string) error {
	_, err := tx.Exec(ctx, `INSERT INTO follower_notices (conversation_id, address, since, notified_through)
		SELECT $1, $2, COALESCE(MAX(id), 0), COALESCE(MAX(id), 0) FROM messages WHERE conversation_id = $1
		ON CONFLICT DO NOTHING`, conv, addr)
	return err
}

// markPending records that an update by sender arrived in conv: every other
// follower with nothing waiting now has something since now.
func markPending(b *pgx.Batch, conv int64, sender string, now int64) {
	if sender == "" {
		return // an automatic acknowledgement: no one wrote it
	}
	b.Queue(`UPDATE follower_notices SET pending_since = $1
		WHERE conversation_id = $2 AND pending_since IS NULL AND address <> $3`, now, conv, strings.ToLower(sender))
}

// PendingNotices implements NoticeStore.
func (s *Store) PendingNotices(ctx context.Context) ([]store.Notice, error) {
	rows, err := s.pool.Query(ctx, `SELECT conversation_id, address, since, notified_through, pending_since, last_sent, sent_times
		FROM follower_notices WHERE pending_since IS NOT NULL ORDER BY pending_since, conversation_id, address`)
	if err != nil {
		return nil, fmt.Errorf("store: reading pending notices: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Notice, error) {
		var n store.Notice
		var pending, last int64
		var times string
		if err := row.Scan(&n.Conversation, &n.Follower, &n.Since, &n.NotifiedThrough, &pending, &last, &times); err != nil {
			return n, err
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
		return n, nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: reading pending notices: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// NoticeUpdates implements NoticeStore.
func (s *Store) NoticeUpdates(ctx context.Context, conv int64, follower string, after int64) ([]store.NoticeUpdate, int64, error) {
	follower = strings.ToLower(follower)
	var out []store.NoticeUpdate
	var wrote int64
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT m.id, m.kind, m.sender, m.sender_role, m.message_id_header, m.received, m.size,
			EXISTS (SELECT 1 FROM seen WHERE agent = $1 AND message_id = m.id)
			FROM messages m WHERE m.conversation_id = $2 AND m.id > $3 AND `+updateOf("$1")+`
			ORDER BY m.id`, follower, conv, after)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.NoticeUpdate, error) {
			u := store.NoticeUpdate{Message: store.Message{Conversation: conv}}
			var kind, role string
			var received int64
			err := row.Scan(&u.ID, &kind, &u.Sender, &role, &u.MessageIDHeader, &received, &u.Size, &u.Seen)
			u.Kind, u.SenderRole, u.Received = store.Kind(kind), store.SenderRole(role), fromMillis(received)
			return u, err
		})
		if err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT COALESCE(MAX(id), 0) FROM messages WHERE conversation_id = $1 AND lower(sender) = $2
			AND kind IN ('inbound', 'reply', 'note')`, conv, follower).Scan(&wrote)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: reading updates of conversation %d: %w", conv, err)
	}
	if len(out) == 0 {
		out = nil
	}
	return out, wrote, nil
}

// settle moves a notice's mark to through, under its row's lock; it stays
// pending, from now, when a later update is already there.
func settle(ctx context.Context, tx pgx.Tx, conv int64, follower string, through, now int64, sent bool) error {
	var times string
	if err := tx.QueryRow(ctx, `SELECT sent_times FROM follower_notices WHERE conversation_id = $1 AND address = $2 FOR UPDATE`,
		conv, follower).Scan(&times); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	}
	var more bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = $1 AND m.id > $2 AND `+updateOf("$3")+`)`,
		conv, through, follower).Scan(&more); err != nil {
		return err
	}
	var pending *int64
	if more {
		pending = &now
	}
	if !sent {
		_, err := tx.Exec(ctx, `UPDATE follower_notices SET notified_through = GREATEST(notified_through, $1), pending_since = $2
			WHERE conversation_id = $3 AND address = $4`, through, pending, conv, follower)
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
	_, err := tx.Exec(ctx, `UPDATE follower_notices SET notified_through = GREATEST(notified_through, $1), pending_since = $2,
		last_sent = $3, sent_times = $4 WHERE conversation_id = $5 AND address = $6`, through, pending, now, joinList(kept), conv, follower)
	return err
}

// SettleNotice implements NoticeStore.
func (s *Store) SettleNotice(ctx context.Context, conv int64, follower string, through int64) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
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
	err := s.commit(ctx, func(tx pgx.Tx, ch *changes) error {
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
