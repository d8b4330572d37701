package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// TestGroupCommitPublishesOnce runs one batch of the writer directly: the
// changes of its committed requests are published once, coalesced, before
// any request is answered; those of a failed request are not.
func TestGroupCommitPublishesOnce(t *testing.T) {
	s := openTest(t, t.TempDir())
	var published [][]store.Change
	var batch []*writeRequest
	w := &writer{db: s.write, publish: func(cs []store.Change) {
		for _, r := range batch {
			if len(r.done) != 0 {
				t.Error("a request was answered before the batch's changes were published")
			}
		}
		published = append(published, cs)
	}}
	request := func(c store.Change, err error) *writeRequest {
		return &writeRequest{ctx: context.Background(), done: make(chan error, 1), f: func(tx *sql.Tx, ch *changes) error {
			ch.Add(c)
			_, werr := tx.Exec(`INSERT INTO sequences (name, value) VALUES ('feed', 1) ON CONFLICT (name) DO UPDATE SET value = value + 1`)
			return errors.Join(werr, err)
		}}
	}
	errRefused := errors.New("refused")
	batch = []*writeRequest{
		request(store.Change{Conversation: 1, Inbox: inboxA, Folders: []store.Folder{store.FolderInbox}}, nil),
		request(store.Change{Agent: agent}, errRefused),
		request(store.Change{Conversation: 1, Inbox: inboxA, Folders: []store.Folder{store.FolderMine}, Flags: true}, nil),
		request(store.Change{Queue: true}, nil),
	}
	w.runBatch(batch)
	for i, r := range batch {
		if err := <-r.done; (err != nil) != (i == 1) {
			t.Errorf("request %d: %v", i, err)
		}
	}
	want := [][]store.Change{{
		{Conversation: 1, Inbox: inboxA, Folders: []store.Folder{store.FolderInbox, store.FolderMine}, Flags: true},
		{Queue: true},
	}}
	if !reflect.DeepEqual(published, want) {
		t.Fatalf("published %+v, want %+v", published, want)
	}

	// A batch of failures publishes nothing.
	published = nil
	batch = []*writeRequest{request(store.Change{Agent: agent}, errRefused)}
	w.runBatch(batch)
	<-batch[0].done
	if published != nil {
		t.Fatalf("a failed batch published %+v", published)
	}
}

// TestGroupCommitResolvesOncePerBatch: a batch in which one request adds
// an entry to an open conversation and a later one closes it publishes
// one change of it, with every folder kind its entries were in during the
// batch, read after the last request.
func TestGroupCommitResolvesOncePerBatch(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx := context.Background()
	conv := mustInbound(t, s, newInbound(inboxA, "open@example.com", 1)).Conversation
	var published [][]store.Change
	w := &writer{db: s.write, publish: func(cs []store.Change) { published = append(published, cs) }}
	ev := store.Event{Conversation: conv, Type: "test", Text: "noted", At: at(2)}
	batch := []*writeRequest{
		{ctx: ctx, done: make(chan error, 1), f: func(tx *sql.Tx, ch *changes) error {
			_, err := s.addEvent(ctx, tx, ev)
			ch.Event(ev)
			return err
		}},
		{ctx: ctx, done: make(chan error, 1), f: func(tx *sql.Tx, ch *changes) error {
			before, err := foldersOf(ctx, tx, conv)
			if err != nil {
				return err
			}
			ch.Conversation(conv, false, before)
			return setStatus(ctx, tx, conv, store.StatusClosed)
		}},
	}
	w.runBatch(batch)
	for i, r := range batch {
		if err := <-r.done; err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	want := [][]store.Change{{{Conversation: conv, Inbox: inboxA,
		Folders: []store.Folder{store.FolderInbox, store.FolderUnassigned, store.FolderClosed}}}}
	if !reflect.DeepEqual(published, want) {
		t.Fatalf("published %+v, want %+v", published, want)
	}
}
