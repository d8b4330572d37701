package postgres

import (
	"context"
	"fmt"
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

// finish makes the writes the batch left to its end, in the lock order.
func (b *batchTx) finish(ctx context.Context) error {
	if b.rewrite {
		if err := noteRewrite(ctx, b.Tx, b.rewrites); err != nil {
			return err
		}
	}
	if touched := slices.Compact(slices.Sorted(slices.Values(b.touched))); len(touched) > 0 {
		if err := touchConversations(ctx, b.Tx, touched...); err != nil {
			return err
		}
	}
	return enterAll(ctx, b.Tx, b.enter)
}

// enterAll gives the messages msgs the entries they lack in the shared
// folders their conversations are in now: one read, then one pipelined
// round trip that takes modseq and the folders' UID counters in the lock
// order (enterFolders says why in one).
func enterAll(ctx context.Context, tx pgx.Tx, msgs []int64) error {
	msgs = slices.Compact(slices.Sorted(slices.Values(msgs)))
	if len(msgs) == 0 {
		return nil
	}
	type entry struct {
		msg             int64
		inbox, assignee string
	}
	byFolder := map[store.Folder][]entry{}
	rows, err := tx.Query(ctx, `SELECT m.id, c.status, c.inbox, c.assignee FROM messages m
		JOIN conversations c ON c.id = m.conversation_id
		WHERE m.id = ANY($1) AND m.kind <> $2 ORDER BY m.id`, msgs, string(store.KindNotification))
	if err != nil {
		return err
	}
	for rows.Next() {
		var msg int64
		var status store.Status
		var inbox, assignee string
		if err := rows.Scan(&msg, &status, &inbox, &assignee); err != nil {
			rows.Close()
			return err
		}
		for _, f := range store.WantedFolders(status, assignee) {
			e := entry{msg: msg, inbox: inbox}
			if f == store.FolderMine {
				e.assignee = assignee
			}
			byFolder[f] = append(byFolder[f], e)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE counters SET value = value + 1 WHERE name = 'modseq'`) // modseq.go
	for _, f := range store.SharedFolders() {
		for _, e := range byFolder[f] {
			b.Queue(`WITH u AS (UPDATE counters SET value = value + 1 WHERE name = $1
					AND NOT EXISTS (SELECT 1 FROM folder_entries WHERE folder = $2 AND message_id = $3) RETURNING value)
				INSERT INTO folder_entries (folder, uid, message_id, inbox, assignee, modseq)
				SELECT $2, u.value, $3, $4, $5, (SELECT value FROM counters WHERE name = 'modseq') FROM u`,
				"uid:"+string(f), string(f), e.msg, e.inbox, e.assignee)
		}
	}
	br := tx.SendBatch(ctx, b)
	for i := range b.Len() {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return err
		}
		if i == 0 && tag.RowsAffected() != 1 {
			br.Close()
			return fmt.Errorf("store: no modseq counter")
		}
	}
	return br.Close()
}
