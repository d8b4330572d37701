package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/supportgate/supportgate/store"
)

// A whole folder in two halves at once.
//
// The first SELECT of a large folder reads every entry with its flags
// (imapgw's snapshot, DESIGN.md §13), and that read is CPU-bound in
// SQLite and the driver: about 6 µs an entry, 1.9 s for 300,000 (issue
// 18). Above splitReadAbove entries the upper half is read by a second
// read transaction on another connection while the first reads the lower
// half. Both must see the same commit: the second checks that the
// sequences a cursor is made of (readState) are the ones the first read,
// and when they are not (a write committed in between) the first reads
// the upper half itself, as it did before.

// splitReadAbove is the number of entries from which a whole folder is
// read in two halves at once.
const splitReadAbove = 50_000

// readState is what a read transaction saw of the sequences that change
// with every write a folder's entries show (entryChanges): two
// transactions that saw the same read the same entries.
type readState struct {
	next, rewrites, floor, modSeq int64
}

// readSequences reads, in tx, the sequences a cursor of folder is made of.
func readSequences(ctx context.Context, tx *sql.Tx, folder store.Folder) (readState, error) {
	var st readState
	err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT value FROM sequences WHERE name = ?), 0),
		COALESCE((SELECT value FROM sequences WHERE name = ?), 0), COALESCE((SELECT value FROM sequences WHERE name = ?), 0),
		COALESCE((SELECT value FROM sequences WHERE name = ?), 1)`,
		"uid:"+string(folder), rewritesSequence, rewriteLogFloor, modSeqSequence).Scan(&st.next, &st.rewrites, &st.floor, &st.modSeq)
	return st, err
}

// errStateMoved: the second transaction saw another commit.
var errStateMoved = errors.New("store: the folder changed between the two reads")

// readWhole reads every entry of view in tx, which saw state.
func (s *Store) readWhole(ctx context.Context, tx *sql.Tx, view store.MailboxView, state readState) ([]store.MailboxEntry, error) {
	n, err := countEntries(ctx, tx, view)
	if err != nil {
		return nil, err
	}
	above := s.whole.splitAbove
	if above == 0 {
		above = splitReadAbove
	}
	if n < above {
		return readEntries(ctx, tx, view, 0, 0, nil, n)
	}
	mid, err := middleUID(ctx, tx, view, n, state)
	if err != nil {
		return nil, err
	}
	type half struct {
		entries []store.MailboxEntry
		err     error
	}
	upper := make(chan half, 1)
	go func() {
		var h half
		h.entries, h.err = s.readUpper(ctx, view, state, mid, n/2)
		upper <- h
	}()
	entries, err := readEntries(ctx, tx, view, 0, mid, nil, n)
	h := <-upper // also on an error: the goroutine ends before the read's transaction does
	if err != nil {
		return nil, err
	}
	if errors.Is(h.err, errStateMoved) {
		h.entries, h.err = readEntries(ctx, tx, view, mid, 0, nil, n-len(entries))
	}
	if h.err != nil {
		return nil, h.err
	}
	return append(entries, h.entries...), nil
}

// readUpper reads the entries of view above UID mid in a read transaction
// of its own, which must see state (errStateMoved otherwise).
func (s *Store) readUpper(ctx context.Context, view store.MailboxView, state readState, mid uint32, capacity int) ([]store.MailboxEntry, error) {
	if s.whole.beforeUpper != nil {
		s.whole.beforeUpper()
	}
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	now, err := readSequences(ctx, tx, view.Folder)
	if err != nil {
		return nil, err
	}
	if now != state {
		return nil, errStateMoved
	}
	return readEntries(ctx, tx, view, mid, 0, nil, capacity)
}

// middleUID is a UID that splits the n entries of view in about two
// halves: the middle one's of a single inbox (from its index), else the
// middle of the folder's UIDs.
func middleUID(ctx context.Context, tx *sql.Tx, view store.MailboxView, n int, state readState) (uint32, error) {
	if len(view.Inboxes) != 1 {
		return uint32(state.next / 2), nil
	}
	q := `SELECT uid FROM folder_entries WHERE folder = ? AND inbox = ?`
	args := []any{view.Folder, view.Inboxes[0]}
	if view.Folder == store.FolderMine {
		q += ` AND assignee = ?`
		args = append(args, view.Agent)
	}
	var mid uint32
	err := tx.QueryRowContext(ctx, q+` ORDER BY uid LIMIT 1 OFFSET ?`, append(args, n/2)...).Scan(&mid)
	return mid, err
}
