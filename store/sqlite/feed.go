package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"

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

// changes collects what one write request changed.
type changes struct {
	list  []store.Change
	convs []convChange // completed by resolve
}

// convChange is a change of a conversation's shared entries.
type convChange struct {
	conv   int64
	flags  bool           // their flags changed (keywords, \Answered)
	before []store.Folder // the kinds they were in before a move
}

func (c *changes) add(cs ...store.Change) { c.list = append(c.list, cs...) }

// agent records a change only agent sees: of their state of shared
// entries (mailbox ""), or of a private mailbox.
func (c *changes) agent(agent, mailbox string) {
	c.add(store.Change{Agent: agent, Mailbox: mailbox})
}

// conversation records that conv's shared entries changed: some were
// added, or they moved out of the folder kinds before (foldersOf, read
// before the write; nil when they did not move), and, with flags, what
// they show of the conversation's keywords or \Answered.
func (c *changes) conversation(conv int64, flags bool, before []store.Folder) {
	c.convs = append(c.convs, convChange{conv: conv, flags: flags, before: before})
}

// event records an event's message in its conversation; a quiet event
// shows nowhere.
func (c *changes) event(ev store.Event) {
	if !ev.Quiet {
		c.conversation(ev.Conversation, false, nil)
	}
}

// outbound records what addOutbound wrote: the message's entries (and
// \Answered on the earlier ones for a reply, keywords and folders of its
// quick actions), the author's Sent, and the queue.
func (c *changes) outbound(out store.Outbound, before []store.Folder) {
	if out.Kind != store.KindNotification {
		flags := out.Kind == store.KindReply || out.Update != nil && len(out.Update.AddTags)+len(out.Update.RemoveTags) > 0
		c.conversation(out.Conversation, flags, before)
	}
	if (out.Kind == store.KindReply || out.Kind == store.KindNote || out.Kind == store.KindSide) && out.Agent != "" {
		c.agent(out.Agent, store.MailboxSent) // fileSent
	}
	if store.IsQueued(out.Kind) && len(out.Recipients) > 0 {
		c.add(store.Change{Queue: true})
	}
}

// foldersOf returns the shared folder kinds conv's entries are in
// (syncFolders keeps them where wantedFolders says); none for a
// conversation that does not exist.
func foldersOf(ctx context.Context, tx *sql.Tx, conv int64) ([]store.Folder, error) {
	status, _, assignee, err := folderState(ctx, tx, conv)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return wantedFolders(status, assignee), err
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
		out = append(out, r.list...)
		for _, cc := range r.convs {
			c := byConv[cc.conv]
			if c == nil {
				c = &store.Change{Conversation: cc.conv}
				byConv[cc.conv] = c
				ids = append(ids, cc.conv)
			}
			c.Flags = c.Flags || cc.flags
			c.Folders = addFolders(c.Folders, cc.before)
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
		c.Inbox, c.Folders = inbox, addFolders(c.Folders, wantedFolders(status, assignee))
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

// addFolders adds to kinds those of more it lacks.
func addFolders(kinds, more []store.Folder) []store.Folder {
	for _, f := range more {
		if !slices.Contains(kinds, f) {
			kinds = append(kinds, f)
		}
	}
	return kinds
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
