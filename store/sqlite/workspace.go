package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/supportgate/supportgate/store"
)

// workspaceSchema is migration 4: the agents' IMAP workspace (issue 5).
//
// Conversations get an assignee and keywords (tags, \Flagged, \Answered...,
// shared by the team); folder entries record the assignee they were made
// for (Mine shows an agent the entries made for them); entry_marks holds an
// agent's \Deleted and "hidden" marks on shared entries; private_mailboxes
// and private_messages are the agents' own mailboxes. Open, closed and spam
// conversations of a database made before it get their Unassigned, Closed
// and Spam entries here, numbered in message order.
const workspaceSchema = `ALTER TABLE conversations ADD COLUMN assignee TEXT NOT NULL DEFAULT '';
	ALTER TABLE folder_entries ADD COLUMN assignee TEXT NOT NULL DEFAULT '';
	CREATE INDEX folder_entries_message ON folder_entries(message_id, folder);
	CREATE TABLE conversation_keywords (
		conversation_id INTEGER NOT NULL REFERENCES conversations(id),
		keyword TEXT NOT NULL COLLATE NOCASE,
		PRIMARY KEY (conversation_id, keyword)
	);
	CREATE TABLE entry_marks (
		agent TEXT NOT NULL,
		folder TEXT NOT NULL,
		uid INTEGER NOT NULL,
		mark TEXT NOT NULL,
		PRIMARY KEY (agent, folder, uid, mark)
	);
	CREATE TABLE private_mailboxes (
		id INTEGER PRIMARY KEY,
		agent TEXT NOT NULL,
		name TEXT NOT NULL,
		uidvalidity INTEGER NOT NULL,
		uidnext INTEGER NOT NULL,
		UNIQUE (agent, name)
	);
	CREATE TABLE private_messages (
		mailbox_id INTEGER NOT NULL REFERENCES private_mailboxes(id) ON DELETE CASCADE,
		uid INTEGER NOT NULL,
		message_id INTEGER REFERENCES messages(id),
		raw BLOB,
		size INTEGER NOT NULL,
		received INTEGER NOT NULL,
		flags TEXT NOT NULL,
		PRIMARY KEY (mailbox_id, uid)
	);
	INSERT INTO folder_entries (folder, uid, message_id, inbox, assignee)
		SELECT 'Unassigned', ROW_NUMBER() OVER (ORDER BY m.id), m.id, c.inbox, ''
		FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.status = 'open';
	INSERT INTO folder_entries (folder, uid, message_id, inbox, assignee)
		SELECT 'Closed', ROW_NUMBER() OVER (ORDER BY m.id), m.id, c.inbox, ''
		FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.status = 'closed';
	INSERT INTO folder_entries (folder, uid, message_id, inbox, assignee)
		SELECT 'Spam', ROW_NUMBER() OVER (ORDER BY m.id), m.id, c.inbox, ''
		FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.status = 'spam';
	INSERT INTO sequences (name, value)
		SELECT 'uid:' || folder, MAX(uid) FROM folder_entries WHERE folder IN ('Unassigned', 'Closed', 'Spam') GROUP BY folder`

// syncFolders keeps a conversation's shared folder entries in step with its
// status and assignee (DESIGN.md §6, §13): an open conversation is in INBOX
// and in Mine (its assignee's) or Unassigned; a closed one in Closed; spam
// in Spam. A message that enters a folder gets the folder's next UID; one
// that leaves loses its entry, so a UID is never reused.
func syncFolders(ctx context.Context, tx *sql.Tx, conv int64) error {
	status, inbox, assignee, err := folderState(ctx, tx, conv)
	if err != nil {
		return err
	}
	if err := noteRewrite(ctx, tx, []int64{conv}); err != nil { // sqlite_cursor.go
		return err
	}
	// One mod-sequence for the entries it adds; advanced also when it
	// only removes some, so that HIGHESTMODSEQ grows (sqlite_modseq.go).
	ms, err := nextModSeq(ctx, tx)
	if err != nil {
		return err
	}
	want := map[store.Folder]bool{}
	for _, f := range store.WantedFolders(status, assignee) {
		want[f] = true
	}
	for _, f := range store.SharedFolders() {
		entryAssignee := ""
		if f == store.FolderMine {
			entryAssignee = assignee
		}
		// Both queries go through folder_entries_message (migration 4), so
		// their cost does not grow with the folder.
		if _, err := tx.ExecContext(ctx, `DELETE FROM folder_entries
			WHERE message_id IN (SELECT id FROM messages WHERE conversation_id = ?) AND folder = ? AND (? OR assignee != ?)`,
			conv, f, !want[f], entryAssignee); err != nil {
			return err
		}
		if !want[f] {
			continue
		}
		ids, err := int64s(ctx, tx, `SELECT m.id FROM messages m WHERE m.conversation_id = ? AND m.kind != ?
			AND NOT EXISTS (SELECT 1 FROM folder_entries e WHERE e.message_id = m.id AND e.folder = ?) ORDER BY m.id`, conv, store.KindNotification, f)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := addFolderEntry(ctx, tx, f, id, inbox, assignee, ms); err != nil {
				return err
			}
		}
	}
	return nil
}

