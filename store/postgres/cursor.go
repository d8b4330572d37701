package postgres

import (
	"context"
	"errors"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/supportgate/supportgate/store"
)

// Reading a folder again without reading all of it: store/sqlite's
// cursor.go explains the scheme, which is the same here. Every write that
// changes what an existing entry looks like, or whether it is there,
// advances the "rewrites" counter in its own transaction (noteRewrite) and
// logs the conversations it changed under the counter's new value; a
// reader's FolderCursor holds the folder's last UID and that counter, read
// in the snapshot that read the entries. Both counters are committed in
// order (counter rows, see the package comment), so with the counter
// unchanged the entries above the last UID are exactly what was added,
// whichever node added them.

const (
	// maxPatchConversations is the most conversations a reader re-reads
	// instead of the whole folder; a rewrite that changes more logs
	// "everything".
	maxPatchConversations = 1000
	// keepRows is about how many log rows are kept; pruned every
	// pruneEvery rewrites.
	keepRows   = 16384
	pruneEvery = 256
)

// noteRewrite records in tx that the existing folder entries of the
// conversations convs change (conversation 0: any; none: nothing a reader
// holds).
func noteRewrite(ctx context.Context, tx pgx.Tx, convs []int64) error {
	if b := batchOf(tx); b != nil { // at the batch's end (batchend.go)
		b.rewrite, b.rewrites = true, append(b.rewrites, convs...)
		return nil
	}
	var seq int64
	if err := tx.QueryRow(ctx, rewriteStatement, rewriteConversations(convs)).Scan(&seq); err != nil {
		return err
	}
	return pruneRewrites(ctx, tx, seq)
}

// rewriteStatement takes the next rewrite number and logs it for the
// conversations $1 (rewriteConversations), in one round trip, and returns
// the number.
const rewriteStatement = `WITH s AS (UPDATE counters SET value = value + 1 WHERE name = 'rewrites' RETURNING value),
	logged AS (INSERT INTO rewrite_log (seq, conversation_id) SELECT s.value, c FROM s, unnest($1::bigint[]) AS c ON CONFLICT DO NOTHING)
	SELECT value FROM s`

// rewriteConversations is what the rewrite log records of convs: each
// once, or 0 (any) for more than a reader patches.
func rewriteConversations(convs []int64) []int64 {
	convs = slices.Compact(slices.Sorted(slices.Values(convs)))
	if len(convs) > maxPatchConversations || slices.Contains(convs, 0) {
		return []int64{0}
	}
	return convs
}

// pruneRewrites drops old rows of the rewrite log every pruneEvery
// rewrites, seq being the one just taken.
func pruneRewrites(ctx context.Context, tx pgx.Tx, seq int64) error {
	if seq%pruneEvery != 0 {
		return nil
	}
	var floor int64
	err := tx.QueryRow(ctx, `SELECT seq FROM rewrite_log ORDER BY seq DESC LIMIT 1 OFFSET $1`, keepRows).Scan(&floor)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM rewrite_log WHERE seq <= $1`, floor); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE counters SET value = GREATEST(value, $1) WHERE name = 'rewrite_log_floor'`, floor)
	return err
}

// rewrittenSince returns the conversations the rewrites after seq changed,
// in the read transaction tx, and false when a reader at seq must read
// everything: a rewrite logged "everything", more than
// maxPatchConversations conversations, or log rows pruned (floor > seq).
func rewrittenSince(ctx context.Context, tx pgx.Tx, seq, floor int64) ([]int64, bool, error) {
	if floor > seq {
		return nil, false, nil
	}
	convs, err := int64s(ctx, tx, `SELECT DISTINCT conversation_id FROM rewrite_log WHERE seq > $1 LIMIT $2`,
		seq, maxPatchConversations+1)
	if err != nil {
		return nil, false, err
	}
	if len(convs) > maxPatchConversations || slices.Contains(convs, 0) {
		return nil, false, nil
	}
	return convs, true, nil
}

// markedConversations returns the conversations whose entries marks on
// uids of folder change, for noteRewrite.
func markedConversations(ctx context.Context, tx pgx.Tx, folder store.Folder, uids []uint32) ([]int64, error) {
	if len(uids) > maxPatchConversations {
		return []int64{0}, nil
	}
	return int64s(ctx, tx, `SELECT DISTINCT m.conversation_id FROM folder_entries e JOIN messages m ON m.id = e.message_id
		WHERE e.folder = $1 AND e.uid = ANY($2)`, string(folder), uidList(uids))
}

// messageConversations returns the conversations of messages, for
// noteRewrite.
func messageConversations(ctx context.Context, tx pgx.Tx, messages []int64) ([]int64, error) {
	if len(messages) > maxPatchConversations {
		return []int64{0}, nil
	}
	return int64s(ctx, tx, `SELECT DISTINCT conversation_id FROM messages WHERE id = ANY($1)`, messages)
}

// uidList converts UIDs for a bigint[] parameter.
func uidList(uids []uint32) []int64 {
	l := make([]int64, len(uids))
	for i, u := range uids {
		l[i] = int64(u)
	}
	return l
}
