package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/supportgate/supportgate/store"
)

// The properties several writers must keep (issue 15; DESIGN.md §13 "UIDs
// across nodes"). Each starts writers at once from goroutines and waits for
// them; none sleeps. They take a T so that the suite's own tests can see
// them fail on deliberately broken engines.

// incReader is one IMAP session's picture of a view, kept up to date by
// incremental reads only.
type incReader struct {
	inc     store.IncrementalEntries
	view    store.MailboxView
	changes bool // EntryChanges; otherwise EntriesSince
	have    []store.MailboxEntry
	cur     store.FolderCursor
	seen    map[uint32]bool
	maxSeen uint32
	name    string
}

// read brings the picture up to date and checks what it read: the entries
// a read returns ascend, and every UID it shows for the first time is above
// every UID shown before (a lower one, committed later, is what a reader
// reading above its last UID misses). It returns false on an error.
func (r *incReader) read(t T, ctx context.Context) bool {
	var got []store.MailboxEntry
	if r.changes {
		c, err := r.inc.EntryChanges(ctx, r.view, r.cur)
		if err != nil {
			t.Errorf("%s: EntryChanges: %v", r.name, err)
			return false
		}
		got, r.have, r.cur = c.Entries, applyChanges(r.have, c), c.Cursor
	} else {
		es, _, next, appended, err := r.inc.EntriesSince(ctx, r.view, r.cur)
		if err != nil {
			t.Errorf("%s: EntriesSince: %v", r.name, err)
			return false
		}
		got, r.cur = es, next
		if appended {
			r.have = append(r.have, es...)
		} else {
			r.have = es
		}
	}
	ok := true
	for i := 1; i < len(got); i++ {
		if got[i].UID <= got[i-1].UID {
			t.Errorf("%s: a read returned UID %d after %d", r.name, got[i].UID, got[i-1].UID)
			ok = false
			break
		}
	}
	next := r.maxSeen
	for i, e := range r.have {
		if i > 0 && e.UID <= r.have[i-1].UID && ok {
			t.Errorf("%s: the picture holds UID %d after %d", r.name, e.UID, r.have[i-1].UID)
			ok = false
		}
		if !r.seen[e.UID] {
			if e.UID <= r.maxSeen {
				t.Errorf("%s: UID %d (message %d) appeared after UID %d was read: an incremental read misses it",
					r.name, e.UID, e.Message, r.maxSeen)
			}
			r.seen[e.UID] = true
			next = max(next, e.UID)
		}
	}
	r.maxSeen = next
	return true
}

// follow reads at every change until stop is closed, then once more.
func (r *incReader) follow(t T, ctx context.Context, s store.Store, stop <-chan struct{}) {
	sub := s.Subscribe(store.Filter{All: true})
	defer sub.Close()
	for {
		ch := sub.Changed()
		if !r.read(t, ctx) {
			return
		}
		select {
		case <-stop:
			r.read(t, ctx)
			return
		case <-ch:
		}
	}
}

