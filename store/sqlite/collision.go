package sqlite

import (
	"context"
	"fmt"

	"github.com/supportgate/supportgate/store"
)

// collisionSchema (migration 20) indexes what the collision hold reads
// (DESIGN.md §5 item 10): a conversation's messages by kind and sender, so
// that the check reads the customer's and participants' mail and other
// agents' replies, never the replying agent's own (reading those made a
// reply's cost grow with every reply before it: issue 18).
const collisionSchema = `CREATE INDEX IF NOT EXISTS messages_collision ON messages(conversation_id, kind, sender)`

// holdingIDs selects the ids of what holds a reply (store.Outbound.Hold):
// the customer's or a participant's mail, or another agent's public reply,
// after the message answered. ?1 is the conversation, ?2 the message
// answered, ?3 the replying agent. "sender <> ?3" is written as two ranges,
// since SQLite uses no index for <>; INDEXED BY, since without statistics
// SQLite prefers messages_conversation's rowid range, which reads every
// message after the one answered.
const holdingIDs = `SELECT id FROM messages INDEXED BY messages_collision
		WHERE conversation_id = ?1 AND kind = 'inbound' AND id > ?2 AND sender_role IN ('owner', 'participant')
	UNION ALL SELECT id FROM messages INDEXED BY messages_collision
		WHERE conversation_id = ?1 AND kind = 'reply' AND sender < ?3 AND id > ?2
	UNION ALL SELECT id FROM messages INDEXED BY messages_collision
		WHERE conversation_id = ?1 AND kind = 'reply' AND sender > ?3 AND id > ?2`

// collisionQuery counts what holds a reply, in AddOutbound's transaction.
const collisionQuery = `SELECT COUNT(*) FROM (` + holdingIDs + `)`

// Collisions implements store.ConversationStore: the holding messages'
// ids, newest first, then those messages; never the conversation's others
// (reading every message of a 3,000-message conversation for each reply
// was 44% of the daemon's CPU in the outbound benchmark, issue 18).
func (s *Store) Collisions(ctx context.Context, conv int64, hold store.Hold, agent string, limit int) ([]store.Message, error) {
	ids, err := int64s(ctx, s.read, `SELECT id FROM (`+holdingIDs+`) ORDER BY id DESC LIMIT ?4`, conv, hold.After, agent, limit)
	if err != nil {
		return nil, fmt.Errorf("store: reading what holds a reply: %w", err)
	}
	return s.messagesByID(ctx, ids)
}
