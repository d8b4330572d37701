package gateway

import (
	"context"
	"errors"

	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/policy"
	"github.com/supportgate/supportgate/store"
)

// mergeTarget checks an agent's #merge (DESIGN.md §14) before anything is
// recorded: the conversation to merge into exists, is another one, and its
// inbox is one the agent may write in. It returns 0 when the message has no
// #merge.
func (s *Server) mergeTarget(ctx context.Context, agent config.Agent, conv store.Conversation, qa quickActions) (int64, error) {
	var n int64
	for _, a := range qa.actions {
		if a.Kind == policy.ActionMerge {
			n = policy.MergeTarget(a)
		}
	}
	if n == 0 {
		return 0, nil
	}
	if conv.ID == 0 {
		return 0, refuse(550, smtp.EnhancedCode{5, 5, 1},
			"Nothing was done: #merge merges a conversation; press Reply on one of its messages, then write #merge <number>")
	}
	dst, err := s.store.Conversation(ctx, n)
	if errors.Is(err, store.ErrNotFound) {
		return 0, refuse(550, smtp.EnhancedCode{5, 5, 1}, "Nothing was done: there is no conversation #%d to merge into", n)
	}
	if err != nil {
		return 0, err
	}
	if dst.ID == conv.ID {
		return 0, refuse(550, smtp.EnhancedCode{5, 5, 1}, "Nothing was done: #%d is this conversation (or was merged into it)", n)
	}
	if !policy.CanReply(agent.Roles[dst.Inbox]) {
		return 0, refuse(550, smtp.EnhancedCode{5, 7, 1},
			"Nothing was done: conversation #%d is in %s, where you may not write; ask an admin for the reply role", dst.ID, dst.Inbox)
	}
	return dst.ID, nil
}
