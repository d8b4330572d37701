package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"

	"github.com/supportgate/supportgate/store"
)

// Reading a folder again without reading all of it (issue 8).
//
// An IMAP session's picture of a shared folder must be brought up to date
// at every committed change. Under inbound load almost every change only
// adds entries: a new message gets the next UIDs of the folders its
// conversation is in (enterFolders), and nothing about the entries already
// there changes. Reading the whole folder again for each of them made the
// cost of a new message grow with the folder (1,000,000 messages: a full
// read per message).
//
// Every write that changes what an existing entry looks like, or whether it
// is there at all, advances the "rewrites" sequence in its own transaction
// (noteRewrite): a status or assignee change (syncFolders), keywords,
// \Seen, per-agent marks. A reader records, in the read transaction that
// reads the entries, the folder's last UID and that counter (FolderCursor).
// If the counter is unchanged at the next read, nothing but new entries was
// committed in between, and UIDs are given in commit order by the single
// writer, so the entries above the last UID are exactly what was added: the
// new picture is the old one followed by them, which is what a full read
// gives.
//
// A rewrite also records, in the same transaction, the conversations whose
// entries it changed (rewrite_log, one row per conversation, keyed by the
// counter's new value). Everything an entry shows comes from its
// conversation (status, keywords, the folders it is in) or from its message
// (\Seen) or its own UID (marks), and a message never changes conversation,
// so the entries of the conversations not named are as they were. When the
// log since the cursor names only a few conversations, a reader re-reads
// only their entries at or below the cursor's last UID (FolderChanges), not
// the folder. A rewrite that cannot name its conversations logs
// conversation 0, "everything", and the readers read everything, as they do
// when the log rows they need were pruned.
//
// A write added later that changes existing entries must call noteRewrite
// with every conversation whose entries it changes, or readers will miss
// it: TestIncrementalMatchesFull (gateway/imapgw) compares incremental and
// full reads after random sequences of writes.

// rewritesSequence counts the commits that changed existing folder entries.
const rewritesSequence = "rewrites"

// rewriteLogFloor is a sequence: the log rows of rewrites up to its value
// may have been pruned (or never written, before migration 9).
const rewriteLogFloor = "rewrite_log_floor"

// rewriteLogSchema is migration 9: the conversations each rewrite changed.
// It may run again on a database that has it (a test forgets the later
// migrations and reopens), so it creates nothing twice; the rewrites before
// it were not logged, so they are below the floor (a new database has
// none, and no floor: 0).
const rewriteLogSchema = `CREATE TABLE IF NOT EXISTS rewrite_log (
		seq INTEGER NOT NULL,
		conversation_id INTEGER NOT NULL,
		PRIMARY KEY (seq, conversation_id)
	) WITHOUT ROWID;
	INSERT INTO sequences (name, value)
		SELECT 'rewrite_log_floor', value FROM sequences WHERE name = 'rewrites'
		ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)`

const (
	// maxPatchConversations is the most conversations a reader re-reads
	// instead of the whole folder; a rewrite that changes more logs
	// "everything".
	maxPatchConversations = 1000
	// keepRows is about how many log rows are kept, those of the last
	// rewrites; a reader whose cursor is older than the oldest kept reads
	// everything. Pruned every pruneEvery rewrites.
	keepRows   = 16384
	pruneEvery = 256
)

// allConversations, given to noteRewrite, is a rewrite that cannot name the
// conversations it changes: every reader reads everything.
var allConversations = []int64{0}

// noteRewrite records in tx that the existing folder entries of the
// conversations convs change (allConversations: any; none: nothing a
// reader holds).
func noteRewrite(ctx context.Context, tx *sql.Tx, convs []int64) error {
	seq, err := nextval(ctx, tx, rewritesSequence)
	if err != nil {
		return err
	}
	convs = slices.Compact(slices.Sorted(slices.Values(convs)))
	if len(convs) > maxPatchConversations || slices.Contains(convs, 0) {
		convs = allConversations
	}
	for _, c := range convs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO rewrite_log (seq, conversation_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, seq, c); err != nil {
			return err
		}
	}
	if seq%pruneEvery == 0 {
		var floor int64
		err := tx.QueryRowContext(ctx, `SELECT seq FROM rewrite_log ORDER BY seq DESC LIMIT 1 OFFSET ?`, keepRows).Scan(&floor)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM rewrite_log WHERE seq <= ?`, floor); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sequences (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)`, rewriteLogFloor, floor); err != nil {
			return err
		}
	}
	return nil
}

// rewrittenSince returns the conversations the rewrites after seq changed,
// in the read transaction tx, and false when a reader at seq must read
// everything: a rewrite logged "everything", more than
// maxPatchConversations conversations, or log rows pruned (floor > seq).
func rewrittenSince(ctx context.Context, tx *sql.Tx, seq, floor int64) ([]int64, bool, error) {
	if floor > seq {
		return nil, false, nil
	}
	// No ORDER BY: the read stops at the first conversation too many.
	convs, err := int64s(ctx, tx, `SELECT DISTINCT conversation_id FROM rewrite_log WHERE seq > ? LIMIT ?`,
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
// uids of folder change, for noteRewrite: a UID with no entry is either
// gone for good (UIDs are never reused) or not given yet, and then its
// entry is new to every reader when it comes, with the mark.
func markedConversations(ctx context.Context, tx *sql.Tx, folder store.Folder, uids []uint32) ([]int64, error) {
	if len(uids) > maxPatchConversations {
		return allConversations, nil
	}
	var convs []int64
	for _, uid := range uids {
		var c int64
		err := tx.QueryRowContext(ctx, `SELECT m.conversation_id FROM folder_entries e JOIN messages m ON m.id = e.message_id
			WHERE e.folder = ? AND e.uid = ?`, folder, uid).Scan(&c)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, err
		default:
			convs = append(convs, c)
		}
	}
	return convs, nil
}

// messageConversations returns the conversations of messages, for
// noteRewrite.
func messageConversations(ctx context.Context, tx *sql.Tx, messages []int64) ([]int64, error) {
	if len(messages) > maxPatchConversations {
		return allConversations, nil
	}
	var convs []int64
	err := byIDs(ctx, tx, `SELECT DISTINCT conversation_id FROM messages WHERE id IN (%s)`, messages, func(rows *sql.Rows) error {
		var c int64
		if err := rows.Scan(&c); err != nil {
			return err
		}
		convs = append(convs, c)
		return nil
	})
	return convs, err
}

var _ store.IncrementalEntries = (*Store)(nil)
