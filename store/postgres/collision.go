package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/supportgate/supportgate/store"
)

// collisionSchema (migration 7) indexes what the collision hold reads
// (DESIGN.md §5 item 10): a conversation's messages by kind and sender, so
// that the check reads the customer's and participants' mail and other
// agents' replies, never the replying agent's own (issue 18).
const collisionSchema = `CREATE INDEX IF NOT EXISTS messages_collision ON messages (conversation_id, kind, sender, id)`

// holdingIDs selects the ids of what holds a reply (store.Outbound.Hold):
// the customer's or a participant's mail, or another agent's public reply,
// after the message answered. $1 is the conversation, $2 the message
// answered, $3 the replying agent; "sender <> $3" is two ranges of
// messages_collision.
const holdingIDs = `SELECT id FROM messages WHERE conversation_id = $1 AND kind = 'inbound' AND id > $2
		AND sender_role IN ('owner', 'participant')
	UNION ALL SELECT id FROM messages WHERE conversation_id = $1 AND kind = 'reply' AND sender < $3 AND id > $2
	UNION ALL SELECT id FROM messages WHERE conversation_id = $1 AND kind = 'reply' AND sender > $3 AND id > $2`

// checkCollision is the collision hold, run under the conversation's lock:
// of two agents answering the same message, the second sees the first's
// reply.
func checkCollision(ctx context.Context, tx pgx.Tx, out store.Outbound) error {
	if out.Hold == nil {
		return nil
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM (`+holdingIDs+`) AS h`,
		out.Conversation, out.Hold.After, out.Agent).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return store.ErrCollision
	}
	return nil
}

// Collisions implements store.ConversationStore: the holding messages
// only, newest first, never the conversation's others (reading every
// message of a long conversation for each reply bounded the outbound
// benchmark, issue 18).
func (s *Store) Collisions(ctx context.Context, conv int64, hold store.Hold, agent string, limit int) ([]store.Message, error) {
	rows, err := s.pool.Query(ctx, messageColumns+`WHERE id IN (SELECT id FROM (`+holdingIDs+`) AS h ORDER BY id DESC LIMIT $4)
		ORDER BY id DESC`, conv, hold.After, agent, limit)
	if err != nil {
		return nil, fmt.Errorf("store: reading what holds a reply: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Message, error) { return scanMessage(row) })
	if err != nil {
		return nil, fmt.Errorf("store: reading what holds a reply: %w", err)
	}
	return out, nil
}
