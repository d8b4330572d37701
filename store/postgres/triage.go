package postgres

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Triage of a new conversation (DESIGN.md §7), as in store/sqlite's
// triage.go: tags, an assignee and followers written by the transaction
// that creates the conversation; round-robin turns kept in the database,
// shared by every node.

// takeTurn returns the agent whose turn it is in inbox and records it,
// under the inbox's row lock: two nodes opening conversations at once give
// them to two agents in turn.
func takeTurn(ctx context.Context, tx pgx.Tx, inbox string, agents []string) (string, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO round_robin (inbox, last_agent) VALUES ($1, '') ON CONFLICT DO NOTHING`, inbox); err != nil {
		return "", err
	}
	var last string
	if err := tx.QueryRow(ctx, `SELECT last_agent FROM round_robin WHERE inbox = $1 FOR UPDATE`, inbox).Scan(&last); err != nil {
		return "", err
	}
	next := agents[0] // the first turn, or the last agent is gone
	if i := slices.Index(agents, last); i >= 0 {
		next = agents[(i+1)%len(agents)]
	}
	_, err := tx.Exec(ctx, `UPDATE round_robin SET last_agent = $2 WHERE inbox = $1`, inbox, next)
	return next, err
}

// addTags adds tags to a conversation in tx.
func addTags(ctx context.Context, tx pgx.Tx, conv int64, tags []string) error {
	if len(tags) > 0 {
		if err := touchConversations(ctx, tx, conv); err != nil { // modseq.go
			return err
		}
	}
	for _, t := range tags {
		if t == "" {
			continue
		}
		if _, err := tx.Exec(ctx, `INSERT INTO conversation_keywords (conversation_id, keyword) VALUES ($1, $2) ON CONFLICT DO NOTHING`, conv, t); err != nil {
			return err
		}
	}
	return nil
}
