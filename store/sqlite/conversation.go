package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/supportgate/supportgate/store"
)

// conversationSchema is migration 5: participants, followers, events and
// policies (issue 4).
const conversationSchema = `CREATE TABLE events (
		id INTEGER PRIMARY KEY,
		conversation_id INTEGER NOT NULL REFERENCES conversations(id),
		type TEXT NOT NULL,
		text TEXT NOT NULL,
		detail TEXT NOT NULL,
		at INTEGER NOT NULL,
		message_id INTEGER REFERENCES messages(id)
	);
	CREATE INDEX events_conversation ON events(conversation_id, id);
	CREATE TABLE followers (
		conversation_id INTEGER NOT NULL REFERENCES conversations(id),
		address TEXT NOT NULL,
		PRIMARY KEY (conversation_id, address)
	);
	ALTER TABLE conversations ADD COLUMN read_only INTEGER NOT NULL DEFAULT 0`

// AddEvent implements ConversationStore.
func (s *Store) AddEvent(ctx context.Context, ev store.Event) (int64, error) {
	var msg int64
	err := s.commit(ctx, func(tx *sql.Tx, ch *changes) (err error) {
		if msg, err = s.addEvent(ctx, tx, ev); err != nil {
			return err
		}
		ch.Event(ev)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: recording event in conversation %d: %w", ev.Conversation, err)
	}
	return msg, nil
}

// addEvent records ev in the events log and, unless it is quiet, as a
// message of kind event.
func (s *Store) addEvent(ctx context.Context, tx *sql.Tx, ev store.Event) (int64, error) {
	var inbox string
	if err := tx.QueryRowContext(ctx, `SELECT inbox FROM conversations WHERE id = ?`, ev.Conversation).Scan(&inbox); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, store.ErrNotFound
		}
		return 0, err
	}
	var msg sql.NullInt64
	if !ev.Quiet {
		id, err := nextval(ctx, tx, "message")
		if err != nil {
			return 0, err
		}
		msg = sql.NullInt64{Int64: id, Valid: true}
		if err := s.insertMessage(ctx, tx, messageRow{
			id: id, conv: ev.Conversation, kind: store.KindEvent, sender: inbox,
			received: millis(ev.At), raw: store.EventMessage(inbox, id, ev),
		}); err != nil {
			return 0, err
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO events (conversation_id, type, text, detail, at, message_id) VALUES (?, ?, ?, ?, ?, ?)`,
		ev.Conversation, ev.Type, ev.Text, ev.Detail, millis(ev.At), msg)
	return msg.Int64, err
}

// Events implements ConversationStore.
func (s *Store) Events(ctx context.Context, conv int64) ([]store.Event, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT type, text, detail, at, message_id IS NULL FROM events WHERE conversation_id = ? ORDER BY id`, conv)
	if err != nil {
		return nil, fmt.Errorf("store: reading events: %w", err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		ev := store.Event{Conversation: conv}
		var at int64
		if err := rows.Scan(&ev.Type, &ev.Text, &ev.Detail, &at, &ev.Quiet); err != nil {
			return nil, fmt.Errorf("store: reading events: %w", err)
		}
		ev.At = fromMillis(at)
		out = append(out, ev)
	}
	return out, rows.Err()
}

// UpdateConversation implements ConversationStore.
func (s *Store) UpdateConversation(ctx context.Context, u store.ConversationUpdate) error {
	err := s.commit(ctx, func(tx *sql.Tx, ch *changes) error { return s.updateLogged(ctx, tx, ch, u) })
	if err != nil {
		return fmt.Errorf("store: updating conversation %d: %w", u.Conversation, err)
	}
	return nil
}

// UpdateConversations implements ConversationStore.
func (s *Store) UpdateConversations(ctx context.Context, us []store.ConversationUpdate) error {
	err := s.commit(ctx, func(tx *sql.Tx, ch *changes) error {
		for _, u := range us {
			if err := s.updateLogged(ctx, tx, ch, u); err != nil {
				return fmt.Errorf("conversation %d: %w", u.Conversation, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: updating %d conversations: %w", len(us), err)
	}
	return nil
}

// updateLogged applies u in tx and logs what it changed in ch.
func (s *Store) updateLogged(ctx context.Context, tx *sql.Tx, ch *changes, u store.ConversationUpdate) error {
	var before []store.Folder
	if u.Status != nil || u.Assignee != nil {
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

func (s *Store) updateConversation(ctx context.Context, tx *sql.Tx, u store.ConversationUpdate) error {
	var exists int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM conversations WHERE id = ?`, u.Conversation).Scan(&exists); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	}
	if err := addParticipants(ctx, tx, u.Conversation, u.AddParticipants); err != nil {
		return err
	}
	for _, a := range u.RemoveParticipants {
		if _, err := tx.ExecContext(ctx, `DELETE FROM participants WHERE conversation_id = ? AND address = ?`, u.Conversation, a); err != nil {
			return err
		}
	}
	if err := addFollowers(ctx, tx, u.Conversation, u.AddFollowers); err != nil {
		return err
	}
	for _, a := range u.RemoveFollowers {
		if _, err := tx.ExecContext(ctx, `DELETE FROM followers WHERE conversation_id = ? AND address = ?`, u.Conversation, a); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM follower_notices WHERE conversation_id = ? AND address = ?`, u.Conversation, a); err != nil {
			return err
		}
	}
	if u.ReadOnly != nil {
		if _, err := tx.ExecContext(ctx, `UPDATE conversations SET read_only = ? WHERE id = ?`, *u.ReadOnly, u.Conversation); err != nil {
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
	for _, ev := range u.Events {
		ev.Conversation = u.Conversation
		if _, err := s.addEvent(ctx, tx, ev); err != nil {
			return err
		}
	}
	return nil
}

func addFollowers(ctx context.Context, tx *sql.Tx, conv int64, addrs []string) error {
	for _, a := range addrs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO followers (conversation_id, address) VALUES (?, ?) ON CONFLICT DO NOTHING`, conv, a); err != nil {
			return err
		}
		if err := startNotice(ctx, tx, conv, a); err != nil {
			return err
		}
	}
	return nil
}

// ListConversations implements ConversationStore.
//
// Keyset paging on the primary key (store/conversation.go says why by
// number): each page is one index range, whatever the page's depth.
func (s *Store) ListConversations(ctx context.Context, status store.Status, before int64, limit int) ([]store.Conversation, int64, error) {
	if limit <= 0 {
		return nil, 0, fmt.Errorf("store: listing conversations: a page of %d", limit)
	}
	if before <= 0 {
		before = math.MaxInt64
	}
	ids, err := int64s(ctx, s.read, `SELECT id FROM conversations WHERE id < ? AND (? = '' OR status = ?) AND merged_into = 0 ORDER BY id DESC LIMIT ?`,
		before, status, status, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("store: listing conversations: %w", err)
	}
	out := make([]store.Conversation, 0, len(ids))
	for _, id := range ids {
		c, err := s.Conversation(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, c)
	}
	var next int64
	if len(ids) == limit {
		next = ids[len(ids)-1]
	}
	return out, next, nil
}

// ConversationMessages implements ConversationStore.
func (s *Store) ConversationMessages(ctx context.Context, conv int64) ([]store.Message, error) {
	ids, err := int64s(ctx, s.read, `SELECT id FROM messages WHERE conversation_id = ? ORDER BY id`, conv)
	if err != nil {
		return nil, fmt.Errorf("store: listing messages: %w", err)
	}
	return s.messagesByID(ctx, ids)
}

// messagesByID reads the messages ids, in their order.
func (s *Store) messagesByID(ctx context.Context, ids []int64) ([]store.Message, error) {
	out := make([]store.Message, 0, len(ids))
	for _, id := range ids {
		m, err := s.Message(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// conversationExtras fills what this part of the store keeps of a
// conversation: read-only and followers.
func (s *Store) conversationExtras(ctx context.Context, c *store.Conversation) error {
	if err := s.read.QueryRowContext(ctx, `SELECT read_only FROM conversations WHERE id = ?`, c.ID).Scan(&c.ReadOnly); err != nil {
		return err
	}
	rows, err := s.read.QueryContext(ctx, `SELECT address FROM followers WHERE conversation_id = ? ORDER BY address`, c.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return err
		}
		c.Followers = append(c.Followers, a)
	}
	return rows.Err()
}