// int64s runs a query of one integer column and returns its values.
func int64s(ctx context.Context, tx querier, q string, args ...any) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// change runs f in a write transaction (commit), which tells the sessions
// it concerns what f recorded.
func (s *Store) change(ctx context.Context, what string, f func(tx *sql.Tx, ch *changes) error) error {
	if err := s.commit(ctx, f); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

func setAssignee(ctx context.Context, tx *sql.Tx, conv int64, agent string) error {
	res, err := tx.ExecContext(ctx, `UPDATE conversations SET assignee = ? WHERE id = ?`, agent, conv)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return syncFolders(ctx, tx, conv)
}

func setKeywords(ctx context.Context, tx *sql.Tx, conv int64, keywords []string, on bool) error {
	var one int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM conversations WHERE id = ?`, conv).Scan(&one); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	}
	if err := noteRewrite(ctx, tx, []int64{conv}); err != nil {
		return err
	}
	changed := false
	for _, k := range keywords {
		if k == "" {
			continue
		}
		var res sql.Result
		var err error
		if on {
			res, err = tx.ExecContext(ctx, `INSERT INTO conversation_keywords (conversation_id, keyword) VALUES (?, ?) ON CONFLICT DO NOTHING`, conv, k)
		} else {
			res, err = tx.ExecContext(ctx, `DELETE FROM conversation_keywords WHERE conversation_id = ? AND keyword = ?`, conv, k)
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			changed = true
		}
	}
	if changed {
		return touchConversations(ctx, tx, conv) // sqlite_modseq.go
	}
	return nil
}

// conversationKeywords fills a conversation's Assignee, Tags and Flagged.
func (s *Store) conversationKeywords(ctx context.Context, c *store.Conversation) error {
	if err := s.read.QueryRowContext(ctx, `SELECT assignee FROM conversations WHERE id = ?`, c.ID).Scan(&c.Assignee); err != nil {
		return fmt.Errorf("store: reading conversation %d: %w", c.ID, err)
	}
	kws, err := keywords(ctx, s.read, []int64{c.ID})
	if err != nil {
		return err
	}
	c.Flagged, c.Tags = store.SplitKeywords(kws[c.ID])
	return nil
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// keywords returns the keywords of conversations, sorted. A caller inside a
// read transaction passes it, so that it never waits for a second
// connection of the pool while holding one.
func keywords(ctx context.Context, q querier, convs []int64) (map[int64][]string, error) {
	out := map[int64][]string{}
	err := byIDs(ctx, q, `SELECT conversation_id, keyword FROM conversation_keywords
		WHERE conversation_id IN (%s) ORDER BY keyword`, convs, func(rows *sql.Rows) error {
		var c int64
		var k string
		if err := rows.Scan(&c, &k); err != nil {
			return err
		}
		out[c] = append(out[c], k)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: reading keywords: %w", err)
	}
	return out, nil
}

// SetMarks implements WorkspaceStore.
func (s *Store) SetMarks(ctx context.Context, agent string, folder store.Folder, uids []uint32, mark store.Mark, on bool) error {
	return s.change(ctx, "marking entries", func(tx *sql.Tx, ch *changes) error {
		// Marks are the agent's own. They are on one folder kind's
		// entries, but the mod-sequence they advance is the message's in
		// every folder (touchAgentEntries): no Folders.
		ch.Agent(agent, "")
		convs, err := markedConversations(ctx, tx, folder, uids)
		if err != nil {
			return err
		}
		if err := noteRewrite(ctx, tx, convs); err != nil {
			return err
		}
		var changed []uint32
		for _, uid := range uids {
			var res sql.Result
			var err error
			if on {
				res, err = tx.ExecContext(ctx, `INSERT INTO entry_marks (agent, folder, uid, mark) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
					agent, folder, uid, mark)
			} else {
				res, err = tx.ExecContext(ctx, `DELETE FROM entry_marks WHERE agent = ? AND folder = ? AND uid = ? AND mark = ?`,
					agent, folder, uid, mark)
			}
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				changed = append(changed, uid)
			}
		}
		return touchAgentEntries(ctx, tx, agent, folder, changed) // sqlite_modseq.go
	})
}
