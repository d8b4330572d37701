package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/supportgate/supportgate/store"
)

// ImportInbound stores inbound messages exactly as AddInbound stores each
// (the same code: addInbound), but all of them in one transaction, for
// loading many messages at once (bench/cmd/sgbench fill). An Inbound whose
// Conversation is negative, -k, joins the conversation of the message k
// places before it in ins. Either all of them are stored or none is.
func (s *Store) ImportInbound(ctx context.Context, ins []store.Inbound) ([]store.InboundResult, error) {
	metas := make([]derived, len(ins))
	for i := range ins {
		metas[i] = s.computeMeta(ins[i].Raw)
	}
	out := make([]store.InboundResult, len(ins))
	err := s.change(ctx, "importing inbound messages", func(tx pgx.Tx, ch *changes) error {
		for i, in := range ins {
			if in.Conversation < 0 {
				k := i + int(in.Conversation)
				if k < 0 {
					return fmt.Errorf("message %d joins the conversation of message %d, before the first", i, k)
				}
				in.Conversation = out[k].Conversation
			}
			res, err := s.addInbound(ctx, tx, ch, in, metas[i], false)
			if err != nil {
				return fmt.Errorf("message %d: %w", i, err)
			}
			out[i] = res
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ConversationCounts returns the number of conversations in each status
// (the metrics endpoint, DESIGN.md §16).
func (s *Store) ConversationCounts(ctx context.Context) (map[store.Status]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT status, COUNT(*) FROM conversations WHERE merged_into = 0 GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("store: counting the conversations: %w", err)
	}
	defer rows.Close()
	out := map[store.Status]int64{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("store: counting the conversations: %w", err)
		}
		out[store.Status(st)] = n
	}
	return out, rows.Err()
}
