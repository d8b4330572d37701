package postgres

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// waitClosed reports whether ch is closed within a generous deadline.
func waitClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

func TestChangesAfterCommit(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := t.Context()

	// A waiter woken by the change must find the change already readable
	// (through the read pool, as every reader does): the hub is published
	// after the commit, not before.
	ch := s.Changes()
	if isClosed(ch) {
		t.Fatal("a fresh Changes channel is closed")
	}
	visible := make(chan bool, 1)
	go func() {
		<-ch
		_, found, err := s.ConversationByMessageID(context.Background(), []string{"first@example.com"})
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
	}
	for _, step := range steps {
		ch := s.Changes()
		if isClosed(ch) {
			t.Fatalf("before %s: a fresh Changes channel is already closed", step.name)
		}
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if !isClosed(ch) {
			t.Errorf("%s committed without closing the Changes channel", step.name)
		}
		if isClosed(s.Changes()) {
			t.Errorf("after %s: the next Changes channel is already closed", step.name)
		}
	}

	// Every waiter is woken, not just one.
	ch = s.Changes()
	var wg sync.WaitGroup
	woken := make(chan struct{}, 5)
	for i := 0; i < 5; i++ {
		wg.Go(func() {
			if waitClosed(ch) {
				woken <- struct{}{}
			}
		})
	}
	mustInbound(t, s, newInbound(inboxA, "third@example.com", 3))
	wg.Wait()
	if len(woken) != 5 {
		t.Errorf("%d of 5 waiters woken", len(woken))
	}
}

func TestConcurrentAddInbound(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	const goroutines, each = 20, 10
	ctx := t.Context()
	type stored struct {
		res store.InboundResult
		raw []byte
	}
	results := make([][]stored, goroutines)
	errs := make(chan error, goroutines*each*2)
	var dups sync.Map // goroutine → result for the shared Message-ID
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			var conv int64
			for i := range each {
				in := newInbound(inboxA, fmt.Sprintf("g%d-m%d@example.com", g, i), g*each+i)
				in.Conversation = conv // the first starts a conversation, the rest thread into it
				res, err := s.AddInbound(ctx, in)
				if err != nil {
					errs <- fmt.Errorf("goroutine %d message %d: %w", g, i, err)
					return
				}
				conv = res.Conversation
				results[g] = append(results[g], stored{res, in.Raw})
				// Readers run beside the writer.
				if _, _, err := s.Entries(ctx, store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}}); err != nil {
					errs <- fmt.Errorf("goroutine %d: Entries: %w", g, err)
					return
				}
			}
			// Everybody delivers the same message once more: it is stored once.
			res, err := s.AddInbound(ctx, newInbound(inboxA, "shared@example.com", 999))
			if err != nil {
				errs <- fmt.Errorf("goroutine %d shared message: %w", g, err)
				return
			}
			dups.Store(g, res)
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	messages := map[int64]bool{}
	for g, l := range results {
		if len(l) != each {
			t.Fatalf("goroutine %d stored %d messages, want %d", g, len(l), each)
		}
		for _, st := range l {
			if st.res.Duplicate || messages[st.res.Message] {
				t.Fatalf("goroutine %d: result %+v repeats a message", g, st.res)
			}
			messages[st.res.Message] = true
			if st.res.Conversation != l[0].res.Conversation {
				t.Errorf("goroutine %d: message %d in conversation %d, want %d", g, st.res.Message, st.res.Conversation, l[0].res.Conversation)
			}
			raw, err := s.MessageRaw(ctx, st.res.Message)
			if err != nil || !bytes.Equal(raw, st.raw) {
				t.Errorf("MessageRaw(%d) = %q, %v; want %q", st.res.Message, raw, err, st.raw)
			}
		}
	}
	var shared []store.InboundResult
	dups.Range(func(_, v any) bool { shared = append(shared, v.(store.InboundResult)); return true })
	fresh := 0
	for _, r := range shared {
		if !r.Duplicate {
			fresh++
		}
		if r.Message != shared[0].Message {
			t.Errorf("the shared message was stored as %d and %d", shared[0].Message, r.Message)
		}
	}
	if len(shared) != goroutines || fresh != 1 {
		t.Errorf("shared message: %d results, %d stored; want %d and 1", len(shared), fresh, goroutines)
	}
	messages[shared[0].Message] = true

	entries, next := mustEntries(t, s, store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}})
	if len(entries) != goroutines*each+1 {
		t.Fatalf("%d entries, want %d", len(entries), goroutines*each+1)
	}
	seenUID := map[uint32]bool{}
	for _, e := range entries {
		if seenUID[e.UID] || !messages[e.Message] || e.UID >= next {
			t.Fatalf("entry %+v: UID repeated, message unknown or UID not below UIDNEXT %d", e, next)
		}
		seenUID[e.UID] = true
		delete(messages, e.Message)
	}
	uids(t, entries)
	if len(messages) != 0 {
		t.Errorf("messages without an entry: %v", messages)
	}
	if n := count(t, s, "messages"); n != goroutines*each+1 {
		t.Errorf("%d message rows, want %d", n, goroutines*each+1)
	}
}

func benchmarkInbound(i int) store.Inbound {
	raw := bytes.Repeat([]byte("0123456789abcdef"), 4096/16)
	copy(raw, fmt.Sprintf("Message-ID: <%d@example.com>\r\n", i))
	return store.Inbound{Inbox: inboxA, Owner: "customer@example.com", Subject: "bench", Sender: "customer@example.com",
		MessageIDHeader: fmt.Sprintf("%d@example.com", i), Raw: raw, Received: at(i)}
}

// BenchmarkAddInbound stores 4 KiB messages one after another: the cost of
// one durable commit (an fsync) per message.
func BenchmarkAddInbound(b *testing.B) {
	s := openTest(b, pg.DSN(b))
	ctx := context.Background()
	b.SetBytes(4096)
	i := 0
	for b.Loop() {
		if _, err := s.AddInbound(ctx, benchmarkInbound(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAddInboundParallel stores 4 KiB messages from many goroutines, the
// case group commit (DESIGN.md §13) would speed up.
func BenchmarkAddInboundParallel(b *testing.B) {
	s := openTest(b, pg.DSN(b))
	ctx := context.Background()
	b.SetBytes(4096)
	var mu sync.Mutex
	next := 0
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			i := next
			next++
			mu.Unlock()
			if _, err := s.AddInbound(ctx, benchmarkInbound(i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
