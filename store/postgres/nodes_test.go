package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// Several nodes on one database (DESIGN.md §15): each test opens two
// stores, two pools, on one database, as two supportgate nodes would.

func twoNodes(t *testing.T) (a, b *Store) {
	t.Helper()
	dsn := pg.DSN(t)
	return openTest(t, dsn), openTest(t, dsn)
}

// waitChange reports whether ch is closed within a generous deadline.
func waitChange(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

// TestNodesMigrateOnce: nodes starting at once on an empty database all
// open it, and the schema is migrated once.
func TestNodesMigrateOnce(t *testing.T) {
	dsn := pg.DSN(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := Open(t.Context(), dsn)
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := openTest(t, dsn)
	if n := count(t, s, "schema_migrations"); n != len(migrations) {
		t.Fatalf("%d migrations recorded, want %d", n, len(migrations))
	}
}

// TestNodesInboundLandsInSameConversations: mail arriving at both nodes
// at once threads into the same conversations, a message delivered to both
// is stored once, and each node sees every message.
func TestNodesInboundLandsInSameConversations(t *testing.T) {
	a, b := twoNodes(t)
	ctx := t.Context()
	const convs, each = 6, 8
	var first [convs]store.InboundResult
	for c := range convs {
		first[c] = mustInbound(t, a, newInbound(inboxA, fmt.Sprintf("c%d@example.com", c), c))
	}
	type result struct {
		conv int
		res  store.InboundResult
	}
	results := make(chan result, 2*convs*each+2*convs)
	errs := make(chan error, 2*convs*each+2*convs)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for n, node := range []*Store{a, b} {
		for c := range convs {
			wg.Go(func() {
				<-start
				for i := range each {
					in := newInbound(inboxA, fmt.Sprintf("n%d-c%d-m%d@example.com", n, c, i), 100+i)
					in.Conversation = first[c].Conversation
					in.NewParticipants = []string{fmt.Sprintf("p%d@example.com", i%3)}
					res, err := node.AddInbound(ctx, in)
					if err != nil {
						errs <- err
						return
					}
					results <- result{c, res}
				}
				// The same message, delivered to both nodes (a sender's
				// retry after a lost 250): stored once.
				res, err := node.AddInbound(ctx, newInbound(inboxA, fmt.Sprintf("shared-c%d@example.com", c), 999))
				if err != nil {
					errs <- err
					return
				}
				results <- result{-1 - c, res}
			})
		}
	}
	close(start)
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	stored := map[int64]bool{}
	sharedStored := map[int]int{}
	sharedMessage := map[int]int64{}
	for r := range results {
		if r.conv < 0 {
			c := -1 - r.conv
			if !r.res.Duplicate {
				sharedStored[c]++
			}
			if m, ok := sharedMessage[c]; ok && m != r.res.Message {
				t.Errorf("shared message %d stored as %d and %d", c, m, r.res.Message)
			}
			sharedMessage[c] = r.res.Message
			stored[r.res.Message] = true
			continue
		}
		if r.res.Duplicate || stored[r.res.Message] {
			t.Fatalf("result %+v repeats a message", r.res)
		}
		stored[r.res.Message] = true
		if r.res.Conversation != first[r.conv].Conversation {
			t.Errorf("a message of conversation %d went to %d", first[r.conv].Conversation, r.res.Conversation)
		}
	}
	for c := range convs {
		if sharedStored[c] != 1 {
			t.Errorf("shared message %d stored %d times, want once", c, sharedStored[c])
		}
		conv, err := b.Conversation(ctx, first[c].Conversation)
		if err != nil {
			t.Fatal(err)
		}
		// Participants added at once from both nodes: each once, in
		// positions 1, 2, 3.
		if len(conv.Participants) != 3 {
			t.Errorf("conversation %d participants %v, want 3 distinct", conv.ID, conv.Participants)
		}
	}
	view := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}}
	ea, nextA := mustEntries(t, a, view)
	eb, nextB := mustEntries(t, b, view)
	if want := convs + 2*convs*each + convs; len(eb) != want || len(ea) != want {
		t.Fatalf("node A sees %d entries, node B %d, want %d", len(ea), len(eb), want)
	}
	if nextA != nextB || !slices.Equal(uids(t, ea), uids(t, eb)) {
		t.Fatal("the nodes see different UIDs")
	}
}

