package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/supportgate/supportgate/store"
)

// Automatic acknowledgements (DESIGN.md §7, §8), as in store/sqlite's
// autoack.go: one per conversation, and at most a limit per inbox and
// recipient a day, counted in the database so that every node counts the
// same ones.

// autoAckWindow is the period the limit counts over.
const autoAckWindow = 24 * time.Hour

// QueueAutoAck implements Store. The per-conversation check, the count
// against the limit and the writes are one transaction, under the
// conversation's lock and the inbox and recipient's advisory lock: a claim
// on the limit never outlives an acknowledgement that was not queued, and
// two nodes cannot both take the last one.
func (s *Store) QueueAutoAck(ctx context.Context, ack store.AutoAck) (store.AutoAckOutcome, error) {
	meta := s.computeMeta(ack.Outbound.Raw) // outside the transaction, as in AddOutbound
	var outcome store.AutoAckOutcome
	err := s.commit(ctx, func(tx pgx.Tx, ch *changes) error {
		outcome = 0
		if err := lockConversation(ctx, tx, ack.Outbound.Conversation); err != nil {
			return err
		}
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM auto_ack_conversations WHERE conversation_id = $1`, ack.Outbound.Conversation).Scan(&one)
		if err == nil {
			outcome = store.AutoAckAlreadySent
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		claimed, err := claimAutoAck(ctx, tx, ack.Inbox, ack.Recipient, ack.Outbound.Received, ack.Limit)
		if err != nil {
			return err
		}
		if !claimed {
			outcome = store.AutoAckLimitReached
			return nil
		}
		if err := s.addOutbound(ctx, tx, ch, ack.Outbound, meta); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO auto_ack_conversations (conversation_id, message_id) VALUES ($1, $2)`,
			ack.Outbound.Conversation, ack.Outbound.Message); err != nil {
			return err
		}
		outcome = store.AutoAckQueued
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: queueing an automatic acknowledgement: %w", err)
	}
	return outcome, nil
}

// claimAutoAck records an acknowledgement from inbox to recipient at now in
// tx and reports true, unless limit of them were recorded in the window
// before now. The count and the insert are under an advisory lock of the
// pair, so two messages from the same address arriving at two nodes at
// once cannot both claim the last acknowledgement.
func claimAutoAck(ctx context.Context, tx pgx.Tx, inbox, recipient string, now time.Time, limit int) (bool, error) {
	inbox, recipient = strings.ToLower(inbox), strings.ToLower(recipient)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockAutoAck, inbox+"\n"+recipient); err != nil {
		return false, err
	}
	since := millis(now.Add(-autoAckWindow))
	if _, err := tx.Exec(ctx, `DELETE FROM auto_acks WHERE inbox = $1 AND recipient = $2 AND sent <= $3`, inbox, recipient, since); err != nil {
		return false, err
	}
	n, err := countAutoAcks(ctx, tx, inbox, recipient, since)
	if err != nil {
		return false, err
	}
	if n >= limit {
		return false, nil
	}
	_, err = tx.Exec(ctx, `INSERT INTO auto_acks (inbox, recipient, sent) VALUES ($1, $2, $3)`, inbox, recipient, millis(now))
	return err == nil, err
}

// countAutoAcks counts the acknowledgements from inbox to recipient (lower
// case) sent after since (milliseconds).
func countAutoAcks(ctx context.Context, q querier, inbox, recipient string, since int64) (int, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT COUNT(*) FROM auto_acks WHERE inbox = $1 AND recipient = $2 AND sent > $3`,
		inbox, recipient, since).Scan(&n)
	return n, err
}

// AutoAcksSent implements Store.
func (s *Store) AutoAcksSent(ctx context.Context, inbox, recipient string, now time.Time) (int, error) {
	n, err := countAutoAcks(ctx, s.pool, strings.ToLower(inbox), strings.ToLower(recipient), millis(now.Add(-autoAckWindow)))
	if err != nil {
		return 0, fmt.Errorf("store: counting automatic acknowledgements: %w", err)
	}
	return n, nil
}

// AutoAckOf implements Store.
func (s *Store) AutoAckOf(ctx context.Context, conv int64) (int64, bool, error) {
	var msg int64
	err := s.pool.QueryRow(ctx, `SELECT message_id FROM auto_ack_conversations WHERE conversation_id = $1`, conv).Scan(&msg)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: looking up the automatic acknowledgement of conversation %d: %w", conv, err)
	}
	return msg, true, nil
}

// OpenedConversation implements Store. A conversation an inbound message
// opens is created in the transaction that stores the message; every other
// message of it gets its number later, when the conversation exists, so the
// message that opened it has the lowest.
func (s *Store) OpenedConversation(ctx context.Context, message int64) (bool, error) {
	var opened bool
	err := s.pool.QueryRow(ctx, `SELECT m.kind = $1 AND m.id = (SELECT MIN(id) FROM messages WHERE conversation_id = m.conversation_id)
		FROM messages m WHERE m.id = $2`, string(store.KindInbound), message).Scan(&opened)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, store.ErrNotFound
	}
	if err != nil {
		return false, fmt.Errorf("store: reading message %d: %w", message, err)
	}
	return opened, nil
}
