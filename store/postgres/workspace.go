package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/supportgate/supportgate/store"
)

// folderState reads what decides a conversation's shared folders.
func folderState(ctx context.Context, tx pgx.Tx, conv int64) (status store.Status, inbox, assignee string, err error) {
	err = tx.QueryRow(ctx, `SELECT status, inbox, assignee FROM conversations WHERE id = $1`, conv).Scan(&status, &inbox, &assignee)
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	return status, inbox, assignee, err
}

// enterFolders gives one new message its entries in the shared folders its
// conversation is in (store/sqlite's folders.go says why only the new
// message needs them).
func enterFolders(ctx context.Context, tx pgx.Tx, conv, msg int64) error {
	if b := batchOf(tx); b != nil { // at the batch's end (batchend.go)
		b.enter = append(b.enter, msg)
		return nil
	}
	status, inbox, assignee, err := folderState(ctx, tx, conv)
	if err != nil {
		return err
	}
	want := store.WantedFolders(status, assignee)
	if len(want) == 0 {
		return nil
	}
	// The counter rows are held from here until COMMIT, and every
	// inbound write on every node waits for them (the package comment,
	// "UIDs"): their statements go in one round trip (a pipeline), in
	// the order of the locks (modseq, then each folder's UID counter),
	// each entry reading the counters its transaction just advanced.
	b := &pgx.Batch{}
	b.Queue(`UPDATE counters SET value = value + 1 WHERE name = 'modseq'`) // modseq.go
	for _, f := range want {
		entryAssignee := ""
		if f == store.FolderMine {
			entryAssignee = assignee
		}
		b.Queue(`WITH u AS (UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value)
			INSERT INTO folder_entries (folder, uid, message_id, inbox, assignee, modseq)
			SELECT $2, u.value, $3, $4, $5, (SELECT value FROM counters WHERE name = 'modseq') FROM u`,
			"uid:"+string(f), string(f), msg, inbox, entryAssignee)
	}
	br := tx.SendBatch(ctx, b)
	for i := range b.Len() {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return err
		}
		if tag.RowsAffected() != 1 {
			br.Close()
			return fmt.Errorf("store: no counter for statement %d of a message's folder entries", i)
		}
	}
	return br.Close()
}

