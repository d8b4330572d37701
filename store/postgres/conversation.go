package postgres

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/supportgate/supportgate/store"
)

// AddEvent implements ConversationStore.
func (s *Store) AddEvent(ctx context.Context, ev store.Event) (int64, error) {
	var msg int64
	err := s.change(ctx, fmt.Sprintf("recording event in conversation %d", ev.Conversation), func(tx pgx.Tx, ch *changes) (err error) {
		if msg, err = s.addEvent(ctx, tx, ev); err != nil {
			return err
		}
		ch.Event(ev)
		return nil
	})
	return msg, err
}

// addEvent records ev in the events log and, unless it is quiet, as a
// message of kind event, whose number it returns.
func (s *Store) addEvent(ctx context.Context, tx pgx.Tx, ev store.Event) (int64, error) {
	ids, err := s.addEvents(ctx, tx, []store.Event{ev})
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// addEvents records evs as addEvent does, each conversation locked, and
// returns their messages' numbers (0 for a quiet one). Two round trips for
// any number of events: the locks with the inboxes and the messages'
// numbers, then every message and log row (a batch's STORE over a range
// records an event a conversation, keywordbatch.go). The messages' folder
// entries follow (enterFolders: at the end of a batch).
func (s *Store) addEvents(ctx context.Context, tx pgx.Tx, evs []store.Event) ([]int64, error) {
	convs := make([]int64, len(evs))
	loud := 0
	for i, ev := range evs {
		convs[i] = ev.Conversation
		if !ev.Quiet {
			loud++
		}
	}
	var inboxes []string
	var numbers []int64
	b := &pgx.Batch{}
	b.Queue(`SELECT c.inbox FROM unnest($1::bigint[]) WITH ORDINALITY AS t(conv, ord)
		JOIN conversations c ON c.id = t.conv ORDER BY t.ord FOR NO KEY UPDATE OF c`, convs).Query(func(rows pgx.Rows) (err error) {
		inboxes, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if loud > 0 {
		b.Queue(`SELECT nextval('message_numbers') FROM generate_series(1, $1)`, loud).Query(func(rows pgx.Rows) (err error) {
			numbers, err = pgx.CollectRows(rows, pgx.RowTo[int64])
			return err
		})
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	if len(inboxes) != len(evs) {
		return nil, store.ErrNotFound
	}
	slices.Sort(numbers) // in the events' order
	ids := make([]int64, len(evs))
	b = &pgx.Batch{}
	for i, ev := range evs {
		var msg *int64
		if !ev.Quiet {
			ids[i], numbers = numbers[0], numbers[1:]
			msg = &ids[i]
			queueMessage(b, messageRow{
				id: ids[i], conv: ev.Conversation, kind: store.KindEvent, sender: inboxes[i],
				received: millis(ev.At), raw: store.EventMessage(inboxes[i], ids[i], ev),
			})
		}
		b.Queue(`INSERT INTO events (conversation_id, type, text, detail, at, message_id) VALUES ($1, $2, $3, $4, $5, $6)`,
			ev.Conversation, ev.Type, ev.Text, ev.Detail, millis(ev.At), msg)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	for i, ev := range evs {
		if ids[i] != 0 {
			if err := enterFolders(ctx, tx, ev.Conversation, ids[i]); err != nil {
				return nil, err
			}
		}
	}
	return ids, nil
}

// Events implements ConversationStore.
func (s *Store) Events(ctx context.Context, conv int64) ([]store.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT type, text, detail, at, message_id IS NULL FROM events WHERE conversation_id = $1 ORDER BY id`, conv)
	if err != nil {
		return nil, fmt.Errorf("store: reading events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Event, error) {
		ev := store.Event{Conversation: conv}
		var at int64
		err := row.Scan(&ev.Type, &ev.Text, &ev.Detail, &at, &ev.Quiet)
		ev.At = fromMillis(at)
		return ev, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: reading events: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// UpdateConversation implements ConversationStore.
func (s *Store) UpdateConversation(ctx context.Context, u store.ConversationUpdate) error {
	return s.UpdateConversations(ctx, []store.ConversationUpdate{u})
}

// UpdateConversations implements store.ConversationStore. The
// conversations are locked in the order of their numbers, so that two
// batches that share some never wait for each other.
func (s *Store) UpdateConversations(ctx context.Context, us []store.ConversationUpdate) error {
	us = slices.Clone(us)
	slices.SortStableFunc(us, func(a, b store.ConversationUpdate) int { return cmp.Compare(a.Conversation, b.Conversation) })
	ids := make([]int64, len(us))
	for i, u := range us {
		ids[i] = u.Conversation
	}
	what := fmt.Sprintf("updating %d conversations", len(us))
	if len(us) == 1 {
		what = fmt.Sprintf("updating conversation %d", us[0].Conversation)
	}
	return s.change(ctx, what, func(tx pgx.Tx, ch *changes) error {
		// Every conversation before any counter: a transaction that took
		// the counters (noteRewrite) for the first conversation and then
		// waited for the second's lock deadlocked with one that held the
		// second and waited for the counters (imaptest's stress: 42
		// deadlocks in 12 s, each a second's wait).
		locked, err := int64s(ctx, tx, `SELECT id FROM conversations WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, ids)
		if err != nil {
			return err
		}
		// The shared counters last (batchend.go).
		b := &batchTx{Tx: tx, locked: map[int64]bool{}}
		for _, id := range locked {
			b.locked[id] = true
		}
		if keywordsOnly(us) { // an IMAP STORE over a range (keywordbatch.go)
			if err := s.keywordBatch(ctx, b, ch, us); err != nil {
				return err
			}
			return b.finish(ctx)
		}
		for _, u := range us {
			if err := s.updateLogged(ctx, b, ch, u); err != nil {
				return fmt.Errorf("conversation %d: %w", u.Conversation, err)
			}
		}
		return b.finish(ctx)
	})
}

// updateLogged applies u in tx and logs what it changed in ch.
func (s *Store) updateLogged(ctx context.Context, tx pgx.Tx, ch *changes, u store.ConversationUpdate) error {
	var before []store.Folder
	if u.Status != nil || u.Assignee != nil {
		if err := lockConversation(ctx, tx, u.Conversation); err != nil {
			return err
		}
		var err error
		if before, err = foldersOf(ctx, tx, u.Conversation); err != nil {
			return err
		}
	}
	if err := s.updateConversation(ctx, tx, u); err != nil {
		return err
	}
	ch.Conversation(u.Conversation, len(u.AddTags)+len(u.RemoveTags) > 0, before)
	return nil
}

func (s *Store) updateConversation(ctx context.Context, tx pgx.Tx, u store.ConversationUpdate) error {
	if err := lockConversation(ctx, tx, u.Conversation); err != nil {
		return err
	}
	if err := addParticipants(ctx, tx, u.Conversation, u.AddParticipants); err != nil {
		return err
	}
	if len(u.RemoveParticipants) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM participants WHERE conversation_id = $1 AND address = ANY($2)`, u.Conversation, u.RemoveParticipants); err != nil {
			return err
		}
	}
	if err := addFollowers(ctx, tx, u.Conversation, u.AddFollowers); err != nil {
		return err
	}
	if len(u.RemoveFollowers) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM followers WHERE conversation_id = $1 AND address = ANY($2)`, u.Conversation, u.RemoveFollowers); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM follower_notices WHERE conversation_id = $1 AND address = ANY($2)`, u.Conversation, u.RemoveFollowers); err != nil {
			return err
		}
	}
	if u.ReadOnly != nil {
		if _, err := tx.Exec(ctx, `UPDATE conversations SET read_only = $1 WHERE id = $2`, *u.ReadOnly, u.Conversation); err != nil {
			return err
		}
	}
	if len(u.AddTags) > 0 {
		if err := setKeywords(ctx, tx, u.Conversation, u.AddTags, true); err != nil {
			return err
		}
	}
	if len(u.RemoveTags) > 0 {
		if err := setKeywords(ctx, tx, u.Conversation, u.RemoveTags, false); err != nil {
			return err
		}
	}
	if u.Assignee != nil {
		if err := setAssignee(ctx, tx, u.Conversation, *u.Assignee); err != nil {
			return err
		}
	}
	if u.Status != nil {
		if err := setStatus(ctx, tx, u.Conversation, *u.Status); err != nil {
			return err
		}
	}
	if len(u.Events) == 0 {
		return nil
	}
	_, err := s.addEvents(ctx, tx, eventsOf(u))
	return err
}

// eventsOf is u's events, each of u's conversation.
func eventsOf(u store.ConversationUpdate) []store.Event {
	evs := slices.Clone(u.Events)
	for i := range evs {
		evs[i].Conversation = u.Conversation
	}
	return evs
}

func addFollowers(ctx context.Context, tx pgx.Tx, conv int64, addrs []string) error {
	for _, a := range addrs {
		if _, err := tx.Exec(ctx, `INSERT INTO followers (conversation_id, address) VALUES ($1, $2) ON CONFLICT DO NOTHING`, conv, a); err != nil {
			return err
		}
		if err := startNotice(ctx, tx, conv, a); err != nil {
			return err
		}
	}
	return nil
}

// ListConversations implements ConversationStore: keyset paging on the
// primary key (store/conversation.go says why by number), one index range
// per page whatever its depth.
func (s *Store) ListConversations(ctx context.Context, status store.Status, before int64, limit int) ([]store.Conversation, int64, error) {
	if limit <= 0 {
		return nil, 0, fmt.Errorf("store: listing conversations: a page of %d", limit)
	}
	if before <= 0 {
		before = math.MaxInt64
	}
	var out []store.Conversation
	var next int64
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		ids, err := int64s(ctx, tx, `SELECT id FROM conversations WHERE id < $1 AND ($2 = '' OR status = $2) AND merged_into = 0 ORDER BY id DESC LIMIT $3`,
			before, string(status), limit)
		if err != nil {
			return err
		}
		if len(ids) == limit {
			next = ids[len(ids)-1]
		}
		out = make([]store.Conversation, 0, len(ids))
		for _, id := range ids {
			c, err := readConversation(ctx, tx, id)
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: listing conversations: %w", err)
	}
	return out, next, nil
}

// ConversationMessages implements ConversationStore.
func (s *Store) ConversationMessages(ctx context.Context, conv int64) ([]store.Message, error) {
	rows, err := s.pool.Query(ctx, messageColumns+`WHERE conversation_id = $1 ORDER BY id`, conv)
	if err != nil {
		return nil, fmt.Errorf("store: listing messages: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Message, error) { return scanMessage(row) })
	if err != nil {
		return nil, fmt.Errorf("store: listing messages: %w", err)
	}
	return out, nil
}
