package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/supportgate/supportgate/store"
)

// mergeSchema is migration 16: the conversation a merged one answers to
// (DESIGN.md §14), 0 for none.
const mergeSchema = `ALTER TABLE conversations ADD COLUMN merged_into INTEGER NOT NULL DEFAULT 0`

// maxMergeChain bounds how many merges a lookup follows (a merged
// conversation merged again).
const maxMergeChain = 32

// resolveMerged returns the conversation id answers to: itself, or the one it
// was merged into, followed through later merges.
func resolveMerged(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, id int64) (int64, error) {
	for range maxMergeChain {
		var into int64
		err := q.QueryRowContext(ctx, `SELECT merged_into FROM conversations WHERE id = ?`, id).Scan(&into)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, store.ErrNotFound
		}
		if err != nil {
			return 0, err
		}
		if into == 0 {
			return id, nil
		}
		id = into
	}
	return id, nil
}

// MergeConversation implements Store.
func (s *Store) MergeConversation(ctx context.Context, m store.Merge) error {
	err := s.commit(ctx, func(tx *sql.Tx, ch *changes) error {
		from, err := resolveMerged(ctx, tx, m.From)
		if err != nil {
			return err
		}
		into, err := resolveMerged(ctx, tx, m.Into)
		if err != nil {
			return err
		}
		if from == into {
			return store.ErrMergeSelf
		}
		beforeFrom, err := foldersOf(ctx, tx, from)
		if err != nil {
			return err
		}
		beforeInto, err := foldersOf(ctx, tx, into)
		if err != nil {
			return err
		}
		if err := s.merge(ctx, tx, from, into, m); err != nil {
			return err
		}
		ch.Conversation(from, true, beforeFrom)
		ch.Conversation(into, true, beforeInto)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: merging conversation %d into %d: %w", m.From, m.Into, err)
	}
	return nil
}

func (s *Store) merge(ctx context.Context, tx *sql.Tx, from, into int64, m store.Merge) error {
	var fromOwner, intoOwner string
	if err := tx.QueryRowContext(ctx, `SELECT owner FROM conversations WHERE id = ?`, from).Scan(&fromOwner); err != nil {
		return err
	}
	if err := tx.QueryRowContext(ctx, `SELECT owner FROM conversations WHERE id = ?`, into).Scan(&intoOwner); err != nil {
		return err
	}
	people, err := strs(ctx, tx, `SELECT address FROM participants WHERE conversation_id = ? ORDER BY position`, from)
	if err != nil {
		return err
	}
	if !strings.EqualFold(fromOwner, intoOwner) {
		people = append([]string{fromOwner}, people...)
	}
	people = slices.DeleteFunc(people, func(a string) bool { return strings.EqualFold(a, intoOwner) })
	followers, err := strs(ctx, tx, `SELECT address FROM followers WHERE conversation_id = ? ORDER BY address`, from)
	if err != nil {
		return err
	}
	tags, err := strs(ctx, tx, `SELECT keyword FROM conversation_keywords WHERE conversation_id = ? ORDER BY keyword`, from)
	if err != nil {
		return err
	}
	// Side conversations are numbered after the target's own.
	var offset int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(number), 0) FROM sides WHERE conversation_id = ?`, into).Scan(&offset); err != nil {
		return err
	}
	// The messages leave their folders (readers see them expunged) and
	// enter the target's with new UIDs (syncFolders).
	if err := noteRewrite(ctx, tx, []int64{from, into}); err != nil {
		return err
	}
	for _, q := range []string{
		`DELETE FROM folder_entries WHERE message_id IN (SELECT id FROM messages WHERE conversation_id = ?)`,
	} {
		if _, err := tx.ExecContext(ctx, q, from); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET side = side + ? WHERE conversation_id = ? AND side > 0`, offset, from); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sides SET conversation_id = ?, number = number + ? WHERE conversation_id = ?`, into, offset, from); err != nil {
		return err
	}
	for _, q := range []string{
		`UPDATE messages SET conversation_id = ? WHERE conversation_id = ?`,
		`UPDATE message_ids SET conversation_id = ? WHERE conversation_id = ?`,
		`UPDATE events SET conversation_id = ? WHERE conversation_id = ?`,
		`UPDATE conversations SET merged_into = ? WHERE id = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, into, from); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE conversations SET updated = MAX(updated, (SELECT updated FROM conversations WHERE id = ?)) WHERE id = ?`,
		from, into); err != nil {
		return err
	}
	joining, over, err := withinCap(ctx, tx, into, people, m.Cap)
	if err != nil {
		return err
	}
	// DESIGN.md §14: over the cap, the merge keeps everyone.
	if err := addParticipants(ctx, tx, into, slices.Concat(joining, over)); err != nil {
		return err
	}
	events := slices.Clone(m.Events)
	if len(over) > 0 {
		events = append(events, store.Event{Type: "participants-over-cap", At: m.FromEvent.At,
			Text: fmt.Sprintf("The merge kept every participant, over the cap of %d: %s", m.Cap.Max, strings.Join(over, ", "))})
	}
	if err := s.updateConversation(ctx, tx, store.ConversationUpdate{Conversation: into, AddFollowers: followers, AddTags: tags, Events: events}); err != nil {
		return err
	}
	if err := syncFolders(ctx, tx, into); err != nil {
		return err
	}
	ev := m.FromEvent
	ev.Conversation, ev.Quiet = from, true
	_, err = s.addEvent(ctx, tx, ev)
	return err
}

// strs runs a query of one text column and returns its values.
func strs(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
