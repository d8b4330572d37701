package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// Automatic acknowledgements and their daily limit (DESIGN.md §7, §8).
func autoAckCases() []testCase {
	return []testCase{
		{"QueueAutoAckLimit", testQueueAutoAckLimit},
		{"QueueAutoAckConcurrent", testQueueAutoAckConcurrent},
		{"QueueAutoAckAtomic", testQueueAutoAckAtomic},
		{"AutoAckOf", testAutoAckOf},
		{"OpenedConversation", testOpenedConversation},
	}
}

const ackInbox = "support@x.test"

// newAck is an automatic acknowledgement of conv from inbox to recipient at
// when, under limit, with a message number reserved from s.
func newAck(t T, s store.Store, conv int64, inbox, recipient string, when time.Time, limit int) store.AutoAck {
	t.Helper()
	msg := mustReserve(t, s)
	return store.AutoAck{Inbox: inbox, Recipient: recipient, Limit: limit, Outbound: store.Outbound{
		Message:         msg,
		Conversation:    conv,
		Kind:            store.KindReply,
		MessageIDHeader: fmt.Sprintf("ack%d@support.example.com", msg),
		Raw:             rawMessage(fmt.Sprintf("ack %d", msg)),
		Received:        when,
		MailFrom:        "", // RFC 3834 3.3
		Recipients:      []string{recipient},
	}}
}

// newConversation stores a customer's first message and returns its
// conversation.
func newConversation(t T, s store.Store, messageID string) int64 {
	t.Helper()
	return mustInbound(t, s, newInbound(ackInbox, messageID, 1)).Conversation
}

// wantSent checks how many acknowledgements count against the limit of
// inbox and recipient at now.
func wantSent(t *testing.T, s store.Store, what, inbox, recipient string, now time.Time, want int) {
	t.Helper()
	if n, err := s.AutoAcksSent(t.Context(), inbox, recipient, now); err != nil || n != want {
		t.Errorf("%s: AutoAcksSent(%s, %s) = %d, %v; want %d", what, inbox, recipient, n, err, want)
	}
}

// testQueueAutoAckLimit: at most limit acknowledgements per inbox and
// recipient in any 24 hours, case-insensitively; one over the limit
// writes nothing.
func testQueueAutoAckLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	t0 := at(0)
	steps := []struct {
		name             string
		inbox, recipient string
		at               time.Time
		limit            int
		want             store.AutoAckOutcome
	}{
		{"first", ackInbox, "gina@customer.example", t0, 1, store.AutoAckQueued},
		{"same day", ackInbox, "gina@customer.example", t0.Add(time.Hour), 1, store.AutoAckLimitReached},
		{"case does not matter", "Support@X.test", "GINA@customer.example", t0.Add(2 * time.Hour), 1, store.AutoAckLimitReached},
		{"another recipient", ackInbox, "hans@customer.example", t0.Add(2 * time.Hour), 1, store.AutoAckQueued},
		{"another inbox", "billing@x.test", "gina@customer.example", t0.Add(2 * time.Hour), 1, store.AutoAckQueued},
		{"a higher limit", ackInbox, "gina@customer.example", t0.Add(3 * time.Hour), 2, store.AutoAckQueued},
		{"the higher limit reached", ackInbox, "gina@customer.example", t0.Add(4 * time.Hour), 2, store.AutoAckLimitReached},
		{"24 hours after the first, one of two left", ackInbox, "gina@customer.example", t0.Add(24 * time.Hour), 2, store.AutoAckQueued},
		{"then none", ackInbox, "gina@customer.example", t0.Add(25 * time.Hour), 2, store.AutoAckLimitReached},
	}
	queued := 0
	for i, st := range steps {
		ack := newAck(t, s, newConversation(t, s, fmt.Sprintf("req%d@customer.example", i)), st.inbox, st.recipient, st.at, st.limit)
		// The read the gateway makes first agrees with the transaction.
		sent, err := s.AutoAcksSent(ctx, st.inbox, st.recipient, st.at)
		if err != nil {
			t.Fatal(err)
		}
		if over := sent >= st.limit; over != (st.want == store.AutoAckLimitReached) {
			t.Errorf("%s: AutoAcksSent = %d with limit %d, but QueueAutoAck should say %v", st.name, sent, st.limit, st.want)
		}
		got, err := s.QueueAutoAck(ctx, ack)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got != st.want {
			t.Errorf("%s: QueueAutoAck = %v, want %v", st.name, got, st.want)
		}
		_, found, err := s.AutoAckOf(ctx, ack.Outbound.Conversation)
		if err != nil {
			t.Fatal(err)
		}
		_, merr := s.Message(ctx, ack.Outbound.Message)
		if got == store.AutoAckQueued {
			queued++
			if !found || merr != nil {
				t.Errorf("%s: queued, but recorded %v and its message %v", st.name, found, merr)
			}
		} else if found || !errors.Is(merr, store.ErrNotFound) {
			t.Errorf("%s: not queued, but recorded %v and its message %v", st.name, found, merr)
		}
	}
	if n := len(mustPending(t, s, 100)); n != queued {
		t.Errorf("%d deliveries queued, want %d", n, queued)
	}
}

