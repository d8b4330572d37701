package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// Conversations, their updates and events (DESIGN.md §5, §7), and the
// change signal every commit sends (DESIGN.md §13 "Change fan-out").
func conversationCases() []testCase {
	return []testCase{
		{"AddEvent", testAddEvent},
		{"UpdateConversation", testUpdateConversation},
		{"UpdateConversations", testUpdateConversations},
		{"UpdateConversationQuickActions", testUpdateConversationQuickActions},
		{"ListConversations", testListConversations},
		{"ListConversationsPagesStably", testListConversationsPagesStably},
		{"AddInboundReopensAndAddsParticipants", testAddInboundReopensAndAddsParticipants},
		{"ContinuityCandidate", testContinuityCandidate},
		{"ConversationCounts", testConversationCounts},
		{"ChangesAfterCommit", testChangesAfterCommit},
	}
}

func testAddEvent(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustInbound(t, s, newInbound(inboxA, "a@x", 1))
	ev := store.Event{Conversation: a.Conversation, Type: "delivery-failed", Text: "Delivery to x@y failed:\r\nBcc: evil@x", Detail: "550 5.1.1 no such user\nsecond line", At: at(2)}
	id, err := s.AddEvent(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Message(ctx, id)
	if err != nil || m.Kind != store.KindEvent || m.Conversation != a.Conversation {
		t.Fatalf("event message %+v %v", m, err)
	}
	raw, _ := s.MessageRaw(ctx, id)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("the event is not a readable message: %v\n%s", err, raw)
	}
	if msg.Header.Get("Bcc") != "" || msg.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("event header: %v", msg.Header)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if !strings.Contains(subject, "Delivery to x@y failed: Bcc: evil@x") || !strings.HasSuffix(subject, "[#1]") {
		t.Errorf("subject %q", subject)
	}
	if !bytes.Contains(raw, []byte("550 5.1.1 no such user\r\nsecond line\r\n")) {
		t.Errorf("detail not in the body:\n%s", raw)
	}
	if e, _ := mustEntries(t, s, inboxView("a", inboxA)); len(e) != 2 || e[1].Kind != store.KindEvent {
		t.Errorf("INBOX entries %+v", e)
	}
	if evs, err := s.Events(ctx, a.Conversation); err != nil || len(evs) != 1 || evs[0].Type != ev.Type || !evs[0].At.Equal(ev.At) {
		t.Errorf("Events = %+v, %v", evs, err)
	}
	if _, err := s.AddEvent(ctx, store.Event{Conversation: 99, At: at(3)}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("event in a missing conversation: %v", err)
	}
}

func testUpdateConversation(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustInbound(t, s, newInbound(inboxA, "a@x", 1))
	on, off := true, false
	mustUpdate(t, s, store.ConversationUpdate{
		Conversation:    a.Conversation,
		AddParticipants: []string{"p1@x", "p2@x"},
		AddFollowers:    []string{"bob@example.test"},
		ReadOnly:        &on,
		Events: []store.Event{{Type: "participant-added", Text: "p1@x and p2@x joined", At: at(2), Quiet: true},
			{Type: "read-only", Text: "read-only on", At: at(3)}},
	})
	c := mustConversation(t, s, a.Conversation)
	if !c.ReadOnly || strings.Join(c.Participants, ",") != "p1@x,p2@x" || strings.Join(c.Followers, ",") != "bob@example.test" {
		t.Errorf("after the update: %+v", c)
	}
	evs, err := s.Events(ctx, a.Conversation)
	if err != nil || len(evs) != 2 || !evs[0].Quiet || evs[1].Quiet || evs[1].Text != "read-only on" || evs[1].Conversation != a.Conversation {
		t.Errorf("events %+v %v", evs, err)
	}
	// Only the loud event is a message.
	if e, _ := mustEntries(t, s, inboxView("a", inboxA)); len(e) != 2 {
		t.Errorf("INBOX has %d entries, want the message and one event", len(e))
	}
	mustUpdate(t, s, store.ConversationUpdate{Conversation: a.Conversation, RemoveParticipants: []string{"p1@x"},
		RemoveFollowers: []string{"bob@example.test"}, ReadOnly: &off})
	c = mustConversation(t, s, a.Conversation)
	if c.ReadOnly || strings.Join(c.Participants, ",") != "p2@x" || len(c.Followers) != 0 {
		t.Errorf("after removing: %+v", c)
	}
	if err := s.UpdateConversation(ctx, store.ConversationUpdate{Conversation: 77}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update of a missing conversation: %v", err)
	}
	// Inbound followers and events come with the message.
	in := into(a.Conversation, inboxA, "b@x", 4)
	in.NewFollowers = []string{"carol@example.test"}
	in.Events = []store.Event{{Type: "participants-over-cap", Text: "not added: x@y", At: at(4), Quiet: true}}
	mustInbound(t, s, in)
	c = mustConversation(t, s, a.Conversation)
	if evs, _ := s.Events(ctx, a.Conversation); len(evs) != 3 || strings.Join(c.Followers, ",") != "carol@example.test" {
		t.Errorf("inbound followers/events: %+v %+v", c, evs)
	}
}

