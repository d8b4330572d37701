package postgres

import (
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
