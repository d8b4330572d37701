package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"github.com/supportgate/supportgate/store"
)

// Mod-sequences (RFC 7162 3.1, issue 12).
//
// A message's mod-sequence as an agent sees it must grow whenever anything
// that agent sees of its flags changes, and when it enters a folder, and
// never decrease. Keeping one per agent and message would be a row for
// every agent × message; instead there is one global counter, the
// "modseq" sequence, advanced by every transaction that changes flags or
// folder entries, and its new value is recorded on what changed, at the
// granularity of the change:
//
//   - conversations.modseq: the conversation's keywords (\Flagged, tags)
//     and its computed \Answered (a public reply was added);
//   - agent_modseqs (agent, message): the agent's \Seen, own keywords and
//     \Deleted or hidden marks, sparse like seen;
//   - folder_entries.modseq: the entry's creation (the message entered the
//     folder, with a new UID);
//   - private_messages.modseq: a private message's filing and every change
//     of its flags.
//
// An entry's mod-sequence is the largest of those that apply (at least 1:
// rows from before migration 14 have 0), and a view's HIGHESTMODSEQ is the
// counter itself, read in the transaction that reads the entries: it is at
// least every entry's, and it also grows when entries leave a folder (an
// expunge), so a client that cached it always notices a change. The
// counter is 1 until its first use (no row), so every recorded value is
// above the floor of old rows.
//
// Every write that changes flags also notes a rewrite (sqlite_cursor.go),
// so that sessions re-read the entries whose mod-sequence changed.

// modSeqSequence is the global mod-sequence counter.
const modSeqSequence = "modseq"

// modSeqSchema is migration 14: where mod-sequences are recorded. Like
// every migration since 8 it can run again: an ADD COLUMN of a column
// that exists is skipped (migrate).
const modSeqSchema = `ALTER TABLE conversations ADD COLUMN modseq INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE folder_entries ADD COLUMN modseq INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE private_messages ADD COLUMN modseq INTEGER NOT NULL DEFAULT 0;
	CREATE TABLE IF NOT EXISTS agent_modseqs (
		agent TEXT NOT NULL,
		message_id INTEGER NOT NULL REFERENCES messages(id),
		modseq INTEGER NOT NULL,
		PRIMARY KEY (agent, message_id)
	) WITHOUT ROWID`

// addsExistingColumn reports whether err is an ALTER TABLE ... ADD COLUMN
// statement failing because the column is there: a migration run again.
func addsExistingColumn(stmt string, err error) bool {
	return strings.Contains(strings.ToUpper(stmt), "ADD COLUMN") && strings.Contains(err.Error(), "duplicate column name")
}

// nextModSeq advances the mod-sequence counter in tx and returns its new
// value, for everything the transaction changes.
func nextModSeq(ctx context.Context, tx *sql.Tx) (int64, error) {
	var v int64
	err := tx.QueryRowContext(ctx, `INSERT INTO sequences (name, value) VALUES (?, 2)
		ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value`, modSeqSequence).Scan(&v)
	return v, err
}

// touchConversations records in tx that what every agent sees of the
// flags of the conversations' messages changed (keywords, \Answered).
func touchConversations(ctx context.Context, tx *sql.Tx, convs ...int64) error {
	if len(convs) == 0 {
		return nil
	}
	ms, err := nextModSeq(ctx, tx)
	if err != nil {
		return err
	}
	for _, c := range convs {
		if _, err := tx.ExecContext(ctx, `UPDATE conversations SET modseq = ? WHERE id = ?`, ms, c); err != nil {
			return err
		}
	}
	return nil
}

// touchAgentMessages records in tx that what agent sees of the flags of
// messages changed (\Seen, own keywords, marks).
func touchAgentMessages(ctx context.Context, tx *sql.Tx, agent string, messages []int64) error {
	if len(messages) == 0 {
		return nil
	}
	ms, err := nextModSeq(ctx, tx)
	if err != nil {
		return err
	}
	for _, m := range messages {
		if _, err := tx.ExecContext(ctx, `INSERT INTO agent_modseqs (agent, message_id, modseq) VALUES (?, ?, ?)
			ON CONFLICT (agent, message_id) DO UPDATE SET modseq = excluded.modseq`, agent, m, ms); err != nil {
			return err
		}
	}
	return nil
}

// touchAgentEntries is touchAgentMessages for the messages of entries of a
// shared folder (a UID with no entry is skipped: gone, or not given yet).
func touchAgentEntries(ctx context.Context, tx *sql.Tx, agent string, folder store.Folder, uids []uint32) error {
	if len(uids) == 0 {
		return nil
	}
	ms, err := nextModSeq(ctx, tx)
	if err != nil {
		return err
	}
	for _, uid := range uids {
		if _, err := tx.ExecContext(ctx, `INSERT INTO agent_modseqs (agent, message_id, modseq)
			SELECT ?, message_id, ? FROM folder_entries WHERE folder = ? AND uid = ?
			ON CONFLICT (agent, message_id) DO UPDATE SET modseq = excluded.modseq`, agent, ms, folder, uid); err != nil {
			return err
		}
	}
	return nil
}

// readModSeq reads the mod-sequence counter: a view's HIGHESTMODSEQ.
func readModSeq(ctx context.Context, tx *sql.Tx) (int64, error) {
	var v int64
	err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT value FROM sequences WHERE name = ?), 1)`, modSeqSequence).Scan(&v)
	return max(v, 1), err
}