// testQueueAutoAckConcurrent: messages arriving at once cannot both take
// the last acknowledgement, and copies of one message arriving at once
// cannot both acknowledge its conversation.
func testQueueAutoAckConcurrent(t *testing.T, s store.Store) {
	race := func(name string, ack func(i int) store.AutoAck) []store.AutoAck {
		acks := make([]store.AutoAck, 20)
		for i := range acks {
			acks[i] = ack(i)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		queued := 0
		for _, a := range acks {
			wg.Go(func() {
				got, err := s.QueueAutoAck(t.Context(), a)
				if err != nil {
					t.Error(err)
				}
				if got == store.AutoAckQueued {
					mu.Lock()
					queued++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if queued != 1 {
			t.Errorf("%s: %d acknowledgements queued, want 1", name, queued)
		}
		return acks
	}
	acks := race("one sender, many conversations, limit 1", func(i int) store.AutoAck {
		conv := newConversation(t, s, fmt.Sprintf("many%d@customer.example", i))
		return newAck(t, s, conv, ackInbox, "gina@customer.example", at(0), 1)
	})
	recorded := 0
	for _, a := range acks {
		if _, found, err := s.AutoAckOf(t.Context(), a.Outbound.Conversation); err != nil {
			t.Fatal(err)
		} else if found {
			recorded++
		}
	}
	if recorded != 1 {
		t.Errorf("%d conversations recorded as acknowledged, want 1", recorded)
	}
	conv := newConversation(t, s, "one@customer.example")
	race("one conversation, no limit in the way", func(int) store.AutoAck {
		return newAck(t, s, conv, ackInbox, "hans@customer.example", at(0), 100)
	})
	wantSent(t, s, "after the races", ackInbox, "gina@customer.example", at(1), 1)
	wantSent(t, s, "after the races", ackInbox, "hans@customer.example", at(1), 1)
	if d := mustPending(t, s, 100); len(d) != 2 {
		t.Errorf("%d deliveries queued, want 2", len(d))
	}
}

// testQueueAutoAckAtomic: when recording the acknowledgement fails after
// its claim on the limit was counted, or its context is cancelled, nothing
// of it stays: no claim, no message, no record, nothing queued; the day's
// acknowledgement is still there for the next try.
func testQueueAutoAckAtomic(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := mustInbound(t, s, newInbound(ackInbox, "req@customer.example", 1))

	// The outbound part fails: its message number is taken (by the
	// customer's message).
	bad := newAck(t, s, first.Conversation, ackInbox, "gina@customer.example", at(2), 1)
	bad.Outbound.Message = first.Message
	if got, err := s.QueueAutoAck(ctx, bad); err == nil {
		t.Fatalf("QueueAutoAck with a taken message number = %v, want an error", got)
	}
	wantSent(t, s, "after a failed write", ackInbox, "gina@customer.example", at(2), 0)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if got, err := s.QueueAutoAck(cancelled, newAck(t, s, first.Conversation, ackInbox, "gina@customer.example", at(3), 1)); err == nil {
		t.Fatalf("QueueAutoAck with a cancelled context = %v, want an error", got)
	}
	wantSent(t, s, "after a cancelled write", ackInbox, "gina@customer.example", at(3), 0)
	if _, found, err := s.AutoAckOf(ctx, first.Conversation); found || err != nil {
		t.Errorf("AutoAckOf after failures = %v, %v; want none", found, err)
	}
	if d := mustPending(t, s, 10); len(d) != 0 {
		t.Errorf("%d deliveries queued by failed writes", len(d))
	}

	// The limit of 1 is untouched: the acknowledgement goes now.
	good := newAck(t, s, first.Conversation, ackInbox, "gina@customer.example", at(4), 1)
	if got, err := s.QueueAutoAck(ctx, good); err != nil || got != store.AutoAckQueued {
		t.Fatalf("QueueAutoAck after the failures = %v, %v; want queued", got, err)
	}
	wantSent(t, s, "after the acknowledgement", ackInbox, "gina@customer.example", at(4), 1)
	if d := mustPending(t, s, 10); len(d) != 1 || d[0].Message != good.Outbound.Message || d[0].MailFrom != "" {
		t.Errorf("queued %+v, want message %d with a null return path", d, good.Outbound.Message)
	}
}

// testAutoAckOf: a conversation's acknowledgement is recorded with it and
// found again after the limit's window; a second one for the conversation
// writes nothing, whatever the limit.
func testAutoAckOf(t *testing.T, s store.Store) {
	ctx := t.Context()
	conv := newConversation(t, s, "req@customer.example")
	other := newConversation(t, s, "other@customer.example")
	if _, found, err := s.AutoAckOf(ctx, conv); found || err != nil {
		t.Fatalf("AutoAckOf before any = %v, %v", found, err)
	}
	ack := newAck(t, s, conv, ackInbox, "gina@customer.example", at(2), 5)
	if got, err := s.QueueAutoAck(ctx, ack); err != nil || got != store.AutoAckQueued {
		t.Fatalf("QueueAutoAck = %v, %v", got, err)
	}
	if msg, found, err := s.AutoAckOf(ctx, conv); !found || err != nil || msg != ack.Outbound.Message {
		t.Errorf("AutoAckOf = %d, %v, %v; want message %d", msg, found, err, ack.Outbound.Message)
	}
	if _, found, _ := s.AutoAckOf(ctx, other); found {
		t.Errorf("another conversation has an acknowledgement")
	}
	for _, when := range []time.Time{at(3), at(3).Add(48 * time.Hour)} {
		again := newAck(t, s, conv, ackInbox, "gina@customer.example", when, 5)
		if got, err := s.QueueAutoAck(ctx, again); err != nil || got != store.AutoAckAlreadySent {
			t.Errorf("a second acknowledgement at %v = %v, %v; want already sent", when, got, err)
		}
		if _, err := s.Message(ctx, again.Outbound.Message); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the refused second acknowledgement was stored (%v)", err)
		}
	}
	wantSent(t, s, "after the refused ones", ackInbox, "gina@customer.example", at(4), 1)
	if d := mustPending(t, s, 10); len(d) != 1 {
		t.Errorf("%d deliveries queued, want 1", len(d))
	}
}

// testOpenedConversation: only the inbound message a conversation began
// with opened it; not a later message, not an agent's, not one that starts
// a conversation by writing out.
func testOpenedConversation(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := mustInbound(t, s, newInbound(ackInbox, "first@customer.example", 1))
	second := mustInbound(t, s, into(first.Conversation, ackInbox, "second@customer.example", 2))
	agentReply := mustReserve(t, s)
	mustOutbound(t, s, reply(agentReply, first.Conversation, "alice@x.test", "customer@example.com"))
	conv, err := s.NextConversationNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	startedOut := mustReserve(t, s)
	out := reply(startedOut, conv, "alice@x.test", "hans@customer.example")
	out.NewConversation = &store.NewConversation{Inbox: ackInbox, Owner: "hans@customer.example", Subject: "Hello"}
	mustOutbound(t, s, out)
	hansAnswer := mustInbound(t, s, into(conv, ackInbox, "hans@customer.example", 3))

	for _, tc := range []struct {
		name string
		msg  int64
		want bool
	}{
		{"the first message", first.Message, true},
		{"a later customer message", second.Message, false},
		{"an agent's reply", agentReply, false},
		{"an agent's message that started a conversation", startedOut, false},
		{"the answer to it", hansAnswer.Message, false},
	} {
		if got, err := s.OpenedConversation(ctx, tc.msg); err != nil || got != tc.want {
			t.Errorf("%s: OpenedConversation = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	_, err = s.OpenedConversation(ctx, 9999)
	wantNotFound(t, "OpenedConversation of no message", err)
}