// addFolderEntry gives message msg the next UID of shared folder f, from
// the folder's counter row (committed in order: DESIGN.md §13, "UIDs
// across nodes"). Only Mine entries keep the conversation's assignee.
func addFolderEntry(ctx context.Context, tx pgx.Tx, f store.Folder, msg int64, inbox, assignee string, modSeq int64) error {
	if f != store.FolderMine {
		assignee = ""
	}
	uid, err := bump(ctx, tx, "uid:"+string(f))
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO folder_entries (folder, uid, message_id, inbox, assignee, modseq) VALUES ($1, $2, $3, $4, $5, $6)`,
		string(f), uid, msg, inbox, assignee, modSeq)
	return err
}

// syncFolders keeps a conversation's shared folder entries in step with its
// status and assignee (DESIGN.md §6, §13). A message that enters a folder
// gets the folder's next UID; one that leaves loses its entry, so a UID is
// never reused. The caller holds the conversation's lock.
func syncFolders(ctx context.Context, tx pgx.Tx, conv int64) error {
	status, inbox, assignee, err := folderState(ctx, tx, conv)
	if err != nil {
		return err
	}
	if err := noteRewrite(ctx, tx, []int64{conv}); err != nil { // cursor.go
		return err
	}
	// In a batch the entries are added at its end (batchend.go); the
	// stale ones go now, which takes no shared counter.
	b := batchOf(tx)
	var ms int64
	if b == nil {
		if ms, err = nextModSeq(ctx, tx); err != nil {
			return err
		}
	}
	want := store.WantedFolders(status, assignee)
	names := make([]string, len(want))
	for i, f := range want {
		names[i] = string(f)
	}
	// One statement for every folder, not one each (five round trips a
	// conversation, under its lock): the entries of folders it left, and
	// Mine entries of another assignee.
	if _, err := tx.Exec(ctx, `DELETE FROM folder_entries
		WHERE message_id IN (SELECT id FROM messages WHERE conversation_id = $1)
		AND (NOT folder = ANY($2) OR assignee <> CASE WHEN folder = $3 THEN $4 ELSE '' END)`,
		conv, names, string(store.FolderMine), assignee); err != nil {
		return err
	}
	// The messages that lack an entry in a folder it is in, by folder in
	// the order of WantedFolders (that of the counters' locks), then by
	// message.
	rows, err := tx.Query(ctx, `SELECT m.id, f.name FROM messages m CROSS JOIN unnest($2::text[]) WITH ORDINALITY AS f(name, ord)
		WHERE m.conversation_id = $1 AND m.kind <> $3
		AND NOT EXISTS (SELECT 1 FROM folder_entries e WHERE e.message_id = m.id AND e.folder = f.name)
		ORDER BY f.ord, m.id`, conv, names, string(store.KindNotification))
	if err != nil {
		return err
	}
	type missing struct {
		msg    int64
		folder string
	}
	lacking, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (missing, error) {
		var m missing
		err := row.Scan(&m.msg, &m.folder)
		return m, err
	})
	if err != nil {
		return err
	}
	for _, m := range lacking {
		if b != nil {
			b.enter = append(b.enter, m.msg)
			continue
		}
		if err := addFolderEntry(ctx, tx, store.Folder(m.folder), m.msg, inbox, assignee, ms); err != nil {
			return err
		}
	}
	return nil
}

func setAssignee(ctx context.Context, tx pgx.Tx, conv int64, agent string) error {
	if err := lockConversation(ctx, tx, conv); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE conversations SET assignee = $1 WHERE id = $2`, agent, conv); err != nil {
		return err
	}
	return syncFolders(ctx, tx, conv)
}

// setKeywords adds or removes keywords of a conversation, compared
// case-insensitively (IMAP keywords, RFC 9051 2.3.2).
func setKeywords(ctx context.Context, tx pgx.Tx, conv int64, keywords []string, on bool) error {
	if err := lockConversation(ctx, tx, conv); err != nil {
		return err
	}
	if err := noteRewrite(ctx, tx, []int64{conv}); err != nil {
		return err
	}
	convs := make([]int64, len(keywords))
	for i := range convs {
		convs[i] = conv
	}
	changed, err := changeKeywords(ctx, tx, convs, keywords, on)
	if err != nil || len(changed) == 0 {
		return err
	}
	return touchConversations(ctx, tx, conv) // modseq.go
}

// changeKeywords adds (on) or removes keywords[i] of conversation
// convs[i], for every i in one statement, and returns the conversations
// it changed. An empty keyword is none; removing ignores case.
func changeKeywords(ctx context.Context, tx pgx.Tx, convs []int64, keywords []string, on bool) ([]int64, error) {
	var cs []int64
	var ks []string
	for i, k := range keywords {
		if k != "" {
			cs, ks = append(cs, convs[i]), append(ks, k)
		}
	}
	if len(ks) == 0 {
		return nil, nil
	}
	if on {
		return int64s(ctx, tx, `INSERT INTO conversation_keywords (conversation_id, keyword)
			SELECT c, k FROM unnest($1::bigint[], $2::text[]) AS t(c, k) ON CONFLICT DO NOTHING RETURNING conversation_id`, cs, ks)
	}
	return int64s(ctx, tx, `DELETE FROM conversation_keywords ck USING unnest($1::bigint[], $2::text[]) AS t(c, k)
		WHERE ck.conversation_id = t.c AND lower(ck.keyword) = lower(t.k) RETURNING ck.conversation_id`, cs, ks)
}

