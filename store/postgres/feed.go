package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/supportgate/supportgate/store"
)

// What each write publishes (DESIGN.md §13, store/feed.go), as store/sqlite
// records it: a write that changes what a consumer shows runs through
// commit and records what it changed. The changes are completed in the
// transaction (resolve: the conversations' inbox and folder kinds),
// sent to the other nodes by NOTIFY in the transaction (delivered at
// COMMIT), and published to this node's Hub after the COMMIT, before the
// write returns: a caller that returns has woken the sessions its write
// concerns, and a woken session reads the write. A transaction run again
// records afresh; one rolled back publishes nothing.

// changes collects what one write transaction changed (store.ChangeLog).
type changes struct {
	store.ChangeLog
	// last is the transaction's last write, run after the NOTIFY: where
	// it takes the counter rows, every other inbound write waits for them
	// only for it and the COMMIT (the package comment, "UIDs").
	last func() error
}

// foldersOf returns the shared folder kinds conv's entries are in
// (syncFolders keeps them where store.WantedFolders says); none for a
// conversation that does not exist.
func foldersOf(ctx context.Context, tx pgx.Tx, conv int64) ([]store.Folder, error) {
	status, _, assignee, err := folderState(ctx, tx, conv)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return store.WantedFolders(status, assignee), err
}

// resolve returns the changes ch recorded, the conversations' completed
// with their inbox and the folder kinds they are in now, read in tx after
// the writes.
func resolve(ctx context.Context, tx pgx.Tx, ch *changes) ([]store.Change, error) {
	out := slices.Clone(ch.List)
	byConv := map[int64]*store.Change{}
	var ids []int64
	for _, cc := range ch.Convs {
		c := byConv[cc.Conv]
		if c == nil {
			c = &store.Change{Conversation: cc.Conv}
			byConv[cc.Conv] = c
			ids = append(ids, cc.Conv)
		}
		c.Flags = c.Flags || cc.Flags
		c.Folders = store.AddFolders(c.Folders, cc.Before)
	}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, `SELECT id, status, inbox, assignee FROM conversations WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var status, inbox, assignee string
		if err := rows.Scan(&id, &status, &inbox, &assignee); err != nil {
			return nil, err
		}
		c := byConv[id]
		c.Inbox, c.Folders = inbox, store.AddFolders(c.Folders, store.WantedFolders(store.Status(status), assignee))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, id := range ids {
		c := byConv[id]
		if c.Inbox == "" {
			c.Folders = nil // not found: any inbox, any kind
		}
		out = append(out, *c)
	}
	return out, nil
}

// commit runs f in a write transaction (inTx), sends what f recorded to
// the other nodes in it, and publishes it to this node's Hub after the
// COMMIT.
func (s *Store) commit(ctx context.Context, f func(tx pgx.Tx, ch *changes) error) error {
	var published []store.Change
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var ch changes // afresh when the transaction runs again
		if err := f(tx, &ch); err != nil {
			return err
		}
		cs, err := resolve(ctx, tx, &ch)
		if err != nil {
			return err
		}
		// A NOTIFY is delivered at COMMIT, whichever statement sent it.
		if published = store.Coalesce(cs); len(published) > 0 {
			if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, changesChannel, s.payload(published)); err != nil {
				return err
			}
		}
		if ch.last != nil {
			return ch.last()
		}
		return nil
	})
	if err == nil && len(published) > 0 {
		s.hub.Publish(published)
	}
	return err
}

// change is commit with what the write was in its error.
func (s *Store) change(ctx context.Context, what string, f func(tx pgx.Tx, ch *changes) error) error {
	if err := s.commit(ctx, f); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

// payload is the NOTIFY payload of changes: this node's name, a space and
// store.EncodeChanges, shorter than the 8000 bytes NOTIFY allows (an All
// change when they do not fit).
func (s *Store) payload(cs []store.Change) string {
	p := s.node + " " + string(store.EncodeChanges(cs))
	if len(p) > store.MaxPayload {
		p = s.node + ` [{"all":true}]`
	}
	return p
}

// received publishes the changes of another node's notification; one
// this node sent was published already. A payload it cannot read says
// that something changed: everything is read again.
func (s *Store) received(payload string) {
	node, encoded, _ := strings.Cut(payload, " ")
	if node == s.node {
		return
	}
	cs, err := store.DecodeChanges([]byte(encoded))
	if err != nil {
		s.hub.PublishAll()
		return
	}
	s.hub.Publish(cs)
}

// Subscribe implements store.Feed.
func (s *Store) Subscribe(f store.Filter) *store.Subscription { return s.hub.Subscribe(f) }

// Changes returns a channel closed at the next committed change of any
// kind, this node's or another's (store.Hub.Changes).
func (s *Store) Changes() <-chan struct{} { return s.hub.Changes() }
