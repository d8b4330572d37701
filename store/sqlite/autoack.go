package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/supportgate/supportgate/store"
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

// autoAckConversationsSchema is migration 8: the conversation each
// acknowledgement answered, kept for good (auto_acks forgets after a day),
// so that a copy of the opening message arriving again (a client retrying
// after we crashed before its 250) is not acknowledged twice. The primary
// key is the "at most one per conversation". Acknowledgements queued before
// it are found by what only they are: replies without an agent, queued with
// a null return path (RFC 3834 3.3). Running it again changes nothing.
const autoAckConversationsSchema = `CREATE TABLE IF NOT EXISTS auto_ack_conversations (
		conversation_id INTEGER PRIMARY KEY REFERENCES conversations(id),
		message_id INTEGER NOT NULL REFERENCES messages(id)
	);
	INSERT OR IGNORE INTO auto_ack_conversations (conversation_id, message_id)
		SELECT m.conversation_id, MIN(m.id) FROM outbound_messages o JOIN messages m ON m.id = o.message_id
		WHERE o.mail_from = '' AND m.kind = 'reply' AND m.sender = ''
		GROUP BY m.conversation_id`

// autoAckWindow is the period the limit counts over.
const autoAckWindow = 24 * time.Hour

// QueueAutoAck implements Store. The per-conversation check, the count
// against the limit and the writes are one request of the group-commit
// writer, in its own savepoint: a failure anywhere rolls all of it back, so
// a claim on the limit never outlives an acknowledgement that was not queued.
func (s *Store) QueueAutoAck(ctx context.Context, ack store.AutoAck) (store.AutoAckOutcome, error) {
	meta := s.computeMeta(ack.Outbound.Raw) // outside the transaction, as in AddOutbound
	var outcome store.AutoAckOutcome
	err := s.commit(ctx, func(tx *sql.Tx, ch *changes) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM auto_ack_conversations WHERE conversation_id = ?`,
			ack.Outbound.Conversation).Scan(&one)
		if err == nil {
			outcome = store.AutoAckAlreadySent
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
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
		if _, err := tx.ExecContext(ctx, `INSERT INTO auto_ack_conversations (conversation_id, message_id) VALUES (?, ?)`,
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
// before now. The count and the insert share tx, so two messages from the
// same address arriving at once cannot both claim the last
// acknowledgement. Rows older than the window are deleted on the way.
func claimAutoAck(ctx context.Context, tx *sql.Tx, inbox, recipient string, now time.Time, limit int) (bool, error) {
	inbox, recipient = strings.ToLower(inbox), strings.ToLower(recipient)
	since := millis(now.Add(-autoAckWindow))
	if _, err := tx.ExecContext(ctx, `DELETE FROM auto_acks WHERE sent <= ?`, since); err != nil {
		return false, err
	}
	n, err := countAutoAcks(ctx, tx, inbox, recipient, since)
	if err != nil {
		return false, err
	}
	if n >= limit {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO auto_acks (inbox, recipient, sent) VALUES (?, ?, ?)`,
		inbox, recipient, millis(now)); err != nil {
		return false, err
	}
	return true, nil
}

// countAutoAcks counts the acknowledgements from inbox to recipient (lower
// case) sent after since (milliseconds), in tx or on the read connection.
func countAutoAcks(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, inbox, recipient string, since int64) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM auto_acks WHERE inbox = ? AND recipient = ? AND sent > ?`,
		inbox, recipient, since).Scan(&n)
	return n, err
}

// AutoAcksSent implements Store.
func (s *Store) AutoAcksSent(ctx context.Context, inbox, recipient string, now time.Time) (int, error) {
	n, err := countAutoAcks(ctx, s.read, strings.ToLower(inbox), strings.ToLower(recipient), millis(now.Add(-autoAckWindow)))
	if err != nil {
		return 0, fmt.Errorf("store: counting automatic acknowledgements: %w", err)
	}
	return n, nil
}

// AutoAckOf implements Store.
func (s *Store) AutoAckOf(ctx context.Context, conv int64) (int64, bool, error) {
	var msg int64
	err := s.read.QueryRowContext(ctx, `SELECT message_id FROM auto_ack_conversations WHERE conversation_id = ?`, conv).Scan(&msg)
	if errors.Is(err, sql.ErrNoRows) {
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
	err := s.read.QueryRowContext(ctx, `SELECT m.kind = ? AND m.id = (SELECT MIN(id) FROM messages WHERE conversation_id = m.conversation_id)
		FROM messages m WHERE m.id = ?`, store.KindInbound, message).Scan(&opened)
	if errors.Is(err, sql.ErrNoRows) {
		return false, store.ErrNotFound
	}
	if err != nil {
		return false, fmt.Errorf("store: reading message %d: %w", message, err)
	}
	return opened, nil
}
