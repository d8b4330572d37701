package sqlite

import (
	"context"
	"fmt"

	"github.com/supportgate/supportgate/store"
)

// holdsReply is what holds a reply (store.Outbound.Hold, DESIGN.md §5 item
// 10) among a conversation's messages after the one answered: the
// customer's or a participant's mail, or another agent's public reply. Its
// one parameter is the replying agent.
const holdsReply = `((kind = 'inbound' AND sender_role IN ('owner', 'participant')) OR (kind = 'reply' AND sender <> ?))`

// collisionQuery counts what holds a reply, in AddOutbound's transaction.
const collisionQuery = `SELECT COUNT(*) FROM messages WHERE conversation_id = ? AND id > ? AND ` + holdsReply

// Collisions implements store.ConversationStore: the holding messages'
// ids, newest first, then those messages; never the conversation's others
// (reading every message of a 3,000-message conversation for each reply
// was 44% of the daemon's CPU in the outbound benchmark, issue 18).
func (s *Store) Collisions(ctx context.Context, conv int64, hold store.Hold, agent string, limit int) ([]store.Message, error) {
	ids, err := int64s(ctx, s.read, `SELECT id FROM messages WHERE conversation_id = ? AND id > ? AND `+holdsReply+`
		ORDER BY id DESC LIMIT ?`, conv, hold.After, agent, limit)
	if err != nil {
		return nil, fmt.Errorf("store: reading what holds a reply: %w", err)
	}
	out := make([]store.Message, 0, len(ids))
	for _, id := range ids {
		m, err := s.Message(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}