// testUpdateConversationQuickActions: tags, assignee and status in one
// update (DESIGN.md §5 item 4) all apply, with the folders following; an
// update whose last part fails writes nothing.
func testUpdateConversationQuickActions(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustInbound(t, s, newInbound(inboxA, "a@x", 1))
	who, closed := agent, store.StatusClosed
	mustUpdate(t, s, store.ConversationUpdate{Conversation: a.Conversation, AddTags: []string{"Billing", "vip"},
		Assignee: &who, Status: &closed, Events: []store.Event{{Type: "closed", Text: "closed by alice", At: at(2)}}})
	c := mustConversation(t, s, a.Conversation)
	if c.Status != store.StatusClosed || c.Assignee != agent || !slices.Equal(c.Tags, []string{"Billing", "vip"}) {
		t.Errorf("after the quick actions: %+v", c)
	}
	if got := foldersOf(t, s, inboxA, agent, a.Message); !slices.Equal(got, []store.Folder{store.FolderClosed}) {
		t.Errorf("the closed conversation's message is in %v, want Closed only", got)
	}
	// Case-insensitive tags: no second Billing; removing an unknown one is no error.
	mustUpdate(t, s, store.ConversationUpdate{Conversation: a.Conversation, AddTags: []string{"billing"}, RemoveTags: []string{"VIP", "unknown"}})
	if c := mustConversation(t, s, a.Conversation); !slices.Equal(c.Tags, []string{"Billing"}) {
		t.Errorf("tags %v, want [Billing]", c.Tags)
	}
	// An update whose last part fails (a status that is none) writes
	// none of its parts.
	bad, open := store.Status("deleted"), store.StatusOpen
	if err := s.UpdateConversation(ctx, store.ConversationUpdate{Conversation: a.Conversation, AddTags: []string{"lost"}, Status: &bad}); err == nil {
		t.Error("an update to status \"deleted\" succeeded")
	}
	if c := mustConversation(t, s, a.Conversation); c.Status != store.StatusClosed || slices.Contains(c.Tags, "lost") {
		t.Errorf("a failed update changed the conversation: %+v", c)
	}
	mustUpdate(t, s, store.ConversationUpdate{Conversation: a.Conversation, Status: &open})
	if got := foldersOf(t, s, inboxA, agent, a.Message); !slices.Equal(got, []store.Folder{store.FolderInbox, store.FolderMine}) {
		t.Errorf("the reopened conversation's message is in %v, want INBOX and Mine", got)
	}
}

