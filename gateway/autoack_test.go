package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/queue"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/threading"
)

// acksTo returns the queued deliveries to rcpt.
func acksTo(t *testing.T, st store.Store, rcpt string) []store.Delivery {
	t.Helper()
	ds, err := st.PendingDeliveries(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Delivery
	for _, d := range ds {
		for _, r := range d.Recipients {
			if r == rcpt {
				out = append(out, d)
			}
		}
	}
	return out
}

// TestAutoAcknowledgeOverMX drives the MX over a real socket: a customer's
// new request gets one RFC 3834 acknowledgement, queued like a reply and
// recorded in the conversation; a reply to it threads in; the same sender's
// second request that day, automatic mail, lists, bounces and agents get
// none.
func TestAutoAcknowledgeOverMX(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) { c.Inboxes[0].AutoAcknowledge = true })
	ctx := context.Background()
	send := func(from, extra, id, subject string) {
		t.Helper()
		msg := "From: <" + from + ">\r\nTo: support@example.test\r\nSubject: " + subject + "\r\nMessage-ID: <" + id + ">\r\n" + extra + "\r\nHello\r\n"
		if err := smtpSend(ts.mx, nil, from, []string{"support@example.test"}, msg); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}

	send("gina@customer.example", "", "first@customer.example", "Printer on fire")
	acks := acksTo(t, ts.store, "gina@customer.example")
	if len(acks) != 1 {
		t.Fatalf("%d acknowledgements queued, want 1", len(acks))
	}
	ack := acks[0]
	info := parseHeaderInfo(ack.Raw)
	conv, _, ok := ts.srv.keys.ParseMessageID(info.MessageID)
	first, _ := ts.store.MessageByHeaderID(ctx, "first@customer.example")
	switch {
	case !ok || conv != first.Conversation:
		t.Errorf("the acknowledgement's Message-ID %q does not name conversation %d", info.MessageID, first.Conversation)
	case info.Header.Get("Auto-Submitted") != "auto-replied":
		t.Errorf("Auto-Submitted = %q", info.Header.Get("Auto-Submitted"))
	case len(info.InReplyTo) != 1 || info.InReplyTo[0] != "first@customer.example":
		t.Errorf("In-Reply-To = %v", info.InReplyTo)
	case ack.MailFrom != "":
		t.Errorf("MAIL FROM %q, want the null return path (RFC 3834 3.3)", ack.MailFrom)
	case info.Subject != "Auto: Printer on fire "+threading.Tag(conv):
		t.Errorf("Subject = %q", info.Subject)
	case !strings.Contains(string(ack.Raw), "request #"+strconv.FormatInt(conv, 10)):
		t.Errorf("the text lacks the request number:\n%s", ack.Raw)
	}
	replyTo := info.Header.Get("Reply-To")
	msgs, err := ts.store.ConversationMessages(ctx, conv)
	if err != nil || len(msgs) != 2 || msgs[1].Kind != store.KindReply || msgs[1].MessageIDHeader != info.MessageID {
		t.Errorf("the conversation does not show the acknowledgement: %+v, %v", msgs, err)
	}

	// The customer answers the acknowledgement: it threads in, unanswered.
	send("gina@customer.example", "In-Reply-To: <"+info.MessageID+">\r\n", "answer@customer.example", "Re: Auto: Printer on fire")
	if m, err := ts.store.MessageByHeaderID(ctx, "answer@customer.example"); err != nil || m.Conversation != conv {
		t.Errorf("the answer to the acknowledgement landed in %d (%v), want %d", m.Conversation, err, conv)
	}
	if !strings.Contains(replyTo, "support+"+ts.srv.keys.ReplyToken(conv)+"@example.test") {
		t.Errorf("Reply-To %q is not the conversation's reply address", replyTo)
	}

	// Nothing more for these, whatever they are.
	for _, tc := range []struct {
		name, from, extra string
		acks              int // to from, in all
	}{
		{"second request the same day", "gina@customer.example", "", 1},
		{"auto-reply", "holiday@customer.example", "Auto-Submitted: auto-replied\r\n", 0},
		{"Precedence bulk", "news@customer.example", "Precedence: bulk\r\n", 0},
		{"mailing list", "list-member@customer.example", "List-Id: <users.lists.example>\r\n", 0},
		{"DSN", "MAILER-DAEMON@customer.example", "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n", 0},
		{"agent", "bob@example.test", "", 0},
	} {
		send(tc.from, tc.extra, strings.ReplaceAll(tc.name, " ", "-")+"@customer.example", tc.name)
		if n := len(acksTo(t, ts.store, strings.ToLower(tc.from))); n != tc.acks {
			t.Errorf("%s: %d acknowledgements to %s, want %d", tc.name, n, tc.from, tc.acks)
		}
	}
	// A null sender (a bounce to the support address) gets none either.
	if err := smtpSend(ts.mx, nil, "", []string{"support@example.test"}, customerMail("null@customer.example", "Undeliverable")); err != nil {
		t.Fatal(err)
	}
	if n := len(acksTo(t, ts.store, "gina@customer.example")); n != 1 {
		t.Errorf("%d acknowledgements to gina, want still 1", n)
	}
	if ds, _ := ts.store.PendingDeliveries(ctx, 1000); len(ds) != 1 {
		t.Errorf("%d deliveries queued, want only the first acknowledgement", len(ds))
	}
}

