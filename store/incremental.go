package store

import "context"

// FolderCursor is where a read of one view of a shared folder left off.
// The zero value reads everything.
//
// Its fields belong to the engine that returned it: a consumer keeps the
// cursor and hands it back, and never builds one but the zero value.
type FolderCursor struct {
	Last    uint32 // the folder's last UID given when read
	Version int64  // the engine's count of rewrites of existing entries when read
	Valid   bool
}

// FolderChanges is a read of a view since an earlier one (EntryChanges).
//
// When Full, Entries are all the view's entries. Otherwise, with prev the
// entries of the read that returned the cursor: the view's entries are, in
// UID order, those of prev whose conversation is not in Replaced, then
// Replacements, then Entries. Replacements are the entries of the
// conversations in Replaced at or below the cursor's last UID (every entry
// of prev is), and Entries those above it, in UID order, so that the merge
// by UID of the first two followed by Entries is the view's entries, what a
// full read gives, flags included. An entry of a replaced conversation that
// is not among the Replacements is no longer in the view.
type FolderChanges struct {
	Entries      []MailboxEntry
	UIDNext      uint32
	Cursor       FolderCursor // for the next read
	Full         bool
	Replaced     map[int64]bool // never when Full
	Replacements []MailboxEntry
	// HighestModSeq is the view's HIGHESTMODSEQ when read (RFC 7162
	// 3.1.2.1, sqlite_modseq.go): at least every entry's ModSeq.
	HighestModSeq int64
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
	// EntryChanges is EntriesSince that also reads incrementally when
	// existing entries of a few conversations changed since cur: then it
	// returns what changed as Replaced conversations (FolderChanges).
	EntryChanges(ctx context.Context, view MailboxView, cur FolderCursor) (FolderChanges, error)
}