// CheckIncrementalReads: while 8 writers store messages (new conversations
// and messages into them) and another rewrites existing entries (tags,
// \Seen), readers following the view by incremental reads only
// (EntriesSince, EntryChanges) see UIDs ascend, never a UID below one they
// saw before, and end with exactly what a full read gives; each writer's
// messages get ascending UIDs.
func CheckIncrementalReads(t T, s store.Store) {
	t.Helper()
	inc, ok := s.(store.IncrementalEntries)
	if !ok {
		t.Fatalf("the engine does not implement store.IncrementalEntries")
	}
	ctx := t.Context()
	view := inboxView(agent, inboxA)
	seed := mustInbound(t, s, newInbound(inboxA, "seed@example.com", 0))
	mustInbound(t, s, into(seed.Conversation, inboxA, "seed2@example.com", 1))

	const writers, each, readers = 8, 10, 4
	rs := make([]*incReader, readers)
	for i := range rs {
		rs[i] = &incReader{inc: inc, view: view, changes: i%2 == 1, seen: map[uint32]bool{}, name: fmt.Sprintf("reader %d", i)}
		if !rs[i].read(t, ctx) {
			t.Fatalf("the first read failed")
		}
	}
	stop, start := make(chan struct{}), make(chan struct{})
	var readWG, writeWG sync.WaitGroup
	for _, r := range rs {
		readWG.Go(func() { r.follow(t, ctx, s, stop) })
	}
	stored := make([][]int64, writers)
	for w := range writers {
		writeWG.Go(func() {
			<-start
			var conv int64
			for i := range each {
				in := newInbound(inboxA, fmt.Sprintf("w%d-%d@example.com", w, i), 10+w*each+i)
				if i%2 == 1 {
					in.Conversation = conv
				}
				res, err := s.AddInbound(ctx, in)
				if err != nil {
					t.Errorf("writer %d: AddInbound: %v", w, err)
					return
				}
				conv = res.Conversation
				stored[w] = append(stored[w], res.Message)
			}
		})
	}
	writeWG.Go(func() {
		<-start
		for i := range each {
			if err := s.UpdateConversation(ctx, addTags(seed.Conversation, fmt.Sprintf("t%d", i))); err != nil {
				t.Errorf("rewriter: %v", err)
				return
			}
			if err := s.SetSeen(ctx, agent, []int64{seed.Message}, i%2 == 0); err != nil {
				t.Errorf("rewriter: %v", err)
				return
			}
		}
	})
	close(start)
	writeWG.Wait()
	close(stop)
	readWG.Wait()

	// Several entries at once, read together.
	for i := range 3 {
		mustInbound(t, s, newInbound(inboxA, fmt.Sprintf("tail%d@example.com", i), 1000+i))
	}
	for _, r := range rs {
		r.read(t, ctx)
	}

	full, next := mustEntries(t, s, view)
	uidOf := map[int64]uint32{}
	for i, e := range full {
		if i > 0 && e.UID <= full[i-1].UID || e.UID >= next {
			t.Errorf("the full read has UID %d at %d (UIDNEXT %d)", e.UID, i, next)
		}
		uidOf[e.Message] = e.UID
	}
	if want := 2 + writers*each + 3; len(full) != want {
		t.Errorf("the full read has %d entries, want %d", len(full), want)
	}
	for w, msgs := range stored {
		for i, m := range msgs {
			if _, ok := uidOf[m]; !ok {
				t.Errorf("writer %d's message %d is not in the view", w, m)
			} else if i > 0 && uidOf[m] <= uidOf[msgs[i-1]] {
				t.Errorf("writer %d: message %d got UID %d, not above its previous message's %d", w, m, uidOf[m], uidOf[msgs[i-1]])
			}
		}
	}
	for _, r := range rs {
		if !reflect.DeepEqual(r.have, full) {
			t.Errorf("%s: incremental reads give %d entries (messages %v), a full read %d (messages %v)",
				r.name, len(r.have), messagesOf(r.have), len(full), messagesOf(full))
		}
	}
}

