package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// The typed change feed (DESIGN.md §13, store/feed.go): what each write
// wakes, on every engine.
func feedCases() []testCase {
	return []testCase{
		{"FeedWakesWhatAWriteConcerns", testFeedWakesWhatAWriteConcerns},
		{"FeedFailedWritePublishesNothing", testFeedFailedWritePublishesNothing},
	}
}

// testFeedWakesWhatAWriteConcerns makes the writes of an IMAP session's
// day and checks, once each returns, which subscriptions it woke and what
// they hold: a write in another inbox or another agent's \Seen does not
// wake agent alice's INBOX view; a new message, a tag, her own \Seen and a
// move out of INBOX do. No waiting: the writer publishes before it
// answers.
func testFeedWakesWhatAWriteConcerns(t *testing.T, s store.Store) {
	ctx := t.Context()
	const bob = agent2
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

// testFeedFailedWritePublishesNothing: a write rolled back to its
// savepoint wakes nobody.
func testFeedFailedWritePublishesNothing(t *testing.T, s store.Store) {
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