// TestAutoAcknowledgeOff: an inbox without auto_acknowledge sends nothing.
func TestAutoAcknowledgeOff(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	if err := smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"}, customerMail("x@customer.example", "Hi")); err != nil {
		t.Fatal(err)
	}
	if ds, _ := ts.store.PendingDeliveries(context.Background(), 10); len(ds) != 0 {
		t.Errorf("%d deliveries queued by an inbox that does not acknowledge", len(ds))
	}
}

// relayPeer is a loopback SMTP server (go-smtp's) that records the
// envelope of every transaction it accepts.
type relayPeer struct {
	mu  sync.Mutex
	got map[string]string // recipient -> MAIL FROM
}

func (p *relayPeer) received() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]string{}
	for k, v := range p.got {
		out[k] = v
	}
	return out
}

type relayPeerSession struct {
	p    *relayPeer
	from string
	to   []string
}

func (s *relayPeerSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from, s.to = from, nil
	return nil
}

func (s *relayPeerSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *relayPeerSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	for _, to := range s.to {
		s.p.got[to] = s.from
	}
	return nil
}

func (s *relayPeerSession) Reset()        { s.from, s.to = "", nil }
func (s *relayPeerSession) Logout() error { return nil }

// TestAutoAckNullSenderOverRelay: the acknowledgement leaves the outbound
// queue in relay mode with MAIL FROM:<> (RFC 3834 3.3); an agent's reply
// still carries its VERP return path.
func TestAutoAckNullSenderOverRelay(t *testing.T) {
	peer := &relayPeer{got: map[string]string{}}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &relayPeerSession{p: peer}, nil
	}))
	srv.Domain = "relay.test"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	ts := newTestServer(t, nil, func(c *config.Config) { c.Inboxes[0].AutoAcknowledge = true })
	if err := smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"},
		customerMail("relay@customer.example", "Printer on fire")); err != nil {
		t.Fatal(err)
	}
	if err := smtpSend(ts.submission, sasl.NewPlainClient("", "alice@example.test", "demo-alice"), "alice@example.test",
		[]string{"hans@customer.example"}, "From: alice@example.test\r\nTo: hans@customer.example\r\nSubject: hi\r\n\r\nhi\r\n"); err != nil {
		t.Fatal(err)
	}

	w := &queue.Worker{Store: ts.store, Transport: &queue.RelayTransport{Hostname: "sg.test", Relay: ln.Addr().String()},
		Keys: ts.srv.keys, Retry: []time.Duration{time.Second}, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	deadline := time.Now().Add(15 * time.Second)
	got := peer.received()
	for len(got) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		got = peer.received()
	}
	ack, okAck := got["gina@customer.example"]
	reply, okReply := got["hans@customer.example"]
	if !okAck || !okReply {
		t.Fatalf("the relay received %v, want the acknowledgement and the reply", got)
	}
	if ack != "" {
		t.Errorf("the acknowledgement came with MAIL FROM:<%s>, want MAIL FROM:<> (RFC 3834 3.3)", ack)
	}
	if !strings.HasPrefix(reply, "bounces+") || !strings.HasSuffix(reply, "@example.test") {
		t.Errorf("the reply came with MAIL FROM:<%s>, want bounces+<token>@example.test", reply)
	}
}