// CheckMessageIDOnce: many goroutines storing the same Message-ID at once,
// as a new conversation or into one: exactly one stores it, the others are
// told Duplicate with the same message and conversation.
func CheckMessageIDOnce(t T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	base := mustInbound(t, s, newInbound(inboxA, "base@example.com", 0))
	const rounds, goroutines = 4, 8
	for r := range rounds {
		id := fmt.Sprintf("dup%d@example.com", r)
		results := make([]store.InboundResult, goroutines)
		start := make(chan struct{})
		var wg sync.WaitGroup
		failed := false
		var mu sync.Mutex
		for g := range goroutines {
			wg.Go(func() {
				in := newInbound(inboxA, id, 1+r*goroutines+g)
				in.Raw = fmt.Appendf(rawMessage(id), "copy %d\r\n", g)
				if r%2 == 1 {
					in.Conversation = base.Conversation
				}
				<-start
				res, err := s.AddInbound(ctx, in)
				if err != nil {
					t.Errorf("AddInbound(%s) copy %d: %v", id, g, err)
					mu.Lock()
					failed = true
					mu.Unlock()
				}
				results[g] = res
			})
		}
		close(start)
		wg.Wait()
		if failed {
			t.Fatalf("round %d: AddInbound failed", r)
		}
		var kept []store.InboundResult
		for _, res := range results {
			if !res.Duplicate {
				kept = append(kept, res)
			}
		}
		if len(kept) != 1 {
			t.Errorf("%s stored %d times at once, want once: %+v", id, len(kept), results)
			continue
		}
		for g, res := range results {
			if res.Message != kept[0].Message || res.Conversation != kept[0].Conversation {
				t.Errorf("%s copy %d: %+v, want message %d in conversation %d", id, g, res, kept[0].Message, kept[0].Conversation)
			}
		}
		if m, err := s.MessageByHeaderID(ctx, id); err != nil || m.ID != kept[0].Message {
			t.Errorf("MessageByHeaderID(%s) = %+v, %v; want message %d", id, m, err, kept[0].Message)
		}
		msgs, err := s.ConversationMessages(ctx, kept[0].Conversation)
		if err != nil {
			t.Fatalf("ConversationMessages: %v", err)
		}
		if n := len(slices.DeleteFunc(msgs, func(m store.Message) bool { return m.MessageIDHeader != id })); n != 1 {
			t.Errorf("conversation %d holds %d messages with Message-ID %s, want 1", kept[0].Conversation, n, id)
		}
	}
	if n, want := conversationCount(t, s), 1+rounds/2; n != want {
		t.Errorf("%d conversations, want %d (the base and one per round of new ones)", n, want)
	}
	entries, _ := mustEntries(t, s, inboxView(agent, inboxA))
	if want := 1 + rounds; len(entries) != want {
		t.Errorf("INBOX holds %d entries, want %d", len(entries), want)
	}
}

// CheckParticipantCap: messages arriving at once, each adding participants,
// never take a conversation over its cap (counted in the storing
// transaction): inbound ones are stored with those over it left out and an
// event; agents' ones over it are refused with ErrParticipantCap and write
// nothing, their quick actions included.
func CheckParticipantCap(t T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	const goroutines, limit = 8, 2
	capped := store.ParticipantCap{Max: limit, Enforce: true}
	first := mustInbound(t, s, newInbound(inboxA, "cap0@customer.example", 1))
	concurrently(t, goroutines, func(g int) error {
		in := into(first.Conversation, inboxA, fmt.Sprintf("cap%d@customer.example", g+1), 2+g)
		in.NewParticipants, in.Cap = []string{fmt.Sprintf("p%d@customer.example", g)}, capped
		_, err := s.AddInbound(ctx, in)
		return err
	})
	c := mustConversation(t, s, first.Conversation)
	if len(c.Participants) != limit {
		t.Errorf("inbound messages at once: participants %v with a cap of %d, want %d", c.Participants, limit, limit)
	}
	if eventsOfType(t, s, first.Conversation, "participants-over-cap") == 0 {
		t.Errorf("no event tells the team of those left out")
	}

	// Agents' messages at once into a new conversation.
	second := mustInbound(t, s, newInbound(inboxA, "cap-out@customer.example", 20))
	msgs := make([]int64, goroutines)
	for g := range msgs {
		msgs[g] = mustReserve(t, s)
	}
	errs := concurrently(t, goroutines, func(g int) error {
		out := reply(msgs[g], second.Conversation, agent, "customer@example.com", fmt.Sprintf("q%d@customer.example", g))
		out.NewParticipants, out.Cap = []string{fmt.Sprintf("q%d@customer.example", g)}, capped
		err := s.AddOutbound(ctx, out)
		if errors.Is(err, store.ErrParticipantCap) {
			return nil
		}
		return err
	})
	c = mustConversation(t, s, second.Conversation)
	var want []string
	for g, err := range errs {
		_, merr := s.Message(ctx, msgs[g])
		switch {
		case err != nil:
		case merr == nil:
			want = append(want, fmt.Sprintf("q%d@customer.example", g))
		case !errors.Is(merr, store.ErrNotFound):
			t.Errorf("Message(%d): %v", msgs[g], merr)
		}
	}
	if len(c.Participants) > limit || len(want) != len(c.Participants) || !sameSet(want, c.Participants) {
		t.Errorf("agents' messages at once: participants %v, messages recorded for %v; want at most %d, the same",
			c.Participants, want, limit)
	}
	if len(want) != limit {
		t.Errorf("%d agents' messages recorded within a cap of %d", len(want), limit)
	}

	// One over the cap writes nothing, quick actions included; within it,
	// the message and its actions commit together.
	out := reply(mustReserve(t, s), second.Conversation, agent, "z@customer.example")
	out.NewParticipants, out.Cap = []string{"z@customer.example"}, capped
	out.Update = &store.ConversationUpdate{AddTags: []string{"vip"}}
	if err := s.AddOutbound(ctx, out); !errors.Is(err, store.ErrParticipantCap) {
		t.Fatalf("a reply over the cap: %v, want ErrParticipantCap", err)
	}
	if c := mustConversation(t, s, second.Conversation); len(c.Tags) != 0 || len(c.Participants) > limit {
		t.Errorf("the refused reply changed the conversation: %+v", c)
	}
	if rs, err := s.MessageRecipients(ctx, out.Message); err != nil || len(rs) != 0 {
		t.Errorf("the refused reply was queued: %+v, %v", rs, err)
	}
	out.NewParticipants = nil
	assignee := agent
	out.Update = &store.ConversationUpdate{AddTags: []string{"vip"}, Assignee: &assignee}
	mustOutbound(t, s, out)
	if c := mustConversation(t, s, second.Conversation); !slices.Equal(c.Tags, []string{"vip"}) || c.Assignee != assignee {
		t.Errorf("the reply's actions: %+v", c)
	}
}

