package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/supportgate/supportgate/store"
)

// What clients do by themselves stays the agent's (store/sqlite's
// agentstate.go): their own keywords, the Message-IDs their clients gave
// submitted messages, and the Reply-To an agent's message is served with.

// recordSubmission remembers the client's Message-ID of an agent's message
// in tx; ErrDuplicateSubmission when it is known. Two nodes recording the
// same one at once: the second waits at the primary key for the first to
// commit, then finds it.
func recordSubmission(b *pgx.Batch, agent, clientID string, message int64) {
	if clientID == "" {
		return
	}
	b.Queue(`INSERT INTO submissions (agent, client_message_id, message_id) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, strings.ToLower(agent), clientID, message).Exec(func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() == 0 {
			return store.ErrDuplicateSubmission
		}
		return nil
	})
}

// Submitted implements ConversationStore: the message an agent's client
// submitted with this Message-ID, if any.
func (s *Store) Submitted(ctx context.Context, agent, clientID string) (store.Message, bool, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, messageColumns+
		`WHERE id = (SELECT message_id FROM submissions WHERE agent = $1 AND client_message_id = $2)`, strings.ToLower(agent), clientID))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Message{}, false, nil
	}
	if err != nil {
		return store.Message{}, false, fmt.Errorf("store: reading submissions: %w", err)
	}
	return m, true, nil
}

// SetAgentKeywords implements WorkspaceStore.
func (s *Store) SetAgentKeywords(ctx context.Context, agent string, messages []int64, add, remove []string) error {
	if len(messages) == 0 || len(add) == 0 && len(remove) == 0 {
		return nil
	}
	return s.change(ctx, "storing an agent's keywords", func(tx pgx.Tx, ch *changes) error {
		ch.Agent(agent, "") // like \Seen: only theirs
		convs, err := messageConversations(ctx, tx, messages)
		if err != nil {
			return err
		}
		// Removed, then added, each for every message in one statement
		// (a round trip each message and keyword before); the counters
		// after them (the package comment: taken as late as possible).
		removed, err := int64s(ctx, tx, `DELETE FROM agent_keywords a USING unnest($2::bigint[]) AS m(id), unnest($3::text[]) AS k(kw)
			WHERE a.agent = $1 AND a.message_id = m.id AND lower(a.keyword) = lower(k.kw) RETURNING a.message_id`, agent, messages, remove)
		if err != nil {
			return err
		}
		added, err := int64s(ctx, tx, `INSERT INTO agent_keywords (agent, message_id, keyword)
			SELECT $1, m.id, k.kw FROM unnest($2::bigint[]) AS m(id), unnest($3::text[]) AS k(kw)
			ON CONFLICT DO NOTHING RETURNING message_id`, agent, messages, add)
		if err != nil {
			return err
		}
		if err := noteRewrite(ctx, tx, convs); err != nil {
			return err
		}
		changed := slices.Compact(slices.Sorted(slices.Values(append(removed, added...))))
		return touchAgentMessages(ctx, tx, agent, changed) // modseq.go
	})
}

// lastReplies returns, per conversation, the number of its newest public
// reply: every message below it is \Answered (DESIGN.md §6).
func lastReplies(ctx context.Context, q querier, convs []int64) (map[int64]int64, error) {
	out := map[int64]int64{}
	if len(convs) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT conversation_id, MAX(id) FROM messages
		WHERE conversation_id = ANY($1) AND kind = 'reply' GROUP BY conversation_id`, convs)
	if err != nil {
		return nil, fmt.Errorf("store: reading replies: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c, m int64
		if err := rows.Scan(&c, &m); err != nil {
			return nil, fmt.Errorf("store: reading replies: %w", err)
		}
		out[c] = m
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading replies: %w", err)
	}
	return out, nil
}