func testListConversations(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustInbound(t, s, newInbound(inboxA, "a@x", 1))
	b := mustInbound(t, s, newInbound(inboxA, "b@x", 2))
	mustInbound(t, s, into(a.Conversation, inboxA, "a2@x", 3))
	mustUpdate(t, s, setStatus(b.Conversation, store.StatusClosed))
	all, next, err := s.ListConversations(ctx, "", 0, 10)
	if err != nil || len(all) != 2 || all[0].ID != b.Conversation || next != 0 {
		t.Fatalf("all: %+v next %d %v; want the newest first, one page", all, next, err)
	}
	if one, next, err := s.ListConversations(ctx, "", 0, 1); err != nil || len(one) != 1 || one[0].ID != b.Conversation || next != b.Conversation {
		t.Errorf("limit 1: %+v next %d %v", one, next, err)
	}
	closed, _, _ := s.ListConversations(ctx, store.StatusClosed, 0, 10)
	if len(closed) != 1 || closed[0].ID != b.Conversation {
		t.Errorf("closed: %+v", closed)
	}
	msgs, err := s.ConversationMessages(ctx, a.Conversation)
	if err != nil || len(msgs) != 2 || msgs[1].MessageIDHeader != "a2@x" {
		t.Errorf("messages: %+v %v", msgs, err)
	}
}

func testAddInboundReopensAndAddsParticipants(t *testing.T, s store.Store) {
	a := mustInbound(t, s, newInbound(inboxA, "a@x", 1))
	mustUpdate(t, s, setStatus(a.Conversation, store.StatusClosed))
	// An auto-reply (Reopen false) is stored but leaves it closed.
	mustInbound(t, s, into(a.Conversation, inboxA, "auto@x", 2))
	if c := mustConversation(t, s, a.Conversation); c.Status != store.StatusClosed {
		t.Fatalf("a message without Reopen opened the conversation")
	}
	if e, _ := mustEntries(t, s, inboxView(agent, inboxA)); len(e) != 0 {
		t.Errorf("a closed conversation's message is in INBOX: %+v", e)
	}
	in := into(a.Conversation, inboxA, "c@x", 3)
	in.Reopen = true
	in.SenderRole = store.SenderStranger
	in.NewParticipants = []string{"cow@customer.example"}
	mustInbound(t, s, in)
	c := mustConversation(t, s, a.Conversation)
	if c.Status != store.StatusOpen || !slices.Equal(c.Participants, []string{"cow@customer.example"}) {
		t.Errorf("after a customer message with Reopen: %+v", c)
	}
	entries, _ := mustEntries(t, s, inboxView("a", inboxA))
	if len(entries) != 3 || entries[2].SenderRole != store.SenderStranger {
		t.Errorf("entries after reopening: %+v", entries)
	}
}

func testContinuityCandidate(t *testing.T, s store.Store) {
	ctx := t.Context()
	mk := func(owner, norm string, n int) int64 {
		in := newInbound(inboxA, owner+norm+string(rune('a'+n)), n)
		in.Owner, in.Sender, in.NormSubject = owner, owner, norm
		return mustInbound(t, s, in).Conversation
	}
	old := mk("o@x", "printer", 1)
	recent := mk("o@x", "printer", 10)
	mk("other@x", "printer", 11)
	for _, tc := range []struct {
		inbox, owner, norm string
		since              int
		want               int64
	}{
		{inboxA, "o@x", "printer", 0, recent},
		{inboxA, "o@x", "printer", 20, 0},     // too old
		{inboxA, "o@x", "scanner", 0, 0},      // other subject
		{inboxB, "o@x", "printer", 0, 0},      // other inbox
		{inboxA, "nobody@x", "printer", 0, 0}, // other owner
	} {
		got, found, err := s.ContinuityCandidate(ctx, tc.inbox, tc.owner, tc.norm, at(tc.since))
		if err != nil || got != tc.want || found != (tc.want != 0) {
			t.Errorf("ContinuityCandidate(%+v) = %d %v %v", tc, got, found, err)
		}
	}
	mustUpdate(t, s, setStatus(recent, store.StatusClosed))
	if got, _, _ := s.ContinuityCandidate(ctx, inboxA, "o@x", "printer", at(0)); got != old {
		t.Errorf("with the recent one closed, got %d, want the older open %d", got, old)
	}
}

