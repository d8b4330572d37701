package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

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
	for _, u := range us {
		if !b.locked[u.Conversation] {
			return fmt.Errorf("conversation %d: %w", u.Conversation, store.ErrNotFound)
		}
		for _, k := range u.AddTags {
			if k != "" {
				addConv, addKw = append(addConv, u.Conversation), append(addKw, k)
			}
		}
		for _, k := range u.RemoveTags {
			if k != "" {
				removeConv, removeKw = append(removeConv, u.Conversation), append(removeKw, strings.ToLower(k))
			}
		}
		if len(u.AddTags) > 0 || len(u.RemoveTags) > 0 {
			rewrites = append(rewrites, u.Conversation) // setKeywords notes it, changed or not
		}
	}
	// Added before removed, as setKeywords is called for a SetKeywords.
	changed, err := int64s(ctx, b, `INSERT INTO conversation_keywords (conversation_id, keyword)
		SELECT c, k FROM unnest($1::bigint[], $2::text[]) AS t(c, k) ON CONFLICT DO NOTHING RETURNING conversation_id`, addConv, addKw)
	if err != nil {
		return err
	}
	removed, err := int64s(ctx, b, `DELETE FROM conversation_keywords ck USING unnest($1::bigint[], $2::text[]) AS t(c, k)
		WHERE ck.conversation_id = t.c AND lower(ck.keyword) = t.k RETURNING ck.conversation_id`, removeConv, removeKw)
	if err != nil {
		return err
	}
	if len(rewrites) > 0 {
		if err := noteRewrite(ctx, b, rewrites); err != nil { // at the end (batchend.go)
			return err
		}
	}
	if err := touchConversations(ctx, b, append(changed, removed...)...); err != nil { // at the end
		return err
	}
	if err := s.batchEvents(ctx, b, us); err != nil {
		return err
	}
	for _, u := range us {
		ch.Conversation(u.Conversation, len(u.AddTags)+len(u.RemoveTags) > 0, nil)
	}
	return nil
}

// batchEvents records the events of us as addEvent does, in two round
// trips: the numbers of the messages of those not quiet, with their
// conversations' inboxes, then every message and log row in one pipeline.
// The messages' folder entries are b's, at its end.
func (s *Store) batchEvents(ctx context.Context, b *batchTx, us []store.ConversationUpdate) error {
	var evs []store.Event
	var loud []int64 // the conversation of each event that is a message, in order
	for _, u := range us {
		for _, ev := range u.Events {
			ev.Conversation = u.Conversation
			evs = append(evs, ev)
			if !ev.Quiet {
				loud = append(loud, u.Conversation)
			}
		}
	}
	if len(evs) == 0 {
		return nil
	}
	type numbered struct {
		inbox string
		id    int64
	}
	var numbers []numbered
	if len(loud) > 0 {
		rows, err := b.Query(ctx, `SELECT c.inbox, nextval('message_numbers') FROM unnest($1::bigint[]) WITH ORDINALITY AS t(conv, ord)
			JOIN conversations c ON c.id = t.conv ORDER BY t.ord`, loud)
		if err != nil {
			return err
		}
		numbers, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (numbered, error) {
			var n numbered
			err := row.Scan(&n.inbox, &n.id)
			return n, err
		})
		if err != nil {
			return err
		}
		if len(numbers) != len(loud) {
			return store.ErrNotFound
		}
	}
	batch := &pgx.Batch{}
	next := 0
	for _, ev := range evs {
		var msg *int64
		if !ev.Quiet {
			n := numbers[next]
			next++
			msg = &n.id
			queueMessage(batch, messageRow{
				id: n.id, conv: ev.Conversation, kind: store.KindEvent, sender: n.inbox,
				received: millis(ev.At), raw: store.EventMessage(n.inbox, n.id, ev),
			})
			b.enter = append(b.enter, n.id)
		}
		batch.Queue(`INSERT INTO events (conversation_id, type, text, detail, at, message_id) VALUES ($1, $2, $3, $4, $5, $6)`,
			ev.Conversation, ev.Type, ev.Text, ev.Detail, millis(ev.At), msg)
	}
	return b.SendBatch(ctx, batch).Close()
}