// TestNodesIncrementalReaderSeesEveryUID: while node A's writers store
// messages concurrently, a reader on node B that reads only what was
// added since its last read (EntriesSince) sees UIDs strictly ascend and
// misses none: UIDs are committed in order (DESIGN.md §13, "UIDs across
// nodes").
func TestNodesIncrementalReaderSeesEveryUID(t *testing.T) {
	a, b := twoNodes(t)
	ctx := t.Context()
	view := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}}
	const writers, each = 8, 25
	done := make(chan struct{})
	errs := make(chan error, writers+1)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			var conv int64
			for i := range each {
				in := newInbound(inboxA, fmt.Sprintf("w%d-%d@example.com", w, i), i)
				in.Conversation = conv
				res, err := a.AddInbound(ctx, in)
				if err != nil {
					errs <- err
					return
				}
				conv = res.Conversation
				if i%5 == 4 {
					// A rewrite now and then: readers patch or re-read.
					if err := a.SetSeen(ctx, agent, []int64{res.Message}, true); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	var seen []store.MailboxEntry
	var reads, appendedReads int
	read := func() error {
		var cur store.FolderCursor
		for {
			changes := b.Changes()
			select {
			case <-done:
				return nil
			default:
			}
			entries, _, next, appended, err := b.EntriesSince(ctx, view, cur)
			if err != nil {
				return err
			}
			reads++
			if appended {
				appendedReads++
				for _, e := range entries {
					if len(seen) > 0 && e.UID <= seen[len(seen)-1].UID {
						return fmt.Errorf("UID %d read after %d", e.UID, seen[len(seen)-1].UID)
					}
					seen = append(seen, e)
				}
			} else {
				seen = entries
			}
			cur = next
			select {
			case <-changes:
			case <-done:
			}
		}
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		if err := read(); err != nil {
			errs <- err
		}
	}()
	wg.Wait()
	close(done)
	<-readerDone
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// One last incremental read from the reader's picture gives the full
	// picture: nothing was missed.
	full, _ := mustEntries(t, b, view)
	if len(full) != writers*each {
		t.Fatalf("%d entries, want %d", len(full), writers*each)
	}
	if len(seen) > len(full) {
		t.Fatalf("the reader holds %d entries, more than the %d there are", len(seen), len(full))
	}
	for i, e := range seen {
		if full[i].UID != e.UID {
			t.Fatalf("entry %d: the reader has UID %d, a full read %d: a UID was missed", i, e.UID, full[i].UID)
		}
	}
	t.Logf("%d reads, %d of them incremental", reads, appendedReads)
}

// TestNodesQueueLease: a recipient claimed by node A is not claimed by
// node B until the claim's retry time (its lease) passes; then B takes it
// over. Claims made at once on both nodes: one wins.
func TestNodesQueueLease(t *testing.T) {
	a, b := twoNodes(t)
	ctx := t.Context()
	rs := queuedReply(t, a, "x@customer.example", "y@customer.example")
	now := time.Now()
	lease := now.Add(5 * time.Minute)
	if ok, err := a.BeginAttempt(ctx, rs[0].Key(), now, lease); err != nil || !ok {
		t.Fatalf("node A's claim: %v, %v", ok, err)
	}
	if ok, err := b.BeginAttempt(ctx, rs[0].Key(), now.Add(time.Minute), now.Add(10*time.Minute)); err != nil || ok {
		t.Fatalf("node B claimed a row node A holds: %v, %v", ok, err)
	}
	if due, err := b.DueRecipients(ctx, now.Add(time.Minute), 10); err != nil || len(due) != 1 || due[0].Recipient != "y@customer.example" {
		t.Fatalf("due on node B within the lease: %+v, %v", due, err)
	}
	// Node A died: after the lease, node B takes the recipient over.
	after := lease.Add(time.Second)
	if ok, err := b.BeginAttempt(ctx, rs[0].Key(), after, after.Add(5*time.Minute)); err != nil || !ok {
		t.Fatalf("node B's claim after the lease: %v, %v", ok, err)
	}
	got, err := b.MessageRecipients(ctx, rs[0].Message)
	if err != nil || got[0].Attempts != 2 {
		t.Fatalf("after two claims: %+v, %v", got, err)
	}
	if ok, err := b.FinishAttempt(ctx, rs[0].Key(), store.AttemptResult{State: store.RecipientDelivered, At: after}); err != nil || !ok {
		t.Fatalf("node B's delivery: %v, %v", ok, err)
	}

	// Both nodes claim the other recipient at once, many times over:
	// exactly one claim wins.
	var wg sync.WaitGroup
	wins := make(chan bool, 20)
	for i := range 20 {
		node := []*Store{a, b}[i%2]
		wg.Go(func() {
			ok, err := node.BeginAttempt(ctx, rs[1].Key(), now, lease)
			if err != nil {
				t.Error(err)
			}
			wins <- ok
		})
	}
	wg.Wait()
	close(wins)
	n := 0
	for ok := range wins {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d concurrent claims won, want 1", n)
	}
}

// TestNodesShareState: what one node writes, the other sees at once, and
// is woken for: UIDVALIDITY, round-robin turns, the acknowledgement limit,
// private mailboxes.
func TestNodesShareState(t *testing.T) {
	a, b := twoNodes(t)
	ctx := t.Context()

	// A change committed on A wakes B's sessions, and B reads it then.
	ch := b.Changes()
	res := mustInbound(t, a, newInbound(inboxA, "wake@example.com", 1))
	if !waitChange(ch) {
		t.Fatal("node B was not told of node A's change")
	}
	if _, found, err := b.ConversationByMessageID(ctx, []string{"wake@example.com"}); err != nil || !found {
		t.Fatalf("node B woken but cannot read the change: %v %v", found, err)
	}
	ch = a.Changes()
	if err := b.UpdateConversation(ctx, store.StatusUpdate(res.Conversation, store.StatusClosed)); err != nil {
		t.Fatal(err)
	}
	if !waitChange(ch) {
		t.Fatal("node A was not told of node B's change")
	}

	view := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}}
	va, vb := mustUIDValidity(t, a, view), mustUIDValidity(t, b, view)
	if va != vb {
		t.Fatalf("UIDVALIDITY %d on node A, %d on node B", va, vb)
	}

	// Round-robin across nodes: turns alternate whichever node opens.
	agents := []string{"alice@example.com", "bob@example.com", "carol@example.com"}
	var wg sync.WaitGroup
	assigned := make(chan string, 30)
	for i := range 30 {
		node := []*Store{a, b}[i%2]
		wg.Go(func() {
			in := newInbound(inboxA, fmt.Sprintf("rr%d@example.com", i), i)
			in.AssignInTurn = &store.RoundRobin{Agents: agents}
			res, err := node.AddInbound(ctx, in)
			if err != nil {
				t.Error(err)
			}
			assigned <- res.Assignee
		})
	}
	wg.Wait()
	close(assigned)
	per := map[string]int{}
	for a := range assigned {
		per[a]++
	}
	for _, ag := range agents {
		if per[ag] != 10 {
			t.Errorf("round-robin across nodes: %v, want 10 each", per)
			break
		}
	}

	// The acknowledgement limit counted across nodes: one of two at once.
	c1, c2 := newConversation(t, a, "ack1@x"), newConversation(t, b, "ack2@x")
	outcomes := make(chan store.AutoAckOutcome, 2)
	for i, node := range []*Store{a, b} {
		conv := []int64{c1, c2}[i]
		ack := newAck(t, node, conv, "support@x.test", "customer@example.com", at(5), 1)
		wg.Go(func() {
			o, err := node.QueueAutoAck(ctx, ack)
			if err != nil {
				t.Error(err)
			}
			outcomes <- o
		})
	}
	wg.Wait()
	close(outcomes)
	var queued int
	for o := range outcomes {
		if o == store.AutoAckQueued {
			queued++
		}
	}
	if queued != 1 {
		t.Errorf("%d acknowledgements queued at once under a limit of 1", queued)
	}

	// Private mailboxes created at once on both nodes: one wins.
	errs := make(chan error, 2)
	for _, node := range []*Store{a, b} {
		wg.Go(func() { errs <- node.CreateMailbox(ctx, agent, "Projects/2026") })
	}
	wg.Wait()
	close(errs)
	var created, exists int
	for err := range errs {
		switch {
		case err == nil:
			created++
		case errors.Is(err, store.ErrExists):
			exists++
		default:
			t.Error(err)
		}
	}
	if created != 1 || exists != 1 {
		t.Errorf("a mailbox created at once on two nodes: %d created, %d told it exists", created, exists)
	}
	ma, err := a.PrivateMailboxes(ctx, agent)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := b.PrivateMailboxes(context.Background(), agent)
	if err != nil || !slices.Equal(ma, mb) || len(ma) != 5 {
		t.Errorf("mailboxes on node A %v, on node B %v (%v)", ma, mb, err)
	}
}