// failAckOnce makes the first acknowledgement's write fail inside the
// store's transaction, after its claim on the limit was counted: its
// message number is taken by the customer's message.
type failAckOnce struct {
	store.Store
	failed atomic.Bool
}

func (f *failAckOnce) QueueAutoAck(ctx context.Context, ack store.AutoAck) (store.AutoAckOutcome, error) {
	if f.failed.CompareAndSwap(false, true) {
		msgs, err := f.Store.ConversationMessages(ctx, ack.Outbound.Conversation)
		if err != nil || len(msgs) == 0 {
			return 0, errors.New("no message to collide with")
		}
		ack.Outbound.Message = msgs[0].ID
	}
	return f.Store.QueueAutoAck(ctx, ack)
}

// TestAutoAckClaimReleasedWhenQueueingFails: when the day's only
// acknowledgement cannot be queued, its claim on the limit is not used up
// (it was never committed), so the sender's next request that day is
// acknowledged; the one after it is not.
func TestAutoAckClaimReleasedWhenQueueingFails(t *testing.T) {
	ts := newTestServer(t, func(s store.Store) store.Store { return &failAckOnce{Store: s} },
		func(c *config.Config) { c.Inboxes[0].AutoAcknowledge = true })
	for i, want := range []int{0, 1, 1} {
		id := "req" + strconv.Itoa(i) + "@customer.example"
		if err := smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"},
			customerMail(id, "Request "+strconv.Itoa(i))); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if n := len(acksTo(t, ts.store, "gina@customer.example")); n != want {
			t.Errorf("after %s: %d acknowledgements queued, want %d", id, n, want)
		}
	}
}

// loseAcks fails QueueAutoAck, writing nothing, while lose is set: the
// store as a crash after the customer's message and before its
// acknowledgement leaves it.
type loseAcks struct {
	store.Store
	lose atomic.Bool
}

func (l *loseAcks) QueueAutoAck(ctx context.Context, ack store.AutoAck) (store.AutoAckOutcome, error) {
	if l.lose.Load() {
		return 0, errors.New("killed")
	}
	return l.Store.QueueAutoAck(ctx, ack)
}

