package postgres

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// waitTake waits until sub has changes (or a generous deadline passes)
// and takes them.
func waitTake(t *testing.T, sub *store.Subscription, ch <-chan struct{}) ([]store.Change, bool) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no change arrived")
	}
	return sub.Take()
}

// TestNodesFeed: a change committed on node A reaches the subscriptions
// of node B that it concerns, with what it changed, through NOTIFY; it
// wakes none that it does not concern.
func TestNodesFeed(t *testing.T) {
	a, b := twoNodes(t)
	ctx := t.Context()
	inbox := b.Subscribe(store.FolderFilter(agent, store.FolderInbox, []string{inboxA}))
	defer inbox.Close()
	other := b.Subscribe(store.FolderFilter(agent, store.FolderInbox, []string{"billing@example.com"}))
	defer other.Close()
	queue := b.Subscribe(store.Filter{Queue: true})
	defer queue.Close()
	drafts := b.Subscribe(store.MailboxFilter(agent, store.MailboxDrafts))
	defer drafts.Close()

	woken := inbox.Changed()
	res := mustInbound(t, a, newInbound(inboxA, "feed@example.com", 1))
	cs, all := waitTake(t, inbox, woken)
	if all || !slices.ContainsFunc(cs, func(c store.Change) bool {
		return c.Conversation == res.Conversation && c.Inbox == inboxA && slices.Contains(c.Folders, store.FolderInbox)
	}) {
		t.Fatalf("node B's INBOX view got %+v (all %v), want the new conversation in INBOX", cs, all)
	}

	// A reply queues: node B's queue worker wakes; a draft on node A wakes
	// node B's view of it.
	woken, qwoken, dwoken := inbox.Changed(), queue.Changed(), drafts.Changed()
	mustOutbound(t, a, reply(mustReserve(t, a), res.Conversation, agent, "customer@example.com"))
	if cs, _ := waitTake(t, queue, qwoken); !slices.ContainsFunc(cs, func(c store.Change) bool { return c.Queue }) {
		t.Errorf("node B's queue got %+v", cs)
	}
	if cs, _ := waitTake(t, inbox, woken); !slices.ContainsFunc(cs, func(c store.Change) bool { return c.Conversation == res.Conversation && c.Flags }) {
		t.Errorf("node B's INBOX view got %+v, want \\Answered of the conversation", cs)
	}
	if _, _, err := a.AddPrivate(ctx, agent, store.MailboxDrafts, []store.PrivateMessage{{Raw: rawMessage("draft")}}); err != nil {
		t.Fatal(err)
	}
	if cs, _ := waitTake(t, drafts, dwoken); len(cs) == 0 {
		t.Error("node B's Drafts view got nothing")
	}
	if cs, all := other.Take(); len(cs) > 0 || all {
		t.Errorf("the view of another inbox was told %+v (all %v)", cs, all)
	}
}

// TestPayloadFits: a transaction's changes too long for a NOTIFY payload
// are sent as one that wakes everyone.
func TestPayloadFits(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	var many []store.Change
	for i := range 2000 {
		many = append(many, store.Change{Agent: strings.Repeat("a", 20) + string(rune('a'+i%26)), Mailbox: strings.Repeat("m", i%50+1)})
	}
	p := s.payload(many)
	if len(p) > store.MaxPayload {
		t.Fatalf("payload of %d bytes", len(p))
	}
	node, encoded, _ := strings.Cut(p, " ")
	cs, err := store.DecodeChanges([]byte(encoded))
	if node != s.node || err != nil || !slices.ContainsFunc(cs, func(c store.Change) bool { return c.All }) {
		t.Fatalf("payload %q: %+v, %v", p[:min(len(p), 80)], cs, err)
	}
	// A payload that cannot be read wakes every subscriber.
	sub := s.Subscribe(store.MailboxFilter(agent, "x"))
	defer sub.Close()
	s.received("othernode not-json")
	if _, all := sub.Take(); !all {
		t.Error("an unreadable payload did not wake everyone")
	}
}

// TestFeedWakesWhatAWriteConcerns (store/sqlite's, on this engine) makes
// the writes of an IMAP session's day and checks, once each returns,
// which subscriptions it woke and what they hold: a write in another inbox or another agent's \Seen does not
// wake agent alice's INBOX view; a new message, a tag, her own \Seen and a
// move out of INBOX do. No waiting: a write publishes to its own node before it
// returns.
func TestFeedWakesWhatAWriteConcerns(t *testing.T) {
	s := openTest(t, pg.DSN(t))
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

// TestFeedFailedWritePublishesNothing: a write rolled back wakes nobody.
func TestFeedFailedWritePublishesNothing(t *testing.T) {
	s := openTest(t, pg.DSN(t))
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