// TestNodesMixedWritesDoNotDeadlock: two nodes doing every kind of write
// at once on the same conversations (mail, replies with quick actions,
// flags, status and assignee changes, marks, private mailboxes) all
// succeed, and the lock order of the package comment keeps PostgreSQL
// from having to break deadlocks (each costs deadlock_timeout, a second;
// the test logs any transaction run again). The folder's UIDs still
// ascend.
func TestNodesMixedWritesDoNotDeadlock(t *testing.T) {
	a, b := twoNodes(t)
	ctx := t.Context()
	const convs, rounds = 4, 12
	var conv [convs]int64
	for c := range convs {
		conv[c] = mustInbound(t, a, newInbound(inboxA, fmt.Sprintf("mix%d@example.com", c), c)).Conversation
	}
	view := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}}
	var wg sync.WaitGroup
	for n, node := range []*Store{a, b} {
		for c := range convs {
			wg.Go(func() {
				me := fmt.Sprintf("agent%d@support.example.com", n)
				for i := range rounds {
					var err error
					switch i % 6 {
					case 0:
						in := newInbound(inboxA, fmt.Sprintf("mix-n%d-c%d-%d@example.com", n, c, i), i)
						in.Conversation, in.Reopen = conv[c], true
						_, err = node.AddInbound(ctx, in)
					case 1:
						var msg int64
						if msg, err = node.NextMessageNumber(ctx); err == nil {
							out := reply(msg, conv[c], me, "customer@example.com")
							tag := fmt.Sprintf("t%d", i)
							out.Update = &store.ConversationUpdate{AddTags: []string{tag}, Assignee: &me}
							err = node.AddOutbound(ctx, out)
						}
					case 2:
						var entries []store.MailboxEntry
						if entries, _, err = node.Entries(ctx, view); err == nil && len(entries) > 0 {
							err = node.SetSeen(ctx, me, []int64{entries[len(entries)-1].Message}, true)
							if err == nil {
								err = node.SetMarks(ctx, me, store.FolderInbox, []uint32{entries[0].UID}, store.MarkDeleted, true)
							}
						}
					case 3:
						err = node.UpdateConversation(ctx, store.StatusUpdate(conv[(c+n)%convs], store.StatusClosed))
					case 4:
						err = node.UpdateConversation(ctx, store.AssigneeUpdate(conv[(c+1)%convs], me))
					case 5:
						_, _, err = node.AddPrivate(ctx, me, store.MailboxDrafts, []store.PrivateMessage{{Raw: rawMessage("draft")}})
					}
					if err != nil {
						t.Errorf("node %d, conversation %d, round %d: %v", n, c, i, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if r := a.retried.Load() + b.retried.Load(); r > 0 {
		t.Logf("%d transactions were run again after a deadlock or serialization failure", r)
	}
	full, err := b.EntryChanges(ctx, view, store.FolderCursor{})
	if err != nil {
		t.Fatal(err)
	}
	uids(t, full.Entries)
}

// TestNodesShareSecret: the first node's secret is every node's.
func TestNodesShareSecret(t *testing.T) {
	a, b := twoNodes(t)
	first, err := a.SharedSecret(t.Context(), "token", []byte("first node's key"))
	if err != nil || string(first) != "first node's key" {
		t.Fatalf("the first node's secret: %q, %v", first, err)
	}
	got, err := b.SharedSecret(t.Context(), "token", []byte("second node's key"))
	if err != nil || string(got) != "first node's key" {
		t.Fatalf("the second node got %q, %v; want the first node's", got, err)
	}
}

// TestBatchUpdatesDoNotDeadlock: batches of conversation updates
// (UpdateConversations, an IMAP command's) over the same conversations in
// different orders, beside writes that take the counters, never deadlock:
// a batch locks all its conversations before any counter (conversation.go).
func TestBatchUpdatesDoNotDeadlock(t *testing.T) {
	a, b := twoNodes(t)
	ctx := t.Context()
	const convs, rounds = 5, 10
	var conv [convs]int64
	var msgs []int64
	for c := range convs {
		res := mustInbound(t, a, newInbound(inboxA, fmt.Sprintf("batch%d@example.com", c), c))
		conv[c], msgs = res.Conversation, append(msgs, res.Message)
	}
	var wg sync.WaitGroup
	for n, node := range []*Store{a, b, a, b, a, b} {
		wg.Go(func() {
			for i := range rounds {
				us := make([]store.ConversationUpdate, convs)
				for k := range convs {
					c := conv[(k+n*2+i)%convs] // each its own order
					us[k] = store.ConversationUpdate{Conversation: c, AddTags: []string{fmt.Sprintf("t%d-%d", n, i)},
						Events: []store.Event{{Type: "tags-changed", Text: "tagged", At: time.Now()}}}
				}
				if err := node.UpdateConversations(ctx, us); err != nil {
					t.Errorf("batch %d of %d: %v", i, n, err)
					return
				}
				// One conversation alone: it locks that one, then the counters.
				single := store.ConversationUpdate{Conversation: conv[(n+i)%convs], AddTags: []string{fmt.Sprintf("s%d-%d", n, i)}}
				if err := node.UpdateConversation(ctx, single); err != nil {
					t.Errorf("update %d of %d: %v", i, n, err)
					return
				}
				if err := node.SetSeen(ctx, agent, msgs[i%convs:], i%2 == 0); err != nil {
					t.Errorf("seen %d of %d: %v", i, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if r := a.retried.Load() + b.retried.Load(); r > 0 {
		t.Errorf("%d transactions were run again after a deadlock", r)
	}
}
