package desk

import (
	"context"
	"fmt"
	"time"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
)

// Merge moves conversation from into conversation into (DESIGN.md §14):
// every message, participant, follower, tag and side conversation, in one
// transaction with an event in both; afterwards from answers to into. The
// caller checks that agent may write in both inboxes.
func (d *Desk) Merge(ctx context.Context, agent config.Agent, from, into int64) error {
	src, err := d.store.Conversation(ctx, from)
	if err != nil {
		return fmt.Errorf("desk: reading conversation %d: %w", from, err)
	}
	dst, err := d.store.Conversation(ctx, into)
	if err != nil {
		return fmt.Errorf("desk: reading conversation %d: %w", into, err)
	}
	inbox, _ := d.current().Inbox(dst.Inbox) // an inbox no longer configured: quiet, no cap
	now := time.Now()
	text := fmt.Sprintf("%s merged conversation #%d (%s, %q) into #%d", agent.Email, src.ID, src.Owner, src.Subject, dst.ID)
	err = d.store.MergeConversation(ctx, store.Merge{
		From:      src.ID,
		Into:      dst.ID,
		Events:    []store.Event{{Type: "merged", Text: text, At: now, Quiet: !inbox.ShowEvents}},
		FromEvent: store.Event{Type: "merged", Text: text, At: now},
		Cap:       store.ParticipantCap{Max: inbox.MaxParticipants, Enforce: inbox.Address != ""},
	})
	if err != nil {
		return fmt.Errorf("desk: merge: %w", err)
	}
	return nil
}
