package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/supportgate/supportgate/store"
)

// UIDValidity implements Store.
func (s *Store) UIDValidity(ctx context.Context, view store.MailboxView) (uint32, error) {
	scope := store.ScopeKey(view.Inboxes)
	key := string(view.Folder)
	if view.Name != "" {
		key = view.Name
	}
	var v int64
	var have string
	err := s.read.QueryRowContext(ctx, `SELECT uidvalidity, scope FROM mailbox_state WHERE agent = ? AND folder = ?`,
		view.Agent, key).Scan(&v, &have)
	if err == nil && have == scope {
		return uint32(v), nil
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("store: reading UIDVALIDITY: %w", err)
	}
	// New, or the visible inboxes changed: a new UIDVALIDITY, never smaller
	// than the old one, so clients drop their caches (RFC 9051 2.3.1.1).
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var old int64
		err := tx.QueryRowContext(ctx, `SELECT uidvalidity, scope FROM mailbox_state WHERE agent = ? AND folder = ?`,
			view.Agent, key).Scan(&old, &have)
		switch {
		case err == nil && have == scope:
			v = old
			return nil
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		v = max(time.Now().Unix()&0x7fffffff, old+1)
		_, err = tx.ExecContext(ctx, `INSERT INTO mailbox_state (agent, folder, uidvalidity, scope) VALUES (?, ?, ?, ?)
			ON CONFLICT (agent, folder) DO UPDATE SET uidvalidity = excluded.uidvalidity, scope = excluded.scope`,
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

// EntriesSince implements IncrementalEntries (sqlite_cursor.go).
func (s *Store) EntriesSince(ctx context.Context, view store.MailboxView, cur store.FolderCursor) ([]store.MailboxEntry, uint32, store.FolderCursor, bool, error) {
	c, err := s.entryChanges(ctx, view, cur, false)
	if err != nil {
		return nil, 0, store.FolderCursor{}, false, err
	}
	return c.Entries, c.UIDNext, c.Cursor, !c.Full, nil
}

// EntryChanges implements IncrementalEntries (sqlite_cursor.go).
func (s *Store) EntryChanges(ctx context.Context, view store.MailboxView, cur store.FolderCursor) (store.FolderChanges, error) {
	return s.entryChanges(ctx, view, cur, true)
}

// entryChanges reads a view since cur, replacing conversations only when
// patch: one read transaction sees the folder's last UID, the rewrites
// counter, the rewrite log and the entries together, so the cursor it
// returns describes exactly what was read.
func (s *Store) entryChanges(ctx context.Context, view store.MailboxView, cur store.FolderCursor, patch bool) (store.FolderChanges, error) {
	fail := func(err error) (store.FolderChanges, error) {
		return store.FolderChanges{}, fmt.Errorf("store: listing %s: %w", view.Folder, err)
	}
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	state, err := readSequences(ctx, tx, view.Folder)
	if err != nil {
		return fail(err)
	}
	next, rewrites, floor, modSeq := state.next, state.rewrites, state.floor, state.modSeq
	now := store.FolderCursor{Last: uint32(next), Version: rewrites, Valid: true}
	out := store.FolderChanges{UIDNext: uint32(next + 1), Cursor: now, HighestModSeq: max(modSeq, 1)}
	// Only new entries when nothing but new entries was committed since
	// cur was read: every entry above cur.Last is new, every one at or
	// below it is as it was (sqlite_cursor.go). Or, when patch, new
	// entries and those of the few conversations rewritten since.
	incremental := cur.Valid && cur.Last <= now.Last && cur.Version <= rewrites
	var touched []int64
	if incremental && cur.Version != rewrites {
		incremental = false
		if patch {
			if touched, incremental, err = rewrittenSince(ctx, tx, cur.Version, floor); err != nil {
				return fail(err)
			}
		}
	}
	out.Full = !incremental
	if len(view.Inboxes) == 0 {
		return out, nil
	}
	after := uint32(0)
	if incremental {
		after = cur.Last
	}
	switch {
	case !incremental:
		if out.Entries, err = s.readWhole(ctx, tx, view, state); err != nil {
			return fail(err)
		}
	case after < now.Last:
		if out.Entries, err = readEntries(ctx, tx, view, after, 0, nil, 0); err != nil {
			return fail(err)
		}
	}
	if len(touched) > 0 {
		out.Replaced = make(map[int64]bool, len(touched))
		for _, c := range touched {
			out.Replaced[c] = true
		}
		if out.Replacements, err = readEntries(ctx, tx, view, 0, cur.Last, touched, 0); err != nil {
			return fail(err)
		}
	}
	return out, nil
}

// messageSummarySchema is a covering index of what readEntries reads of
// each message. A messages row holds the message's bytes (4 KiB and more),
// and sender_role and side, added after raw, are stored after them: a
// folder read by rowid touched at least a page per message and walked the
// overflow pages of every large one, 2.8 s of mostly I/O for 300,000
// entries. From this index the same read takes 0.6 s (issue 18, SELECT of
// a large folder). It costs about 60 bytes a message, and building it on an
// existing store reads every message once, at the upgrade.
const messageSummarySchema = `CREATE INDEX IF NOT EXISTS messages_summary
	ON messages(id, conversation_id, kind, sender_role, size, received, hidden_bcc, side)`

// entriesQuery is the query of readEntries and its arguments: the entries
// of view with UIDs above after, and up to upTo when it is not 0; when
// convs is not nil, only those of the conversations convs up to UID upTo
// (0: none), found from their messages
// (messages_conversation, folder_entries_message) whatever the size of the
// folder (TestEntryChangesReadsOnlyTouched checks the plan).
func entriesQuery(view store.MailboxView, after, upTo uint32, convs []int64) (string, []any) {
	from := `folder_entries e
		JOIN messages m INDEXED BY messages_summary ON m.id = e.message_id`
	args := []any{view.Agent} // the agent's own keywords, in the select list
	only := ""
	if convs != nil {
		// CROSS JOIN: SQLite keeps this order, messages first; and each
		// message's entry by its index, not by a range of the folder's
		// UIDs, which the planner may prefer.
		from = `messages m
		CROSS JOIN folder_entries e INDEXED BY folder_entries_message ON e.message_id = m.id AND e.folder = ?`
		args = append(args, view.Folder)
		only = " AND m.conversation_id IN (?" + strings.Repeat(", ?", len(convs)-1) + ")"
	}
	if upTo > 0 || convs != nil {
		only = " AND e.uid <= ?" + only
	}
	args = append(args, view.Agent, view.Agent, view.Agent, store.MarkDeleted, view.Folder, after)
	for _, in := range view.Inboxes {
		args = append(args, in)
	}
	if upTo > 0 || convs != nil {
		args = append(args, upTo)
	}
	if convs != nil {
		for _, c := range convs {
			args = append(args, c)
		}
	}
	mine := ""
	if view.Folder == store.FolderMine {
		mine = " AND e.assignee = ?"
		args = append(args, view.Agent)
	}
	args = append(args, view.Agent, store.MarkHidden)
	q := `SELECT e.uid, m.id, m.conversation_id, m.kind, m.sender_role, m.size, m.received, m.hidden_bcc, m.side,
		s.agent IS NOT NULL, d.agent IS NOT NULL, COALESCE(r.reply_to, ''), COALESCE(r.cut, 0),
		COALESCE((SELECT group_concat(k.keyword, ' ') FROM agent_keywords k WHERE k.agent = ? AND k.message_id = m.id), ''),
		MAX(e.modseq, c.modseq, COALESCE(am.modseq, 0), 1)
		FROM ` + from + `
		JOIN conversations c ON c.id = m.conversation_id
		LEFT JOIN served_reply_to r ON r.message_id = m.id
		LEFT JOIN seen s ON s.message_id = m.id AND s.agent = ?
		LEFT JOIN agent_modseqs am ON am.agent = ? AND am.message_id = m.id
		LEFT JOIN entry_marks d ON d.agent = ? AND d.mark = ? AND d.folder = e.folder AND d.uid = e.uid
		WHERE e.folder = ? AND e.uid > ? AND e.inbox IN (?` + strings.Repeat(", ?", len(view.Inboxes)-1) + `)` + only + mine + `
		AND NOT EXISTS (SELECT 1 FROM entry_marks h WHERE h.agent = ? AND h.mark = ? AND h.folder = e.folder AND h.uid = e.uid)
		ORDER BY e.uid`
	return q, args
}

// readEntries reads, in tx, the entries of view with UIDs above after (and
// up to upTo when it is not 0) in UID order, with their flags; when convs
// is not nil (at most maxPatchConversations of them), only those of the
// conversations convs up to UID upTo. capacity is how many are expected.
func readEntries(ctx context.Context, tx *sql.Tx, view store.MailboxView, after, upTo uint32, convs []int64, capacity int) ([]store.MailboxEntry, error) {
	q, args := entriesQuery(view, after, upTo, convs)
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	// capacity: growing the slice of a whole folder by appending copied
	// its entries about twice over, a seventh of the read at 300,000.
	entries := make([]store.MailboxEntry, 0, capacity)
	var withKeywords []int64
	inConvs := map[int64]bool{}
	deleted := map[int]bool{}
	own := map[int][]string{}
	for rows.Next() {
		var e store.MailboxEntry
		var kind, role, bcc, agentKeywords string
		var received int64
		var del bool
		if err := rows.Scan(&e.UID, &e.Message, &e.Conversation, &kind, &role, &e.Size, &received, &bcc, &e.Side, &e.Seen, &del,
			&e.ReplyTo, &e.ReplyToCut, &agentKeywords, &e.ModSeq); err != nil {
			return nil, err
		}
		e.Kind, e.SenderRole, e.Received, e.HiddenBCC = store.Kind(kind), store.SenderRole(role), fromMillis(received), splitList(bcc)
		if del {
			deleted[len(entries)] = true
		}
		if agentKeywords != "" {
			own[len(entries)] = slices.Sorted(slices.Values(strings.Fields(agentKeywords)))
		}
		if !inConvs[e.Conversation] { // a map: slices.Contains made the folder quadratic
			inConvs[e.Conversation] = true
			withKeywords = append(withKeywords, e.Conversation)
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, nil // none, as before capacity: not an empty slice
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

// countEntries counts the entries of view, hidden ones included (an upper
// bound of what readEntries returns), from the folder_entries_inbox index.
func countEntries(ctx context.Context, tx *sql.Tx, view store.MailboxView) (int, error) {
	args := []any{view.Folder}
	for _, in := range view.Inboxes {
		args = append(args, in)
	}
	mine := ""
	if view.Folder == store.FolderMine {
		mine = " AND assignee = ?"
		args = append(args, view.Agent)
	}
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM folder_entries WHERE folder = ? AND inbox IN (?`+
		strings.Repeat(", ?", len(view.Inboxes)-1)+`)`+mine, args...).Scan(&n)
	return n, err
}

// SetSeen implements Store.
func (s *Store) SetSeen(ctx context.Context, agent string, messages []int64, seen bool) error {
	err := s.commit(ctx, func(tx *sql.Tx, ch *changes) error {
		ch.Agent(agent, "") // \Seen is the agent's own (DESIGN.md §13)
		convs, err := messageConversations(ctx, tx, messages)
		if err != nil {
			return err
		}
		if err := noteRewrite(ctx, tx, convs); err != nil {
			return err
		}
		var changed []int64
		for _, m := range messages {
			var res sql.Result
			var err error
			if seen {
				res, err = tx.ExecContext(ctx, `INSERT INTO seen (agent, message_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, agent, m)
			} else {
				res, err = tx.ExecContext(ctx, `DELETE FROM seen WHERE agent = ? AND message_id = ?`, agent, m)
			}
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				changed = append(changed, m)
			}
		}
		return touchAgentMessages(ctx, tx, agent, changed) // sqlite_modseq.go
	})
	if err != nil {
		return fmt.Errorf("store: setting \\Seen: %w", err)
	}
	return nil
}