// TestAutoAckRetryAfterLostAck: a request stored without its
// acknowledgement (we crashed before queueing it, so the client had no 250
// and sends it again) is acknowledged when its copy arrives, once, however
// many copies come; a copy of a message that did not open its conversation,
// or of one whose conversation went to Spam, is not acknowledged.
func TestAutoAckRetryAfterLostAck(t *testing.T) {
	lost := &loseAcks{}
	ts := newTestServer(t, func(s store.Store) store.Store { lost.Store = s; return lost },
		func(c *config.Config) { c.Inboxes[0].AutoAcknowledge = true })
	ctx := context.Background()
	send := func(from, id, subject, extra string) {
		t.Helper()
		msg := "From: <" + from + ">\r\nTo: support@example.test\r\nSubject: " + subject + "\r\nMessage-ID: <" + id + ">\r\n" + extra + "\r\nHello\r\n"
		if err := smtpSend(ts.mx, nil, from, []string{"support@example.test"}, msg); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	wantAcks := func(what, to string, want int) []store.Delivery {
		t.Helper()
		acks := acksTo(t, ts.store, to)
		if len(acks) != want {
			t.Errorf("%s: %d acknowledgements to %s, want %d", what, len(acks), to, want)
		}
		return acks
	}

	lost.lose.Store(true)
	send("gina@customer.example", "lost@customer.example", "Printer on fire", "")
	wantAcks("after the crash", "gina@customer.example", 0)
	original, err := ts.store.MessageByHeaderID(ctx, "lost@customer.example")
	if err != nil {
		t.Fatal(err)
	}
	// Another of gina's messages, into the conversation, also without an
	// acknowledgement at the time.
	send("gina@customer.example", "answer@customer.example", "Re: Printer on fire", "In-Reply-To: <lost@customer.example>\r\n")
	lost.lose.Store(false)

	send("gina@customer.example", "answer@customer.example", "Re: Printer on fire", "In-Reply-To: <lost@customer.example>\r\n")
	wantAcks("a copy of a message that continued the conversation", "gina@customer.example", 0)

	send("gina@customer.example", "lost@customer.example", "Printer on fire", "")
	acks := wantAcks("the client's retry", "gina@customer.example", 1)
	if len(acks) == 1 {
		info := parseHeaderInfo(acks[0].Raw)
		conv, _, _ := ts.srv.keys.ParseMessageID(info.MessageID)
		if conv != original.Conversation || len(info.InReplyTo) != 1 || info.InReplyTo[0] != "lost@customer.example" ||
			info.Header.Get("Auto-Submitted") != "auto-replied" || acks[0].MailFrom != "" {
			t.Errorf("the acknowledgement of the retry: conversation %d (want %d), In-Reply-To %v, Auto-Submitted %q, MAIL FROM <%s>",
				conv, original.Conversation, info.InReplyTo, info.Header.Get("Auto-Submitted"), acks[0].MailFrom)
		}
		if msg, found, err := ts.store.AutoAckOf(ctx, original.Conversation); !found || err != nil || msg != acks[0].Message {
			t.Errorf("AutoAckOf = %d, %v, %v; want the queued message %d", msg, found, err, acks[0].Message)
		}
	}
	send("gina@customer.example", "lost@customer.example", "Printer on fire", "")
	wantAcks("a third copy", "gina@customer.example", 1)
	if msgs, err := ts.store.ConversationMessages(ctx, original.Conversation); err != nil || len(msgs) != 3 {
		t.Errorf("the conversation has %d messages (%v), want the request, the answer and one acknowledgement", len(msgs), err)
	}

	// Marked as spam meanwhile: its copy is not acknowledged.
	lost.lose.Store(true)
	send("hans@customer.example", "spam@customer.example", "Cheap pills", "")
	lost.lose.Store(false)
	spam, err := ts.store.MessageByHeaderID(ctx, "spam@customer.example")
	if err != nil {
		t.Fatal(err)
	}
	mustSetStatus(t, ts.store, spam.Conversation, store.StatusSpam)
	send("hans@customer.example", "spam@customer.example", "Cheap pills", "")
	wantAcks("a copy of a message in Spam", "hans@customer.example", 0)
}

// TestAutoAckNotRepeatedForRetry: a request acknowledged as usual whose 250
// the client did not get (the ack was queued, then we crashed) is not
// acknowledged again when the client sends it again, nor later.
func TestAutoAckNotRepeatedForRetry(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) {
		c.Inboxes[0].AutoAcknowledge = true
		c.Limits.MaxAutoAcksPerSenderPerDay = 10 // not what stops the second
	})
	for i, what := range []string{"the first delivery", "its retry", "a third copy"} {
		if err := smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"},
			customerMail("once@customer.example", "Printer on fire")); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n := len(acksTo(t, ts.store, "gina@customer.example")); n != 1 {
			t.Errorf("after %s (%d): %d acknowledgements queued, want 1", what, i, n)
		}
	}
}

// countReservations counts message numbers reserved and acknowledgements
// handed to the store.
type countReservations struct {
	store.Store
	reserved, queued atomic.Int64
}

func (c *countReservations) NextMessageNumber(ctx context.Context) (int64, error) {
	c.reserved.Add(1)
	return c.Store.NextMessageNumber(ctx)
}

func (c *countReservations) QueueAutoAck(ctx context.Context, ack store.AutoAck) (store.AutoAckOutcome, error) {
	c.queued.Add(1)
	return c.Store.QueueAutoAck(ctx, ack)
}

// TestAutoAckOverLimitCostsNoWrite: once a sender had the day's
// acknowledgement, their further new requests are not acknowledged and
// cost no message number (a write) and no DKIM signature: the limit is read
// before anything is built.
func TestAutoAckOverLimitCostsNoWrite(t *testing.T) {
	counted := &countReservations{}
	ts := newTestServer(t, func(s store.Store) store.Store { counted.Store = s; return counted },
		func(c *config.Config) { c.Inboxes[0].AutoAcknowledge = true })
	for i := range 4 {
		id := "flood" + strconv.Itoa(i) + "@monitor.example"
		if err := smtpSend(ts.mx, nil, "alerts@monitor.example", []string{"support@example.test"},
			customerMail(id, "Alert "+strconv.Itoa(i))); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if n := len(acksTo(t, ts.store, "alerts@monitor.example")); n != 1 {
		t.Errorf("%d acknowledgements queued, want 1 (the limit)", n)
	}
	if r, q := counted.reserved.Load(), counted.queued.Load(); r != 1 || q != 1 {
		t.Errorf("%d message numbers reserved and %d acknowledgements built for 4 requests, want 1 and 1", r, q)
	}
}