// execCount runs a statement and returns how many rows it changed.
func execCount(ctx context.Context, q querier, sql string, args ...any) (int64, error) {
	tag, err := q.Exec(ctx, sql, args...)
	return tag.RowsAffected(), err
}

// keywords returns the keywords of conversations, sorted as SQLite's
// NOCASE collation sorts them.
func keywords(ctx context.Context, q querier, convs []int64) (map[int64][]string, error) {
	out := map[int64][]string{}
	if len(convs) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT conversation_id, keyword FROM conversation_keywords
		WHERE conversation_id = ANY($1) ORDER BY lower(keyword), keyword`, convs)
	if err != nil {
		return nil, fmt.Errorf("store: reading keywords: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c int64
		var k string
		if err := rows.Scan(&c, &k); err != nil {
			return nil, fmt.Errorf("store: reading keywords: %w", err)
		}
		out[c] = append(out[c], k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading keywords: %w", err)
	}
	return out, nil
}

// SetMarks implements WorkspaceStore.
func (s *Store) SetMarks(ctx context.Context, agent string, folder store.Folder, uids []uint32, mark store.Mark, on bool) error {
	return s.change(ctx, "marking entries", func(tx pgx.Tx, ch *changes) error {
		// Marks are the agent's own. They are on one folder kind's
		// entries, but the mod-sequence they advance is the message's in
		// every folder (touchAgentEntries): no Folders.
		ch.Agent(agent, "")
		convs, err := markedConversations(ctx, tx, folder, uids)
		if err != nil {
			return err
		}
		var changed []int64
		if on {
			changed, err = int64s(ctx, tx, `INSERT INTO entry_marks (agent, folder, uid, mark) SELECT $1, $2, u, $3 FROM unnest($4::bigint[]) AS u
				ON CONFLICT DO NOTHING RETURNING uid`, agent, string(folder), string(mark), uidList(uids))
		} else {
			changed, err = int64s(ctx, tx, `DELETE FROM entry_marks WHERE agent = $1 AND folder = $2 AND mark = $3 AND uid = ANY($4) RETURNING uid`,
				agent, string(folder), string(mark), uidList(uids))
		}
		if err != nil {
			return err
		}
		// The counters after the rows (the package comment).
		if err := noteRewrite(ctx, tx, convs); err != nil {
			return err
		}
		l := make([]uint32, len(changed))
		for i, u := range changed {
			l[i] = uint32(u)
		}
		return touchAgentEntries(ctx, tx, agent, folder, l) // modseq.go
	})
}

// ContinuityCandidate implements Store.
func (s *Store) ContinuityCandidate(ctx context.Context, inbox, owner, normSubject string, since time.Time) (int64, bool, error) {
	var conv int64
	err := s.pool.QueryRow(ctx, `SELECT id FROM conversations
		WHERE inbox = $1 AND owner = $2 AND status = $3 AND norm_subject = $4 AND updated >= $5
		ORDER BY updated DESC, id DESC LIMIT 1`, inbox, owner, string(store.StatusOpen), normSubject, millis(since)).Scan(&conv)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: continuity lookup: %w", err)
	}
	return conv, true, nil
}

// setStatus changes a conversation's status and keeps the shared folders in
// step (syncFolders): one that opens again enters INBOX with new UIDs, as
// if its messages had just arrived (DESIGN.md §13).
func setStatus(ctx context.Context, tx pgx.Tx, conv int64, status store.Status) error {
	// A status that is none would leave the conversation in no folder.
	if !slices.Contains([]store.Status{store.StatusOpen, store.StatusClosed, store.StatusSpam}, status) {
		return fmt.Errorf("a conversation cannot be %q", status)
	}
	var old string
	err := tx.QueryRow(ctx, `SELECT status FROM conversations WHERE id = $1 FOR NO KEY UPDATE`, conv).Scan(&old)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil || store.Status(old) == status {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE conversations SET status = $1 WHERE id = $2`, string(status), conv); err != nil {
		return err
	}
	return syncFolders(ctx, tx, conv)
}
