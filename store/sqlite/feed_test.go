package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// TestFeedWakesWhatAWriteConcerns makes the writes of an IMAP session's
// day and checks, once each returns, which subscriptions it woke and what
// they hold: a write in another inbox or another agent's \Seen does not
// wake agent alice's INBOX view; a new message, a tag, her own \Seen and a
// move out of INBOX do. No waiting: the writer publishes before it
// answers.
func TestFeedWakesWhatAWriteConcerns(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx := t.Context()
	const bob = "bob@support.example.com"
	subs := map[string]*store.Subscription{
		"INBOX":  s.Subscribe(store.FolderFilter(agent, store.FolderInbox, []string{inboxA})),
		"Closed": s.Subscribe(store.FolderFilter(agent, store.FolderClosed, []string{inboxA})),
		"Sent":   s.Subscribe(store.MailboxFilter(agent, store.MailboxSent)),
		"queue":  s.Subscribe(store.Filter{Queue: true}),
	}
	var conv, msg int64
	open := []store.Folder{store.FolderInbox, store.FolderUnassigned}
	steps := []struct {
		name string
		do   func() error
		want map[string][]store.Change // by subscription
	}{
		{"a new conversation in the other inbox", func() error {
			_, err := s.AddInbound(ctx, newInbound(inboxB, "other@example.com", 1))
			return err
		}, nil},
		{"a new conversation in her inbox", func() error {
			res, err := s.AddInbound(ctx, newInbound(inboxA, "mine@example.com", 2))
			conv, msg = res.Conversation, res.Message
			return err
		}, map[string][]store.Change{"INBOX": {{Conversation: 2, Inbox: inboxA, Folders: open}}}},
		{"the same message again", func() error {
			_, err := s.AddInbound(ctx, newInbound(inboxA, "mine@example.com", 2))
			return err
		}, nil},
		{"bob reads it", func() error { return s.SetSeen(ctx, bob, []int64{msg}, true) }, nil},
		// Her own state wakes all her views of shared folders: it does
		// not say where the message is.
		{"alice reads it (in another session)", func() error { return s.SetSeen(ctx, agent, []int64{msg}, true) },
			map[string][]store.Change{"INBOX": {{Agent: agent}}, "Closed": {{Agent: agent}}}},
		{"a tag", func() error { return s.UpdateConversation(ctx, store.KeywordsUpdate(conv, []string{"billing"}, nil)) },
			map[string][]store.Change{"INBOX": {{Conversation: 2, Inbox: inboxA, Folders: open, Flags: true}}}},
		{"closed: it leaves INBOX for Closed", func() error { return s.UpdateConversation(ctx, store.StatusUpdate(conv, store.StatusClosed)) },
			map[string][]store.Change{
				"INBOX":  {{Conversation: 2, Inbox: inboxA, Folders: []store.Folder{store.FolderInbox, store.FolderUnassigned, store.FolderClosed}}},
				"Closed": {{Conversation: 2, Inbox: inboxA, Folders: []store.Folder{store.FolderInbox, store.FolderUnassigned, store.FolderClosed}}},
			}},
		{"her reply, in Closed, filed in Sent, queued", func() error {
			return s.AddOutbound(ctx, reply(mustReserve(t, s), conv, agent, "customer@example.com"))
		}, map[string][]store.Change{
			"Closed": {{Conversation: 2, Inbox: inboxA, Folders: []store.Folder{store.FolderClosed}, Flags: true}},
			"Sent":   {{Agent: agent, Mailbox: store.MailboxSent}},
			"queue":  {{Queue: true}},
		}},
		{"bob's reply in the other inbox, queued", func() error {
			return s.AddOutbound(ctx, reply(mustReserve(t, s), 1, bob, "other@example.com"))
		}, map[string][]store.Change{"queue": {{Queue: true}}}},
		{"a retry", func() error { _, err := s.RetryNow(ctx, 1, time.Now()); return err },
			map[string][]store.Change{"queue": {{Queue: true}}}},
		{"bob's private mailbox", func() error { return s.CreateMailbox(ctx, bob, "Later") }, nil},
	}
	for _, step := range steps {
		chans := map[string]<-chan struct{}{}
		for name, sub := range subs {
			chans[name] = sub.Changed()
		}
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		for name, sub := range subs {
			want := step.want[name]
			if woken := isClosed(chans[name]); woken != (want != nil) {
				t.Errorf("%s: %s woken = %v, want %v", step.name, name, woken, want != nil)
			}
			if got, all := sub.Take(); all || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s holds %+v (all %v), want %+v", step.name, name, got, all, want)
			}
		}
	}
}

// TestFeedFailedWritePublishesNothing: a write rolled back to its
// savepoint wakes nobody.
func TestFeedFailedWritePublishesNothing(t *testing.T) {
	s := openTest(t, t.TempDir())
	sub := s.Subscribe(store.Filter{All: true})
	ch := sub.Changed()
	if err := s.UpdateConversation(t.Context(), store.StatusUpdate(4242, store.StatusClosed)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetStatus of no conversation: %v", err)
	}
	if err := s.UpdateConversation(t.Context(), store.KeywordsUpdate(4242, []string{"x"}, nil)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AddTags of no conversation: %v", err)
	}
	if got, all := sub.Take(); isClosed(ch) || got != nil || all {
		t.Fatalf("failed writes published %+v (all %v)", got, all)
	}
}

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