// conversationCounter is what /metrics reads (internal/metrics), when the
// engine has it.
type conversationCounter interface {
	ConversationCounts(ctx context.Context) (map[store.Status]int64, error)
}

func testConversationCounts(t *testing.T, s store.Store) {
	cc, ok := s.(conversationCounter)
	if !ok {
		t.Skip("the engine does not count conversations")
	}
	ctx := t.Context()
	if counts, err := cc.ConversationCounts(ctx); err != nil || len(counts) != 0 {
		t.Fatalf("empty store: %v, %v", counts, err)
	}
	a := mustInbound(t, s, newInbound(inboxA, "a@x", 1))
	mustInbound(t, s, newInbound(inboxA, "b@x", 2))
	c := mustInbound(t, s, newInbound(inboxB, "c@x", 3))
	mustUpdate(t, s, setStatus(a.Conversation, store.StatusClosed))
	mustUpdate(t, s, setStatus(c.Conversation, store.StatusSpam))
	counts, err := cc.ConversationCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 3 || counts[store.StatusOpen] != 1 || counts[store.StatusClosed] != 1 || counts[store.StatusSpam] != 1 {
		t.Errorf("ConversationCounts = %v, want one of each status", counts)
	}
}

// testChangesAfterCommit: every committed write closes the Changes channel
// after its commit, so that a waiter woken by it reads the change; every
// waiter is woken.
func testChangesAfterCommit(t *testing.T, s store.Store) {
	ctx := t.Context()
	ch := changesOf(t, s)
	if isClosed(ch) {
		t.Fatal("a fresh Changes channel is closed")
	}
	visible := make(chan bool, 1)
	go func() {
		<-ch
		_, found, err := s.ConversationByMessageID(ctx, []string{"first@example.com"})
		visible <- err == nil && found
	}()
	first := mustInbound(t, s, newInbound(inboxA, "first@example.com", 1))
	if !isClosed(ch) {
		t.Fatal("AddInbound returned without closing the Changes channel")
	}
	if !<-visible {
		t.Fatal("a waiter woken by AddInbound could not read the new message")
	}

	steps := []struct {
		name string
		do   func() error
	}{
		{"AddInbound", func() error {
			_, err := s.AddInbound(ctx, newInbound(inboxA, "second@example.com", 2))
			return err
		}},
		{"AddOutbound reply", func() error {
			return s.AddOutbound(ctx, reply(mustReserve(t, s), first.Conversation, agent, "customer@example.com"))
		}},
		{"AddOutbound note", func() error {
			out := reply(mustReserve(t, s), first.Conversation, agent)
			out.Kind = store.KindNote
			return s.AddOutbound(ctx, out)
		}},
		{"SetSeen true", func() error { return s.SetSeen(ctx, agent, []int64{first.Message}, true) }},
		{"SetSeen false", func() error { return s.SetSeen(ctx, agent, []int64{first.Message}, false) }},
		{"UpdateConversation", func() error { return s.UpdateConversation(ctx, addTags(first.Conversation, "vip")) }},
		{"AddEvent", func() error {
			_, err := s.AddEvent(ctx, store.Event{Conversation: first.Conversation, Type: "x", Text: "x", At: at(3)})
			return err
		}},
	}
	for _, step := range steps {
		ch := changesOf(t, s)
		if isClosed(ch) {
			t.Fatalf("before %s: a fresh Changes channel is already closed", step.name)
		}
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if !isClosed(ch) {
			t.Errorf("%s committed without closing the Changes channel", step.name)
		}
		if isClosed(changesOf(t, s)) {
			t.Errorf("after %s: the next Changes channel is already closed", step.name)
		}
	}

	// Every waiter is woken, not just one.
	ch = changesOf(t, s)
	var wg sync.WaitGroup
	woken := make(chan struct{}, 5)
	for range 5 {
		wg.Go(func() {
			select {
			case <-ch:
				woken <- struct{}{}
			case <-ctx.Done():
			}
		})
	}
	mustInbound(t, s, newInbound(inboxA, "third@example.com", 3))
	wg.Wait()
	if len(woken) != 5 {
		t.Errorf("%d of 5 waiters woken", len(woken))
	}
}

