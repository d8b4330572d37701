package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// newAck is an automatic acknowledgement of conv from inbox to recipient at
// when, under limit, with a message number reserved from s.
func newAck(t testing.TB, s store.Store, conv int64, inbox, recipient string, when time.Time, limit int) store.AutoAck {
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
func newConversation(t testing.TB, s store.Store, messageID string) int64 {
	t.Helper()
	return mustInbound(t, s, newInbound("support@x.test", messageID, 1)).Conversation
}

// wantAckRows checks the rows that record acknowledgements: claims on the
// limit and conversations answered.
func wantAckRows(t testing.TB, s *Store, what string, claims, conversations int) {
	t.Helper()
	if n := count(t, s, "auto_acks"); n != claims {
		t.Errorf("%s: %d claims on the limit, want %d", what, n, claims)
	}
	if n := count(t, s, "auto_ack_conversations"); n != conversations {
		t.Errorf("%s: %d conversations recorded as acknowledged, want %d", what, n, conversations)
	}
}

// TestQueueAutoAckLimit: at most limit acknowledgements per inbox and
// recipient in any 24 hours, case-insensitively, counted across a restart;
// one over the limit writes nothing.
func TestQueueAutoAckLimit(t *testing.T) {
	ctx := context.Background()
	dir := pg.DSN(t)
	s := openTest(t, dir)
	t0 := at(0)
	steps := []struct {
		name             string
		inbox, recipient string
		at               time.Time
		limit            int
		want             store.AutoAckOutcome
	}{
		{"first", "support@x.test", "gina@customer.example", t0, 1, store.AutoAckQueued},
		{"same day", "support@x.test", "gina@customer.example", t0.Add(time.Hour), 1, store.AutoAckLimitReached},
		{"case does not matter", "Support@X.test", "GINA@customer.example", t0.Add(2 * time.Hour), 1, store.AutoAckLimitReached},
		{"another recipient", "support@x.test", "hans@customer.example", t0.Add(2 * time.Hour), 1, store.AutoAckQueued},
		{"another inbox", "billing@x.test", "gina@customer.example", t0.Add(2 * time.Hour), 1, store.AutoAckQueued},
		{"a higher limit", "support@x.test", "gina@customer.example", t0.Add(3 * time.Hour), 2, store.AutoAckQueued},
		{"the higher limit reached", "support@x.test", "gina@customer.example", t0.Add(4 * time.Hour), 2, store.AutoAckLimitReached},
		{"24 hours after the first, one of two left", "support@x.test", "gina@customer.example", t0.Add(24 * time.Hour), 2, store.AutoAckQueued},
		{"then none", "support@x.test", "gina@customer.example", t0.Add(25 * time.Hour), 2, store.AutoAckLimitReached},
	}
	queued := 0
	for i, st := range steps {
		if i == 4 { // a restart keeps what was claimed
			s.Close()
			s = openTest(t, dir)
		}
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

// TestQueueAutoAckConcurrent: messages arriving at once cannot both take
// the last acknowledgement, and copies of one message arriving at once
// cannot both acknowledge its conversation.
func TestQueueAutoAckConcurrent(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	race := func(name string, ack func(i int) store.AutoAck) {
		acks := make([]store.AutoAck, 20)
		for i := range acks {
			acks[i] = ack(i)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		queued := 0
		for _, a := range acks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := s.QueueAutoAck(context.Background(), a)
				if err != nil {
					t.Error(err)
				}
				if got == store.AutoAckQueued {
					mu.Lock()
					queued++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if queued != 1 {
			t.Errorf("%s: %d acknowledgements queued, want 1", name, queued)
		}
	}
	race("one sender, many conversations, limit 1", func(i int) store.AutoAck {
		conv := newConversation(t, s, fmt.Sprintf("many%d@customer.example", i))
		return newAck(t, s, conv, "support@x.test", "gina@customer.example", at(0), 1)
	})
	conv := newConversation(t, s, "one@customer.example")
	race("one conversation, no limit in the way", func(int) store.AutoAck {
		return newAck(t, s, conv, "support@x.test", "hans@customer.example", at(0), 100)
	})
	wantAckRows(t, s, "after the races", 2, 2)
}

// TestQueueAutoAckAtomic: when recording the acknowledgement fails after
// its claim on the limit was counted, or its context is cancelled, nothing
// of it stays: no claim, no message, no record, nothing queued; the day's
// acknowledgement is still there for the next try.
func TestQueueAutoAckAtomic(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
	first := mustInbound(t, s, newInbound("support@x.test", "req@customer.example", 1))

	// The outbound part fails: its message number is taken (by the
	// customer's message), after the claim was inserted.
	bad := newAck(t, s, first.Conversation, "support@x.test", "gina@customer.example", at(2), 1)
	bad.Outbound.Message = first.Message
	if got, err := s.QueueAutoAck(ctx, bad); err == nil {
		t.Fatalf("QueueAutoAck with a taken message number = %v, want an error", got)
	}
	wantAckRows(t, s, "after a failed write", 0, 0)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if got, err := s.QueueAutoAck(cancelled, newAck(t, s, first.Conversation, "support@x.test", "gina@customer.example", at(3), 1)); err == nil {
		t.Fatalf("QueueAutoAck with a cancelled context = %v, want an error", got)
	}
	wantAckRows(t, s, "after a cancelled write", 0, 0)
	if _, found, err := s.AutoAckOf(ctx, first.Conversation); found || err != nil {
		t.Errorf("AutoAckOf after failures = %v, %v; want none", found, err)
	}
	if d := mustPending(t, s, 10); len(d) != 0 {
		t.Errorf("%d deliveries queued by failed writes", len(d))
	}

	// The limit of 1 is untouched: the acknowledgement goes now.
	good := newAck(t, s, first.Conversation, "support@x.test", "gina@customer.example", at(4), 1)
	if got, err := s.QueueAutoAck(ctx, good); err != nil || got != store.AutoAckQueued {
		t.Fatalf("QueueAutoAck after the failures = %v, %v; want queued", got, err)
	}
	wantAckRows(t, s, "after the acknowledgement", 1, 1)
	if d := mustPending(t, s, 10); len(d) != 1 || d[0].Message != good.Outbound.Message || d[0].MailFrom != "" {
		t.Errorf("queued %+v, want message %d with a null return path", d, good.Outbound.Message)
	}
}

// TestAutoAckOf: a conversation's acknowledgement is recorded with it and
// found again, after a restart and after the limit's window; a second one
// for the conversation writes nothing, whatever the limit.
func TestAutoAckOf(t *testing.T) {
	ctx := context.Background()
	dir := pg.DSN(t)
	s := openTest(t, dir)
	conv := newConversation(t, s, "req@customer.example")
	other := newConversation(t, s, "other@customer.example")
	if _, found, err := s.AutoAckOf(ctx, conv); found || err != nil {
		t.Fatalf("AutoAckOf before any = %v, %v", found, err)
	}
	ack := newAck(t, s, conv, "support@x.test", "gina@customer.example", at(2), 5)
	if got, err := s.QueueAutoAck(ctx, ack); err != nil || got != store.AutoAckQueued {
		t.Fatalf("QueueAutoAck = %v, %v", got, err)
	}
	s.Close()
	s = openTest(t, dir)
	if msg, found, err := s.AutoAckOf(ctx, conv); !found || err != nil || msg != ack.Outbound.Message {
		t.Errorf("AutoAckOf = %d, %v, %v; want message %d", msg, found, err, ack.Outbound.Message)
	}
	if _, found, _ := s.AutoAckOf(ctx, other); found {
		t.Errorf("another conversation has an acknowledgement")
	}
	for _, when := range []time.Time{at(3), at(3).Add(48 * time.Hour)} {
		again := newAck(t, s, conv, "support@x.test", "gina@customer.example", when, 5)
		if got, err := s.QueueAutoAck(ctx, again); err != nil || got != store.AutoAckAlreadySent {
			t.Errorf("a second acknowledgement at %v = %v, %v; want already sent", when, got, err)
		}
		if _, err := s.Message(ctx, again.Outbound.Message); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the refused second acknowledgement was stored (%v)", err)
		}
	}
	wantAckRows(t, s, "after the refused ones", 1, 1)
	if d := mustPending(t, s, 10); len(d) != 1 {
		t.Errorf("%d deliveries queued, want 1", len(d))
	}
}

// TestOpenedConversation: only the inbound message a conversation began
// with opened it; not a later message, not an agent's, not one that starts
// a conversation by writing out.
func TestOpenedConversation(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
	first := mustInbound(t, s, newInbound("support@x.test", "first@customer.example", 1))
	in := newInbound("support@x.test", "second@customer.example", 2)
	in.Conversation = first.Conversation
	second := mustInbound(t, s, in)
	agentReply := mustReserve(t, s)
	mustOutbound(t, s, reply(agentReply, first.Conversation, "alice@x.test", "customer@example.com"))
	conv, err := s.NextConversationNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	startedOut := mustReserve(t, s)
	out := reply(startedOut, conv, "alice@x.test", "hans@customer.example")
	out.NewConversation = &store.NewConversation{Inbox: "support@x.test", Owner: "hans@customer.example", Subject: "Hello"}
	mustOutbound(t, s, out)
	in = newInbound("support@x.test", "hans@customer.example", 3)
	in.Conversation = conv
	hansAnswer := mustInbound(t, s, in)

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
