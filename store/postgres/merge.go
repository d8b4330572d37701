package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/supportgate/supportgate/store"
)

// mergeSchema is migration 4: the conversation a merged one answers to
// (DESIGN.md §14), as store/sqlite's migration 16.
const mergeSchema = `ALTER TABLE conversations ADD COLUMN IF NOT EXISTS merged_into bigint NOT NULL DEFAULT 0`

// maxMergeChain bounds how many merges a lookup follows.
const maxMergeChain = 32

// resolveMerged returns the conversation id answers to: itself, or the one it
// was merged into, followed through later merges.
func resolveMerged(ctx context.Context, q querier, id int64) (int64, error) {
	for range maxMergeChain {
		var into int64
		err := q.QueryRow(ctx, `SELECT merged_into FROM conversations WHERE id = $1`, id).Scan(&into)
		if errors.Is(err, pgx.ErrNoRows) {
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
	return s.change(ctx, fmt.Sprintf("merging conversation %d into %d", m.From, m.Into), func(tx pgx.Tx, ch *changes) error {
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
		// Both locked in number order, as every writer of two would.
		for _, c := range []int64{min(from, into), max(from, into)} {
			if err := lockConversation(ctx, tx, c); err != nil {
				return err
			}
		}
		// A merge that raced another one: follow it again, under the locks.
		if f, err := resolveMerged(ctx, tx, from); err != nil || f != from {
			return errors.Join(err, errRetry)
		}
		if i, err := resolveMerged(ctx, tx, into); err != nil || i != into {
			return errors.Join(err, errRetry)
		}
		// The rewrites counter first, in the order every writer takes them.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM counters WHERE name = 'rewrites' FOR UPDATE`); err != nil {
			return err
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
}

func (s *Store) merge(ctx context.Context, tx pgx.Tx, from, into int64, m store.Merge) error {
	var fromOwner, intoOwner string
	if err := tx.QueryRow(ctx, `SELECT owner FROM conversations WHERE id = $1`, from).Scan(&fromOwner); err != nil {
		return err
	}
	if err := tx.QueryRow(ctx, `SELECT owner FROM conversations WHERE id = $1`, into).Scan(&intoOwner); err != nil {
		return err
	}
	people, err := strs(ctx, tx, `SELECT address FROM participants WHERE conversation_id = $1 ORDER BY position`, from)
	if err != nil {
		return err
	}
	if !strings.EqualFold(fromOwner, intoOwner) {
		people = append([]string{fromOwner}, people...)
	}
	people = slices.DeleteFunc(people, func(a string) bool { return strings.EqualFold(a, intoOwner) })
	followers, err := strs(ctx, tx, `SELECT address FROM followers WHERE conversation_id = $1 ORDER BY address`, from)
	if err != nil {
		return err
	}
	tags, err := strs(ctx, tx, `SELECT keyword FROM conversation_keywords WHERE conversation_id = $1 ORDER BY keyword`, from)
	if err != nil {
		return err
	}
	var offset int64
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(number), 0) FROM sides WHERE conversation_id = $1`, into).Scan(&offset); err != nil {
		return err
	}
	if err := noteRewrite(ctx, tx, []int64{from, into}); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM folder_entries WHERE message_id IN (SELECT id FROM messages WHERE conversation_id = $1)`, from); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE messages SET side = side + $1 WHERE conversation_id = $2 AND side > 0`, offset, from); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE sides SET conversation_id = $1, number = number + $2 WHERE conversation_id = $3`, into, offset, from); err != nil {
		return err
	}
	for _, q := range []string{
		`UPDATE messages SET conversation_id = $1 WHERE conversation_id = $2`,
		`UPDATE message_ids SET conversation_id = $1 WHERE conversation_id = $2`,
		`UPDATE events SET conversation_id = $1 WHERE conversation_id = $2`,
		`UPDATE conversations SET merged_into = $1 WHERE id = $2`,
	} {
		if _, err := tx.Exec(ctx, q, into, from); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE conversations SET updated = GREATEST(updated, (SELECT updated FROM conversations WHERE id = $1)) WHERE id = $2`,
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
