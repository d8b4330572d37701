package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/supportgate/supportgate/store"
)

// What each write publishes (DESIGN.md §13, store/feed.go).
//
// A write that changes what a consumer shows runs through commit, not
// inTx, and records in its changes what it changed: the conversations
// whose shared entries it added, moved or reflagged, the agent's own state
// or private mailbox, the queue. The writer publishes the changes of every
// request of a batch once the batch is committed, before it answers them
// (groupcommit.go); a request that failed or was rolled back publishes
// nothing.
//
// A conversation's inbox and folder kinds are read once per batch, after
// its last request (resolve), not by every request: under load that is one
// read for a batch of messages. The kinds a conversation's entries were in
// during the batch are then those it is in at the end and those each
// request that moved them recorded as before (foldersOf, read by that
// request before its write): every state it passed through.

// changes collects what one write request changed (store.ChangeLog).
type changes = store.ChangeLog

// foldersOf returns the shared folder kinds conv's entries are in
// (syncFolders keeps them where store.WantedFolders says); none for a
// conversation that does not exist.
func foldersOf(ctx context.Context, tx *sql.Tx, conv int64) ([]store.Folder, error) {
	status, _, assignee, err := folderState(ctx, tx, conv)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return store.WantedFolders(status, assignee), err
}

// resolve returns the changes the committed requests of a batch recorded,
// the conversations' completed with their inbox and folder kinds, read in
// tx after the batch's last request. Should that read fail, it says that
// everything may have changed.
func resolve(ctx context.Context, tx *sql.Tx, recorded []*changes) []store.Change {
	var out []store.Change
	byConv := map[int64]*store.Change{}
	var ids []int64
	for _, r := range recorded {
		out = append(out, r.List...)
		for _, cc := range r.Convs {
			c := byConv[cc.Conv]
			if c == nil {
				c = &store.Change{Conversation: cc.Conv}
				byConv[cc.Conv] = c
				ids = append(ids, cc.Conv)
			}
			c.Flags = c.Flags || cc.Flags
			c.Folders = store.AddFolders(c.Folders, cc.Before)
		}
	}
	if len(ids) == 0 {
		return out
	}
	err := byIDs(ctx, tx, `SELECT id, status, inbox, assignee FROM conversations WHERE id IN (%s)`, ids, func(rows *sql.Rows) error {
		var id int64
		var status store.Status
		var inbox, assignee string
		if err := rows.Scan(&id, &status, &inbox, &assignee); err != nil {
			return err
		}
		c := byConv[id]
		c.Inbox, c.Folders = inbox, store.AddFolders(c.Folders, store.WantedFolders(status, assignee))
		return nil
	})
	if err != nil {
		return []store.Change{{All: true}}
	}
	for _, id := range ids {
		c := byConv[id]
		if c.Inbox == "" {
			c.Folders = nil // not found: any inbox, any kind
		}
		out = append(out, *c)
	}
	return out
}

// commit runs f in a write transaction as inTx does, and publishes what f
// recorded in ch once the transaction is committed.
func (s *Store) commit(ctx context.Context, f func(tx *sql.Tx, ch *changes) error) error {
	return s.w.do(ctx, f)
}

// Subscribe implements store.Feed.
func (s *Store) Subscribe(f store.Filter) *store.Subscription { return s.hub.Subscribe(f) }

// Changes returns a channel closed at the next committed change of any
// kind (store.Hub.Changes).
func (s *Store) Changes() <-chan struct{} { return s.hub.Changes() }
