package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/supportgate/supportgate/store"
)

// agentStateSchema is migration 13 (issue 12): what real mail clients do by
// themselves stays with the agent whose client did it (DESIGN.md §5 item 9,
// §6).
//
//   - agent_keywords: keywords a client stores for its own bookkeeping (junk
//     classification, $Forwarded, $MDNSent, $Submitted...; see
//     policy.IsClientKeyword) and the \Answered a client stores, per agent
//     and message like \Seen. They were conversation keywords before, shared
//     by the team: Thunderbird's junk filter tagged the whole queue with
//     "Junk"; those shared rows are dropped here (the server computes
//     \Answered now, and junk marks were never the team's).
//   - submissions: the Message-ID each agent's client gave a submitted
//     message, so that a resubmission (a lost 250, an Outbox retry) is
//     recorded and sent once.
//   - served_reply_to: the Reply-To the IMAP copy of an agent's message
//     carries instead of its own (a public reply: the owner; a note: the
//     inbox), and how many bytes of Reply-To fields the stored copy loses
//     in it, so that the served size is known without the bytes. Messages
//     stored before have no row and are served as they were: a copy a
//     client has seen never changes (DESIGN.md §6).
//
// Like every migration since 8 it can run again (tests re-run it).
const agentStateSchema = `CREATE TABLE IF NOT EXISTS agent_keywords (
		agent TEXT NOT NULL,
		message_id INTEGER NOT NULL REFERENCES messages(id),
		keyword TEXT NOT NULL COLLATE NOCASE,
		PRIMARY KEY (agent, message_id, keyword)
	);
	CREATE TABLE IF NOT EXISTS submissions (
		agent TEXT NOT NULL,
		client_message_id TEXT NOT NULL,
		message_id INTEGER NOT NULL REFERENCES messages(id),
		PRIMARY KEY (agent, client_message_id)
	);
	CREATE TABLE IF NOT EXISTS served_reply_to (
		message_id INTEGER PRIMARY KEY REFERENCES messages(id),
		reply_to TEXT NOT NULL,
		cut INTEGER NOT NULL
	);
	DELETE FROM conversation_keywords WHERE keyword IN ('\Answered', 'Junk', 'NonJunk', '$Junk', '$NotJunk', '$Phishing',
		'$Forwarded', '$MDNSent', '$SubmitPending', '$Submitted')`

// recordSubmission remembers the client's Message-ID of an agent's message
// in tx; ErrDuplicateSubmission when it is known.
func recordSubmission(ctx context.Context, tx *sql.Tx, agent, clientID string, message int64) error {
	if clientID == "" {
		return nil
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO submissions (agent, client_message_id, message_id) VALUES (?, ?, ?)
		ON CONFLICT DO NOTHING`, strings.ToLower(agent), clientID, message)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err == nil {
			err = store.ErrDuplicateSubmission
		}
		return err
	}
	return nil
}

// Submitted implements ConversationStore: the message an agent's client
// submitted with this Message-ID, if any.
func (s *Store) Submitted(ctx context.Context, agent, clientID string) (store.Message, bool, error) {
	var id int64
	err := s.read.QueryRowContext(ctx, `SELECT message_id FROM submissions WHERE agent = ? AND client_message_id = ?`,
		strings.ToLower(agent), clientID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Message{}, false, nil
	}
	if err != nil {
		return store.Message{}, false, fmt.Errorf("store: reading submissions: %w", err)
	}
	m, err := s.Message(ctx, id)
	if err != nil {
		return store.Message{}, false, err
	}
	return m, true, nil
}

// SetAgentKeywords implements WorkspaceStore.
func (s *Store) SetAgentKeywords(ctx context.Context, agent string, messages []int64, add, remove []string) error {
	if len(messages) == 0 || len(add) == 0 && len(remove) == 0 {
		return nil
	}
	return s.change(ctx, "storing an agent's keywords", func(tx *sql.Tx, ch *changes) error {
		ch.Agent(agent, "") // like \Seen: only theirs
		convs, err := messageConversations(ctx, tx, messages)
		if err != nil {
			return err
		}
		if err := noteRewrite(ctx, tx, convs); err != nil {
			return err
		}
		var changed []int64
		for _, m := range messages {
			n := int64(0)
			for _, k := range remove {
				res, err := tx.ExecContext(ctx, `DELETE FROM agent_keywords WHERE agent = ? AND message_id = ? AND keyword = ?`, agent, m, k)
				if err != nil {
					return err
				}
				d, _ := res.RowsAffected()
				n += d
			}
			for _, k := range add {
				res, err := tx.ExecContext(ctx, `INSERT INTO agent_keywords (agent, message_id, keyword) VALUES (?, ?, ?)
					ON CONFLICT DO NOTHING`, agent, m, k)
				if err != nil {
					return err
				}
				d, _ := res.RowsAffected()
				n += d
			}
			if n > 0 {
				changed = append(changed, m)
			}
		}
		return touchAgentMessages(ctx, tx, agent, changed) // sqlite_modseq.go
	})
}

// lastReplies returns, per conversation, the number of its newest public
// reply: every message below it is \Answered (DESIGN.md §6).
func lastReplies(ctx context.Context, q querier, convs []int64) (map[int64]int64, error) {
	out := map[int64]int64{}
	err := byIDs(ctx, q, `SELECT conversation_id, MAX(id) FROM messages
		WHERE conversation_id IN (%s) AND kind = 'reply' GROUP BY conversation_id`, convs, func(rows *sql.Rows) error {
		var c, m int64
		if err := rows.Scan(&c, &m); err != nil {
			return err
		}
		out[c] = m
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: reading replies: %w", err)
	}
	return out, nil
}
