package store

import (
	"context"
	"database/sql"
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
// gives. Otherwise the reader reads everything, as before.
//
// A write added later that changes existing entries must call noteRewrite,
// or readers will miss it: TestIncrementalMatchesFull (gateway/imapgw)
// compares incremental and full reads after random sequences of writes.

// rewritesSequence counts the commits that changed existing folder entries.
const rewritesSequence = "rewrites"

// noteRewrite records in tx that existing folder entries change.
func noteRewrite(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO sequences (name, value) VALUES (?, 1)
		ON CONFLICT (name) DO UPDATE SET value = value + 1`, rewritesSequence)
	return err
}

// FolderCursor is where a read of one view of a shared folder left off.
// The zero value reads everything.
type FolderCursor struct {
	last     uint32 // the folder's last UID given when read
	rewrites int64  // the rewrites counter when read
	valid    bool
}

// IncrementalEntries is implemented by stores that can read only what was
// added to a view since an earlier read.
type IncrementalEntries interface {
	// EntriesSince reads a view as Entries does, and returns a cursor for
	// the next read. When cur is a cursor an earlier read of the same view
	// returned and nothing but new entries was committed since, it returns
	// only the entries added after that read and appended is true: the
	// earlier entries followed by these are the view's entries. Otherwise
	// it returns them all and appended is false.
	EntriesSince(ctx context.Context, view MailboxView, cur FolderCursor) (entries []MailboxEntry, uidNext uint32, next FolderCursor, appended bool, err error)
}

var _ IncrementalEntries = (*SQLite)(nil)
