package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"
)

// Triage of a new conversation (DESIGN.md §7): the inbox's rules give
// tags, an assignee and followers, and round-robin hands what no rule
// assigned to the inbox's agents in turn. All of it is written by the
// transaction that creates the conversation, so that no crash leaves a
// request untagged or unassigned, and no retried duplicate takes a turn.

// roundRobinSchema keeps, per inbox, the agent who was given the last
// conversation: the next one goes to the agent after them in the current
// list, which survives restarts and agents added or removed.
const roundRobinSchema = `CREATE TABLE IF NOT EXISTS round_robin (
	inbox TEXT PRIMARY KEY,
	last_agent TEXT NOT NULL
)`

// takeTurn returns the agent whose turn it is in inbox and records it.
func takeTurn(ctx context.Context, tx *sql.Tx, inbox string, agents []string) (string, error) {
	var last string
	err := tx.QueryRowContext(ctx, `SELECT last_agent FROM round_robin WHERE inbox = ?`, inbox).Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	next := agents[0] // the first turn, or the last agent is gone
	if i := slices.Index(agents, last); i >= 0 {
		next = agents[(i+1)%len(agents)]
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO round_robin (inbox, last_agent) VALUES (?, ?)
		ON CONFLICT (inbox) DO UPDATE SET last_agent = excluded.last_agent`, inbox, next)
	return next, err
}

// addTags adds tags to a conversation in tx.
func addTags(ctx context.Context, tx *sql.Tx, conv int64, tags []string) error {
	if len(tags) > 0 {
		if err := touchConversations(ctx, tx, conv); err != nil { // sqlite_modseq.go
			return err
		}
	}
	for _, t := range tags {
		if t == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO conversation_keywords (conversation_id, keyword) VALUES (?, ?) ON CONFLICT DO NOTHING`, conv, t); err != nil {
			return err
		}
	}
	return nil
}
