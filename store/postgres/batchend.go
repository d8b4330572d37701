package postgres

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/supportgate/supportgate/store"
)

// Shared counters at a batch's end.
//
// Every write that changes folder entries takes counter rows that all
// writers on all nodes share (the package comment, "UIDs"): the rewrite
// log's sequence (noteRewrite), modseq (touchConversations) and each shared
// folder's UID counter (enterFolders, syncFolders). Each stays locked until
// COMMIT. A change of many conversations at once (UpdateConversations:
// an IMAP STORE, MOVE or EXPUNGE over a range) took them at its first
// conversation and then made ten or more round trips for each of the
// others, an event message each included, while every other write, inbound
// mail too, waited for it: under imaptest's stress on the shared INBOX,
// supportgate answered 0.39 of Dovecot's commands a second (issue 18).
//
// A batch's transaction is a batchTx: those three writes are recorded as
// the batch goes and made by finish, its last writes, in the order of the
// locks (rewrites, modseq, the folders' UIDs), so that the counters are
// held for a few round trips and the commit. What a message's entries are
// is decided then too, from its conversation as the batch leaves it: an
// entry is added only if the message has none in that folder, so a
// conversation changed twice in one batch gets each entry once.

// batchTx is a transaction whose shared-counter writes wait for finish.
type batchTx struct {
	pgx.Tx
	// locked are the conversations whose rows the batch locked first
	// (lockConversation need not lock them again).
	locked map[int64]bool
	// rewrite: noteRewrite was called, for rewrites (0: any).
	rewrite  bool
	rewrites []int64
	// touched are touchConversations' conversations.
	touched []int64
	// enter are messages that may need folder entries, as their
	// conversation is in at the end (enterFolders, syncFolders).
	enter []int64
}

// batchOf returns tx as a batch, nil when its writes are made at once.
func batchOf(tx pgx.Tx) *batchTx {
	b, _ := tx.(*batchTx)
	return b
}

// finish makes the writes the batch left to its end: first what the new
// entries are (a read, which takes no counter), then every counter write
// in one pipelined round trip, in the order of the locks: the rewrite
// log's number, modseq for the keywords' conversations, modseq for the
// entries, each folder's UIDs.
func (b *batchTx) finish(ctx context.Context) error {
	entries, err := lackingEntries(ctx, b.Tx, b.enter)
	if err != nil {
		return err
	}
	batch := &pgx.Batch{}
	var rewrite *int64
	if b.rewrite {
		rewrite = new(int64)
		batch.Queue(rewriteStatement, rewriteConversations(b.rewrites)).QueryRow(func(row pgx.Row) error { return row.Scan(rewrite) })
	}
	if touched := slices.Compact(slices.Sorted(slices.Values(b.touched))); len(touched) > 0 {
		batch.Queue(touchStatement, touched)
	}
	if len(entries) > 0 {
		batch.Queue(`UPDATE counters SET value = value + 1 WHERE name = 'modseq'`) // modseq.go
		for _, e := range entries {
			batch.Queue(`WITH u AS (UPDATE counters SET value = value + 1 WHERE name = $1
					AND NOT EXISTS (SELECT 1 FROM folder_entries WHERE folder = $2 AND message_id = $3) RETURNING value)
				INSERT INTO folder_entries (folder, uid, message_id, inbox, assignee, modseq)
				SELECT $2, u.value, $3, $4, $5, (SELECT value FROM counters WHERE name = 'modseq') FROM u`,
				"uid:"+string(e.folder), string(e.folder), e.msg, e.inbox, e.assignee)
		}
	}
	if batch.Len() == 0 {
		return nil
	}
	if err := b.Tx.SendBatch(ctx, batch).Close(); err != nil {
		return err
	}
	if rewrite != nil {
		return pruneRewrites(ctx, b.Tx, *rewrite)
	}
	return nil
}

// newEntry is a folder entry a batch adds at its end.
type newEntry struct {
	folder          store.Folder
	msg             int64
	inbox, assignee string
}

// lackingEntries returns the entries the messages msgs need in the shared
// folders their conversations are in now, by folder in the order of the
// counters' locks, then by message; the pipeline adds only those still
// missing (a conversation changed twice in a batch is read once here).
func lackingEntries(ctx context.Context, tx pgx.Tx, msgs []int64) ([]newEntry, error) {
	msgs = slices.Compact(slices.Sorted(slices.Values(msgs)))
	if len(msgs) == 0 {
		return nil, nil
	}
	byFolder := map[store.Folder][]newEntry{}
	rows, err := tx.Query(ctx, `SELECT m.id, c.status, c.inbox, c.assignee FROM messages m
		JOIN conversations c ON c.id = m.conversation_id
		WHERE m.id = ANY($1) AND m.kind <> $2 ORDER BY m.id`, msgs, string(store.KindNotification))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var msg int64
		var status store.Status
		var inbox, assignee string
		if err := rows.Scan(&msg, &status, &inbox, &assignee); err != nil {
			return nil, err
		}
		for _, f := range store.WantedFolders(status, assignee) {
			e := newEntry{folder: f, msg: msg, inbox: inbox}
			if f == store.FolderMine {
				e.assignee = assignee
			}
			byFolder[f] = append(byFolder[f], e)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []newEntry
	for _, f := range store.SharedFolders() {
		out = append(out, byFolder[f]...)
	}
	return out, nil
}
