package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/supportgate/supportgate/store"
)

// holdsReply is what holds a reply (store.Outbound.Hold, DESIGN.md §5 item
// 10) among a conversation's messages after the one answered: the
// customer's or a participant's mail, or another agent's public reply. $3
// is the replying agent.
const holdsReply = `((kind = 'inbound' AND sender_role IN ('owner', 'participant')) OR (kind = 'reply' AND sender <> $3))`

// checkCollision is the collision hold, run under the conversation's lock:
// of two agents answering the same message, the second sees the first's
// reply.
func checkCollision(ctx context.Context, tx pgx.Tx, out store.Outbound) error {
	if out.Hold == nil {
		return nil
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM messages WHERE conversation_id = $1 AND id > $2 AND `+holdsReply,
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
	rows, err := s.pool.Query(ctx, messageColumns+`WHERE conversation_id = $1 AND id > $2 AND `+holdsReply+`
		ORDER BY id DESC LIMIT $4`, conv, hold.After, agent, limit)
	if err != nil {
		return nil, fmt.Errorf("store: reading what holds a reply: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Message, error) { return scanMessage(row) })
	if err != nil {
		return nil, fmt.Errorf("store: reading what holds a reply: %w", err)
	}
	return out, nil
}
