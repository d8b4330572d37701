package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/supportgate/supportgate/store"
)

// Mod-sequences (RFC 7162 3.1): store/sqlite's modseq.go explains where
// they are recorded. The global counter is the "modseq" counter row, so
// that mod-sequences are committed in order: a client that saw
// HIGHESTMODSEQ n never misses a change numbered below it that commits
// later.

// nextModSeq advances the mod-sequence counter in tx and returns its new
// value, for everything the transaction changes.
func nextModSeq(ctx context.Context, tx pgx.Tx) (int64, error) {
	return bump(ctx, tx, "modseq")
}

// touchConversations records in tx that what every agent sees of the
// flags of the conversations' messages changed (keywords, \Answered).
func touchConversations(ctx context.Context, tx pgx.Tx, convs ...int64) error {
	if len(convs) == 0 {
		return nil
	}
	if b := batchOf(tx); b != nil { // at the batch's end (batchend.go)
		b.touched = append(b.touched, convs...)
		return nil
	}
	_, err := tx.Exec(ctx, touchStatement, convs)
	return err
}

// touchStatement gives the conversations $1 the next modseq, in one round
// trip.
const touchStatement = `WITH m AS (UPDATE counters SET value = value + 1 WHERE name = 'modseq' RETURNING value)
	UPDATE conversations SET modseq = m.value FROM m WHERE id = ANY($1)`

// touchAgentMessages records in tx that what agent sees of the flags of
// messages changed (\Seen, own keywords, marks).
func touchAgentMessages(ctx context.Context, tx pgx.Tx, agent string, messages []int64) error {
	if len(messages) == 0 {
		return nil
	}
	ms, err := nextModSeq(ctx, tx)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO agent_modseqs (agent, message_id, modseq) SELECT $1, m, $2 FROM unnest($3::bigint[]) AS m
		ON CONFLICT (agent, message_id) DO UPDATE SET modseq = excluded.modseq`, agent, ms, distinct(messages))
	return err
}

// touchAgentEntries is touchAgentMessages for the messages of entries of a
// shared folder (a UID with no entry is skipped: gone, or not given yet).
func touchAgentEntries(ctx context.Context, tx pgx.Tx, agent string, folder store.Folder, uids []uint32) error {
	if len(uids) == 0 {
		return nil
	}
	ms, err := nextModSeq(ctx, tx)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO agent_modseqs (agent, message_id, modseq)
		SELECT DISTINCT $1, message_id, $2::bigint FROM folder_entries WHERE folder = $3 AND uid = ANY($4)
		ON CONFLICT (agent, message_id) DO UPDATE SET modseq = excluded.modseq`, agent, ms, string(folder), uidList(uids))
	return err
}

// readModSeq reads the mod-sequence counter: a view's HIGHESTMODSEQ.
func readModSeq(ctx context.Context, q querier) (int64, error) {
	var v int64
	err := q.QueryRow(ctx, `SELECT COALESCE((SELECT value FROM counters WHERE name = 'modseq'), 1)`).Scan(&v)
	return max(v, 1), err
}

// distinct returns l without repeated values (an upsert may not touch a
// row twice).
func distinct(l []int64) []int64 {
	seen := make(map[int64]bool, len(l))
	var out []int64
	for _, v := range l {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