// testListConversationsPagesStably: pages follow one another by number, and
// conversations updated while the pages are read (which would jump ahead
// in an order by update) are neither missed nor listed twice.
func testListConversationsPagesStably(t *testing.T, s store.Store) {
	ctx := t.Context()
	var convs []int64
	for i := range 7 {
		r := mustInbound(t, s, newInbound(inboxA, fmt.Sprintf("p%d@x", i), i+1))
		convs = append(convs, r.Conversation)
	}
	seen := map[int64]int{}
	var before int64
	for page := 0; ; page++ {
		list, next, err := s.ListConversations(ctx, "", before, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list {
			seen[c.ID]++
		}
		// Between pages, the oldest conversation, not listed yet, gets a
		// message: it becomes the most recently updated.
		if page == 0 {
			mustInbound(t, s, into(convs[0], inboxA, "late@x", 100))
		}
		if next == 0 {
			break
		}
		if next >= before && before != 0 {
			t.Fatalf("page %d: next %d does not descend from %d", page, next, before)
		}
		before = next
	}
	for _, id := range convs {
		if seen[id] != 1 {
			t.Errorf("conversation %d listed %d times, want once (%v)", id, seen[id], seen)
		}
	}
	if _, _, err := s.ListConversations(ctx, "", 0, 0); err == nil {
		t.Error("a page of 0 was accepted")
	}
}

// testUpdateConversations: several conversations' updates in one
// transaction, each with its events, all or none.
func testUpdateConversations(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mustInbound(t, s, newInbound(inboxA, "ua@x", 1)).Conversation
	b := mustInbound(t, s, newInbound(inboxA, "ub@x", 2)).Conversation
	c := mustInbound(t, s, newInbound(inboxA, "uc@x", 3)).Conversation
	withEvent := func(u store.ConversationUpdate, text string) store.ConversationUpdate {
		u.Events = []store.Event{{Type: "tags-changed", Text: text, At: at(4)}}
		return u
	}
	// Out of order: an engine that locks them takes them in its own order.
	if err := s.UpdateConversations(ctx, []store.ConversationUpdate{
		withEvent(setStatus(c, store.StatusClosed), "closed c"),
		withEvent(addTags(a, "billing"), "tagged a"),
		withEvent(addTags(b, "billing", "urgent"), "tagged b"),
	}); err != nil {
		t.Fatal(err)
	}
	if got := mustConversation(t, s, a).Tags; !slices.Equal(got, []string{"billing"}) {
		t.Errorf("a's tags %v", got)
	}
	if got := mustConversation(t, s, b).Tags; !slices.Equal(got, []string{"billing", "urgent"}) {
		t.Errorf("b's tags %v", got)
	}
	if got := mustConversation(t, s, c).Status; got != store.StatusClosed {
		t.Errorf("c is %s", got)
	}
	for conv, text := range map[int64]string{a: "tagged a", b: "tagged b", c: "closed c"} {
		evs, err := s.Events(ctx, conv)
		if err != nil || len(evs) != 1 || evs[0].Text != text {
			t.Errorf("events of %d: %+v %v", conv, evs, err)
		}
	}
	// One missing: nothing of the batch is applied.
	err := s.UpdateConversations(ctx, []store.ConversationUpdate{
		withEvent(addTags(a, "refund"), "tagged a again"), {Conversation: 999}})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a batch with a missing conversation: %v, want ErrNotFound", err)
	}
	if got := mustConversation(t, s, a).Tags; !slices.Equal(got, []string{"billing"}) {
		t.Errorf("a's tags after the failed batch: %v", got)
	}
	if evs, _ := s.Events(ctx, a); len(evs) != 1 {
		t.Errorf("a has %d events after the failed batch, want 1", len(evs))
	}
}