// CheckExclusiveClaims: workers claiming the same due recipients at once,
// by BeginAttempts and by BeginAttempt, claim each recipient exactly once.
func CheckExclusiveClaims(t T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	var keys []store.RecipientKey
	for m := range 4 {
		var rcpts []string
		for r := range 5 {
			rcpts = append(rcpts, fmt.Sprintf("r%d-%d@customer.example", m, r))
		}
		for _, q := range queuedReply(t, s, rcpts...) {
			keys = append(keys, q.Key())
		}
	}
	now := time.Now().Truncate(time.Millisecond)
	due, err := s.DueRecipients(ctx, now, 1000)
	if err != nil || len(due) != len(keys) {
		t.Fatalf("DueRecipients = %d, %v; want %d", len(due), err, len(keys))
	}
	const workers = 8
	var mu sync.Mutex
	claimed := map[store.RecipientKey]int{}
	concurrently(t, workers, func(w int) error {
		// Each worker goes through the due recipients from another place.
		order := slices.Concat(keys[w*len(keys)/workers:], keys[:w*len(keys)/workers])
		var got []store.RecipientKey
		if w%2 == 0 {
			claims := make([]store.Claim, len(order))
			for i, k := range order {
				claims[i] = store.Claim{Key: k, RetryAt: now.Add(time.Hour)}
			}
			ok, err := s.BeginAttempts(ctx, claims, now)
			if err != nil {
				return err
			}
			for i, k := range order {
				if i < len(ok) && ok[i] {
					got = append(got, k)
				}
			}
		} else {
			for _, k := range order {
				ok, err := s.BeginAttempt(ctx, k, now, now.Add(time.Hour))
				if err != nil {
					return err
				}
				if ok {
					got = append(got, k)
				}
			}
		}
		mu.Lock()
		for _, k := range got {
			claimed[k]++
		}
		mu.Unlock()
		return nil
	})
	for _, k := range keys {
		if n := claimed[k]; n != 1 {
			t.Errorf("recipient %+v claimed %d times, want once", k, n)
		}
	}
	rs, err := s.QueueRecipients(ctx, 0, false)
	if err != nil {
		t.Fatalf("QueueRecipients: %v", err)
	}
	for _, r := range rs {
		if r.Attempts != 1 || !r.NextAttempt.Equal(now.Add(time.Hour)) {
			t.Errorf("recipient %s: %d attempts, next %v; want 1 and the claim's retry time", r.Recipient, r.Attempts, r.NextAttempt)
		}
	}
}

// concurrently runs f for 0..n-1 in goroutines started at once, waits for
// them, and returns their errors; an error other than the caller's
// expected ones fails the test.
func concurrently(t T, n int, f func(i int) error) []error {
	t.Helper()
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	return errs
}

// sameSet reports whether a and b hold the same strings.
func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}
