package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/supportgate/supportgate/store"
)

// UIDValidity implements Store. Every node reads and sets it in the
// database, under the row's lock, so they all give a view the same one.
func (s *Store) UIDValidity(ctx context.Context, view store.MailboxView) (uint32, error) {
	scope := store.ScopeKey(view.Inboxes)
	key := string(view.Folder)
	if view.Name != "" {
		key = view.Name
	}
	var v int64
	var have string
	err := s.pool.QueryRow(ctx, `SELECT uidvalidity, scope FROM mailbox_state WHERE agent = $1 AND folder = $2`,
		view.Agent, key).Scan(&v, &have)
	if err == nil && have == scope {
		return uint32(v), nil
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("store: reading UIDVALIDITY: %w", err)
	}
	// New, or the visible inboxes changed: a new UIDVALIDITY, never smaller
	// than the old one, so clients drop their caches (RFC 9051 2.3.1.1).
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		now := time.Now().Unix() & 0x7fffffff
		err := tx.QueryRow(ctx, `INSERT INTO mailbox_state (agent, folder, uidvalidity, scope) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING RETURNING uidvalidity`, view.Agent, key, now, scope).Scan(&v)
		if err == nil || !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var old int64
		if err := tx.QueryRow(ctx, `SELECT uidvalidity, scope FROM mailbox_state WHERE agent = $1 AND folder = $2 FOR UPDATE`,
			view.Agent, key).Scan(&old, &have); err != nil {
			return err
		}
		if have == scope {
			v = old
			return nil
		}
		v = max(now, old+1)
		_, err = tx.Exec(ctx, `UPDATE mailbox_state SET uidvalidity = $3, scope = $4 WHERE agent = $1 AND folder = $2`,
			view.Agent, key, v, scope)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: setting UIDVALIDITY: %w", err)
	}
	return uint32(v), nil
}

// Entries implements Store.
func (s *Store) Entries(ctx context.Context, view store.MailboxView) ([]store.MailboxEntry, uint32, error) {
	entries, next, _, _, err := s.EntriesSince(ctx, view, store.FolderCursor{})
	return entries, next, err
}

// EntriesSince implements IncrementalEntries (cursor.go).
func (s *Store) EntriesSince(ctx context.Context, view store.MailboxView, cur store.FolderCursor) ([]store.MailboxEntry, uint32, store.FolderCursor, bool, error) {
	c, err := s.entryChanges(ctx, view, cur, false)
	if err != nil {
		return nil, 0, store.FolderCursor{}, false, err
	}
	return c.Entries, c.UIDNext, c.Cursor, !c.Full, nil
}

// EntryChanges implements IncrementalEntries (cursor.go).
func (s *Store) EntryChanges(ctx context.Context, view store.MailboxView, cur store.FolderCursor) (store.FolderChanges, error) {
	return s.entryChanges(ctx, view, cur, true)
}

// entryChanges reads a view since cur, replacing conversations only when
// patch: one snapshot sees the folder's last UID, the rewrites counter,
// the rewrite log and the entries together, so the cursor it returns
// describes exactly what was read. The counters are committed in order
// (see the package comment), so the snapshot holds every entry up to them.
func (s *Store) entryChanges(ctx context.Context, view store.MailboxView, cur store.FolderCursor, patch bool) (store.FolderChanges, error) {
	var out store.FolderChanges
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var next, rewrites, floor, modSeq int64
		err := tx.QueryRow(ctx, `SELECT
			COALESCE((SELECT value FROM counters WHERE name = $1), 0), COALESCE((SELECT value FROM counters WHERE name = 'rewrites'), 0),
			COALESCE((SELECT value FROM counters WHERE name = 'rewrite_log_floor'), 0), COALESCE((SELECT value FROM counters WHERE name = 'modseq'), 1)`,
			"uid:"+string(view.Folder)).Scan(&next, &rewrites, &floor, &modSeq)
		if err != nil {
			return err
		}
		now := store.FolderCursor{Last: uint32(next), Version: rewrites, Valid: true}
		out = store.FolderChanges{UIDNext: uint32(next + 1), Cursor: now, HighestModSeq: max(modSeq, 1)}
		// Only new entries when nothing but new entries was committed
		// since cur was read; or, when patch, new entries and those of the
		// few conversations rewritten since (cursor.go).
		incremental := cur.Valid && cur.Last <= now.Last && cur.Version <= rewrites
		var touched []int64
		if incremental && cur.Version != rewrites {
			incremental = false
			if patch {
				if touched, incremental, err = rewrittenSince(ctx, tx, cur.Version, floor); err != nil {
					return err
				}
			}
		}
		out.Full = !incremental
		if len(view.Inboxes) == 0 {
			return nil
		}
		after := uint32(0)
		if incremental {
			after = cur.Last
		}
		if !incremental || after < now.Last {
			if out.Entries, err = readEntries(ctx, tx, view, after, 0, nil); err != nil {
				return err
			}
		}
		if len(touched) > 0 {
			out.Replaced = make(map[int64]bool, len(touched))
			for _, c := range touched {
				out.Replaced[c] = true
			}
			if out.Replacements, err = readEntries(ctx, tx, view, 0, cur.Last, touched); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return store.FolderChanges{}, fmt.Errorf("store: listing %s: %w", view.Folder, err)
	}
	return out, nil
}

