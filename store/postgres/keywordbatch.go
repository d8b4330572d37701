package postgres

import (
	"context"
	"fmt"

	"github.com/supportgate/supportgate/store"
)

// Keyword batches.
//
// An IMAP STORE of \Flagged or a tag over a range is a batch of updates
// that only add and remove keywords, each with its event
// (desk.KeywordsAll). Made one conversation at a time, that was four or
// more round trips a conversation (each keyword, the event's number, its
// message, its log row) while the batch held every conversation's row
// lock, and imaptest's ten clients, naming overlapping ranges, waited for
// each other's batches (issue 18). keywordBatch makes the same writes for
// the whole batch in four round trips: the keywords added, the keywords
// removed, the events' message numbers, and one pipeline with every event's
// message and log row. What it writes is what updateConversation writes
// for such an update.

// keywordsOnly reports whether every update only adds and removes keywords
// and records events.
func keywordsOnly(us []store.ConversationUpdate) bool {
	for _, u := range us {
		if len(u.AddParticipants)+len(u.RemoveParticipants)+len(u.AddFollowers)+len(u.RemoveFollowers) > 0 ||
			u.ReadOnly != nil || u.Assignee != nil || u.Status != nil {
			return false
		}
	}
	return true
}

// keywordBatch applies us (keywordsOnly, each conversation's row locked in
// b) and logs what it changed in ch.
func (s *Store) keywordBatch(ctx context.Context, b *batchTx, ch *changes, us []store.ConversationUpdate) error {
	var addConv, removeConv, rewrites []int64
	var addKw, removeKw []string
	var evs []store.Event
	for _, u := range us {
		if !b.locked[u.Conversation] {
			return fmt.Errorf("conversation %d: %w", u.Conversation, store.ErrNotFound)
		}
		for _, k := range u.AddTags {
			addConv, addKw = append(addConv, u.Conversation), append(addKw, k)
		}
		for _, k := range u.RemoveTags {
			removeConv, removeKw = append(removeConv, u.Conversation), append(removeKw, k)
		}
		if len(u.AddTags) > 0 || len(u.RemoveTags) > 0 {
			rewrites = append(rewrites, u.Conversation) // setKeywords notes it, changed or not
		}
		evs = append(evs, eventsOf(u)...)
	}
	// Added before removed, as setKeywords is called for a SetKeywords.
	added, err := changeKeywords(ctx, b, addConv, addKw, true)
	if err != nil {
		return err
	}
	removed, err := changeKeywords(ctx, b, removeConv, removeKw, false)
	if err != nil {
		return err
	}
	if len(rewrites) > 0 {
		if err := noteRewrite(ctx, b, rewrites); err != nil { // at the end (batchend.go)
			return err
		}
	}
	if err := touchConversations(ctx, b, append(added, removed...)...); err != nil { // at the end
		return err
	}
	if len(evs) > 0 {
		if _, err := s.addEvents(ctx, b, evs); err != nil {
			return err
		}
	}
	for _, u := range us {
		ch.Conversation(u.Conversation, len(u.AddTags)+len(u.RemoveTags) > 0, nil)
	}
	return nil
}
