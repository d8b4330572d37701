package storetest

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// Concurrent use beyond the properties (properties.go): many writers and
// readers at once lose nothing and mix nothing up.
func concurrencyCases() []testCase {
	return []testCase{
		{"ConcurrentAddInbound", testConcurrentAddInbound},
	}
}

// testConcurrentAddInbound: 20 goroutines each store a thread of messages
// while reading the folder, then all deliver one shared message: every
// message is stored once, with its bytes, in its thread, with its own
// entry; the shared one once.
func testConcurrentAddInbound(t *testing.T, s store.Store) {
	const goroutines, each = 20, 10
	ctx := t.Context()
	type stored struct {
		res store.InboundResult
		raw []byte
	}
	results := make([][]stored, goroutines)
	shared := make([]store.InboundResult, goroutines)
	errs := concurrently(t, goroutines, func(g int) error {
		var conv int64
		for i := range each {
			in := newInbound(inboxA, fmt.Sprintf("g%d-m%d@example.com", g, i), g*each+i)
			in.Conversation = conv // the first starts a conversation, the rest thread into it
			res, err := s.AddInbound(ctx, in)
			if err != nil {
				return fmt.Errorf("message %d: %w", i, err)
			}
			conv = res.Conversation
			results[g] = append(results[g], stored{res, in.Raw})
			// Readers run beside the writers.
			if _, _, err := s.Entries(ctx, inboxView(agent, inboxA)); err != nil {
				return fmt.Errorf("Entries: %w", err)
			}
		}
		// Everybody delivers the same message once more: it is stored once.
		res, err := s.AddInbound(ctx, newInbound(inboxA, "shared@example.com", 999))
		shared[g] = res
		return err
	})
	for _, err := range errs {
		if err != nil {
			t.FailNow()
		}
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
		msgs, err := s.ConversationMessages(ctx, l[0].res.Conversation)
		if err != nil || len(msgs) != each {
			t.Errorf("goroutine %d's conversation holds %d messages (%v), want %d", g, len(msgs), err, each)
		}
	}
	fresh := 0
	for _, r := range shared {
		if !r.Duplicate {
			fresh++
		}
		if r.Message != shared[0].Message {
			t.Errorf("the shared message was stored as %d and %d", shared[0].Message, r.Message)
		}
	}
	if fresh != 1 {
		t.Errorf("shared message stored %d times; want once", fresh)
	}
	messages[shared[0].Message] = true

	entries, next := mustEntries(t, s, inboxView(agent, inboxA))
	if len(entries) != goroutines*each+1 {
		t.Fatalf("%d entries, want %d", len(entries), goroutines*each+1)
	}
	for _, e := range entries {
		if !messages[e.Message] || e.UID >= next {
			t.Fatalf("entry %+v: message unknown, repeated, or UID not below UIDNEXT %d", e, next)
		}
		delete(messages, e.Message)
	}
	uids(t, entries)
	if len(messages) != 0 {
		t.Errorf("messages without an entry: %v", messages)
	}
	if n := conversationCount(t, s); n != goroutines+1 {
		t.Errorf("%d conversations, want %d", n, goroutines+1)
	}
}