// entriesQuery is the query of readEntries and its arguments: the entries
// of view with UIDs above after; when convs is not nil, only those of the
// conversations convs up to UID upTo, found from their messages.
func entriesQuery(view store.MailboxView, after, upTo uint32, convs []int64) (string, []any) {
	args := []any{view.Agent, string(view.Folder), int64(after), view.Inboxes, string(store.MarkDeleted), string(store.MarkHidden)}
	only := ""
	if convs != nil {
		only = ` AND e.uid <= $7 AND m.conversation_id = ANY($8)`
		args = append(args, int64(upTo), convs)
	}
	if view.Folder == store.FolderMine {
		only += ` AND e.assignee = $1`
	}
	q := `SELECT e.uid, m.id, m.conversation_id, m.kind, m.sender_role, m.size, m.received, m.hidden_bcc, m.side,
		s.agent IS NOT NULL, d.agent IS NOT NULL, COALESCE(r.reply_to, ''), COALESCE(r.cut, 0),
		COALESCE((SELECT string_agg(k.keyword, ' ') FROM agent_keywords k WHERE k.agent = $1 AND k.message_id = m.id), ''),
		GREATEST(e.modseq, c.modseq, COALESCE(am.modseq, 0), 1)
		FROM folder_entries e
		JOIN messages m ON m.id = e.message_id
		JOIN conversations c ON c.id = m.conversation_id
		LEFT JOIN served_reply_to r ON r.message_id = m.id
		LEFT JOIN seen s ON s.message_id = m.id AND s.agent = $1
		LEFT JOIN agent_modseqs am ON am.agent = $1 AND am.message_id = m.id
		LEFT JOIN entry_marks d ON d.agent = $1 AND d.mark = $5 AND d.folder = e.folder AND d.uid = e.uid
		WHERE e.folder = $2 AND e.uid > $3 AND e.inbox = ANY($4)` + only + `
		AND NOT EXISTS (SELECT 1 FROM entry_marks h WHERE h.agent = $1 AND h.mark = $6 AND h.folder = e.folder AND h.uid = e.uid)
		ORDER BY e.uid`
	return q, args
}

// readEntries reads, in tx, the entries of view with UIDs above after in
// UID order, with their flags; when convs is not nil, only those of the
// conversations convs up to UID upTo.
func readEntries(ctx context.Context, tx pgx.Tx, view store.MailboxView, after, upTo uint32, convs []int64) ([]store.MailboxEntry, error) {
	q, args := entriesQuery(view, after, upTo, convs)
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var entries []store.MailboxEntry
	var withKeywords []int64
	inConvs := map[int64]bool{}
	deleted := map[int]bool{}
	own := map[int][]string{}
	for rows.Next() {
		var e store.MailboxEntry
		var kind, role, bcc, agentKeywords string
		var uid, received int64
		var del bool
		var side int64
		if err := rows.Scan(&uid, &e.Message, &e.Conversation, &kind, &role, &e.Size, &received, &bcc, &side, &e.Seen, &del,
			&e.ReplyTo, &e.ReplyToCut, &agentKeywords, &e.ModSeq); err != nil {
			return nil, err
		}
		e.UID, e.Side = uint32(uid), int(side)
		e.Kind, e.SenderRole, e.Received, e.HiddenBCC = store.Kind(kind), store.SenderRole(role), fromMillis(received), splitList(bcc)
		deleted[len(entries)] = del
		if agentKeywords != "" {
			own[len(entries)] = slices.Sorted(slices.Values(strings.Fields(agentKeywords)))
		}
		if !inConvs[e.Conversation] {
			inConvs[e.Conversation] = true
			withKeywords = append(withKeywords, e.Conversation)
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	kws, err := keywords(ctx, tx, withKeywords)
	if err != nil {
		return nil, err
	}
	replied, err := lastReplies(ctx, tx, withKeywords)
	if err != nil {
		return nil, err
	}
	for i := range entries {
		e := &entries[i]
		e.Flags = append(e.Flags, kws[e.Conversation]...)
		// DESIGN.md §6: answered once a public reply of the team followed
		// it; what the agent's client stored itself is added to that.
		answered := e.Message < replied[e.Conversation]
		if answered {
			e.Flags = append(e.Flags, store.KeywordAnswered)
		}
		for _, k := range own[i] {
			if !answered || !strings.EqualFold(k, store.KeywordAnswered) {
				e.Flags = append(e.Flags, k)
			}
		}
		if deleted[i] {
			e.Flags = append(e.Flags, `\Deleted`)
		}
	}
	return entries, nil
}

// SetSeen implements Store.
func (s *Store) SetSeen(ctx context.Context, agent string, messages []int64, seen bool) error {
	return s.change(ctx, `setting \Seen`, func(tx pgx.Tx, ch *changes) error {
		ch.Agent(agent, "") // \Seen is the agent's own (DESIGN.md §13)
		convs, err := messageConversations(ctx, tx, messages)
		if err != nil {
			return err
		}
		var changed []int64
		if seen {
			changed, err = int64s(ctx, tx, `INSERT INTO seen (agent, message_id) SELECT $1, m FROM unnest($2::bigint[]) AS m
				ON CONFLICT DO NOTHING RETURNING message_id`, agent, messages)
		} else {
			changed, err = int64s(ctx, tx, `DELETE FROM seen WHERE agent = $1 AND message_id = ANY($2) RETURNING message_id`, agent, messages)
		}
		if err != nil {
			return err
		}
		// The counters after the rows (the package comment).
		if err := noteRewrite(ctx, tx, convs); err != nil {
			return err
		}
		return touchAgentMessages(ctx, tx, agent, changed) // modseq.go
	})
}
