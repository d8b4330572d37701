package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/supportgate/supportgate/store"
)

// ImportInbound stores inbound messages exactly as AddInbound stores each
// (the same code: addInbound), but all of them in one write transaction, for
// loading many messages at once (bench/cmd/sgbench fill pre-fills a
// 1,000,000-message store with it; issue 8). One transaction for a thousand
// messages spends its fsync, its statement set-up and its index pages once,
// where AddInbound spends them per commit batch.
//
// An Inbound whose Conversation is negative, -k, joins the conversation of
// the message k places before it in ins (a reply imported with the message
// it answers). Either all of them are stored or none is.
func (s *Store) ImportInbound(ctx context.Context, ins []store.Inbound) ([]store.InboundResult, error) {
	metas := make([]derived, len(ins))
	for i := range ins {
		metas[i] = s.computeMeta(ins[i].Raw) // outside the transaction, as in AddInbound
		metas[i].indexNow = true
	}
	out := make([]store.InboundResult, len(ins))
	err := s.commit(ctx, func(tx *sql.Tx, ch *changes) error {
		for i, in := range ins {
			if in.Conversation < 0 {
				k := i + int(in.Conversation)
				if k < 0 {
					return fmt.Errorf("message %d joins the conversation of message %d, before the first", i, k)
				}
				in.Conversation = out[k].Conversation
			}
			res, err := s.addInbound(ctx, tx, ch, in, metas[i])
			if err != nil {
				return fmt.Errorf("message %d: %w", i, err)
			}
			out[i] = res
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: importing inbound messages: %w", err)
	}
	return out, nil
}
