package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/gateway/imapgw"
	"github.com/supportgate/supportgate/internal/metrics"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/sqlite"
)

// testServer runs the MX, submission and IMAP servers in process on
// loopback sockets, on the demo configuration and a fresh store.
type testServer struct {
	srv                  *Server
	store                store.Store
	mx, submission, imap string
}

func newTestServer(t testing.TB, wrap func(store.Store) store.Store, mutate func(*config.Config)) *testServer {
	t.Helper()
	return newLoggingTestServer(t, wrap, mutate, io.Discard)
}

// newLoggingTestServer is newTestServer writing its log to w.
func newLoggingTestServer(t testing.TB, wrap func(store.Store) store.Store, mutate func(*config.Config), w io.Writer) *testServer {
	t.Helper()
	cfg, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.DataDir = t.TempDir()
	// Hermetic: lookups go to a loopback DNS server that knows no name,
	// unless mutate points the resolver elsewhere.
	cfg.DNS.Resolver = newTestDNS(t).Addr
	if mutate != nil {
		mutate(cfg)
	}
	sq, err := sqlite.Open(context.Background(), cfg.Server.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	var st store.Store = sq
	if wrap != nil {
		st = wrap(sq)
	}
	keys, err := LoadKeys(cfg.Server.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	// Wired as cmd/supportgate wires the daemon: FETCH metadata computed
	// at store time, and the store's counts and commit times on /metrics.
	sq.SetMetaFunc(imapgw.MessageMeta)
	m := metrics.New(metrics.Options{Store: sq, DataDir: cfg.Server.DataDir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	sq.ObserveCommits(m.ObserveCommit)
	s := New(cfg, st, keys, slog.New(slog.NewTextHandler(w, nil)), WithMetrics(m))
	ts := &testServer{srv: s, store: st}
	listen := func() net.Listener {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	mx, sub, im := s.newMX(), s.newSubmission(), s.newIMAP()
	for _, x := range []struct {
		addr  *string
		serve func(net.Listener) error
		close func() error
	}{{&ts.mx, mx.Serve, mx.Close}, {&ts.submission, sub.Serve, sub.Close}, {&ts.imap, im.Serve, im.Close}} {
		l := listen()
		*x.addr = l.Addr().String()
		go x.serve(l)
		t.Cleanup(func() { x.close() })
	}
	return ts
}

// smtpConnRaw is an SMTP connection read and written by hand (for bytes
// that a client library would fix), with a deadline.
type smtpConnRaw struct {
	net.Conn
	r *bufio.Reader
}

func dialSMTPRaw(t *testing.T, addr string, deadline time.Duration) *smtpConnRaw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(deadline))
	return &smtpConnRaw{Conn: c, r: bufio.NewReader(c)}
}

// reply reads one reply, all its lines ("" when the connection ended).
func (c *smtpConnRaw) reply() string {
	var all string
	for {
		l, err := c.r.ReadString('\n')
		all += l
		if err != nil || len(l) < 4 || l[3] == ' ' {
			return all
		}
	}
}

// cmd sends a command line and returns the reply.
func (c *smtpConnRaw) cmd(line string) string {
	fmt.Fprintf(c, "%s\r\n", line)
	return c.reply()
}

func smtpSend(addr string, auth sasl.Client, from string, to []string, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return err
		}
	}
	return c.SendMail(from, to, strings.NewReader(msg))
}

func wantSMTPError(t *testing.T, err error, code int, enh smtp.EnhancedCode, phrase string) {
	t.Helper()
	var e *smtp.SMTPError
	if !errors.As(err, &e) || e.Code != code || e.EnhancedCode != enh || !strings.Contains(e.Message, phrase) {
		t.Errorf("got %v, want %d %v containing %q", err, code, enh, phrase)
	}
}

func customerMail(id, subject string) string {
	return "From: Gina <gina@customer.example>\r\nTo: support@example.test\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + id + ">\r\n\r\nHello\r\n"
}

func imapLogin(t *testing.T, addr, user, pass string, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

// TestMXAcceptsMalformedAndRefusesOversized: mail with a broken header is
// still mail and is kept; a message over max_message_bytes gets 552 5.3.4.
func TestMXAcceptsMalformedAndRefusesOversized(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) { c.Server.MaxMessageBytes = 4096 })
	malformed := "this line has no colon\r\nFrom: <<<\r\n\r\nbody\r\n"
	if err := smtpSend(ts.mx, nil, "x@customer.example", []string{"support@example.test"}, malformed); err != nil {
		t.Fatalf("malformed mail refused: %v", err)
	}
	big := customerMail("big@customer.example", "big") + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 100)
	err := smtpSend(ts.mx, nil, "x@customer.example", []string{"support@example.test"}, big)
	wantSMTPError(t, err, 552, smtp.EnhancedCode{5, 3, 4}, "larger")

	// A 10,000-byte line is kept; a 70,000-byte one is refused with a reason.
	long := customerMail("long@customer.example", "long")[:0] + "Subject: long\r\n\r\n" + strings.Repeat("y", 10000) + "\r\n"
	ts2 := newTestServer(t, nil, nil)
	if err := smtpSend(ts2.mx, nil, "x@customer.example", []string{"support@example.test"}, long); err != nil {
		t.Errorf("a 10,000-byte line was refused: %v", err)
	}
	err = smtpSend(ts2.mx, nil, "x@customer.example", []string{"support@example.test"}, "Subject: x\r\n\r\n"+strings.Repeat("z", 70000)+"\r\n")
	wantSMTPError(t, err, 554, smtp.EnhancedCode{5, 6, 0}, "shorter lines")

	c := imapLogin(t, ts.imap, "alice@example.test", "demo-alice", nil)
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 1 {
		t.Fatalf("INBOX: %v, %+v", err, sel)
	}
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil || len(msgs) != 1 || len(msgs[0].BodySection) != 1 || !strings.HasSuffix(string(msgs[0].BodySection[0].Bytes), malformed) {
		t.Fatalf("the malformed mail is not kept byte for byte: %v", err)
	}
}

// failingStore fails the writes a test chooses, with internal detail that
// must never reach a client.
type failingStore struct {
	store.Store
}

var errDisk = errors.New("disk I/O error: /var/lib/supportgate/supportgate.db-wal")

func (f failingStore) AddInbound(context.Context, store.Inbound) (store.InboundResult, error) {
	return store.InboundResult{}, errDisk
}

func (f failingStore) AddOutbound(context.Context, store.Outbound) error { return errDisk }

// TestStoreFailureIsTemporaryAndSafe: a store failure is 451 4.3.0 with our
// sentence, never the internal error text, on MX and submission.
func TestStoreFailureIsTemporaryAndSafe(t *testing.T) {
	ts := newTestServer(t, func(s store.Store) store.Store { return failingStore{s} }, nil)
	err := smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"}, customerMail("a@customer.example", "x"))
	wantSMTPError(t, err, 451, smtp.EnhancedCode{4, 3, 0}, "try again later")
	if strings.Contains(err.Error(), "disk") {
		t.Errorf("internal error text leaked: %v", err)
	}
	err = smtpSend(ts.submission, sasl.NewPlainClient("", "alice@example.test", "demo-alice"), "alice@example.test",
		[]string{"new@customer.example"}, "From: alice@example.test\r\nTo: new@customer.example\r\nSubject: hi\r\n\r\nhi\r\n")
	wantSMTPError(t, err, 451, smtp.EnhancedCode{4, 3, 0}, "try again later")
}

// TestSubmissionRefusals: each refusal is a 5xx with a sentence.
func TestSubmissionRefusals(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) { c.Inboxes[0].MaxParticipants = 1 })
	alice := sasl.NewPlainClient("", "alice@example.test", "demo-alice")
	if err := smtpSend(ts.submission, sasl.NewPlainClient("", "alice@example.test", "nope"), "alice@example.test",
		[]string{"x@customer.example"}, "Subject: x\r\n\r\nx\r\n"); err == nil {
		t.Error("a wrong password was accepted")
	}
	// PLAIN with another agent's identity is refused.
	if err := smtpSend(ts.submission, sasl.NewPlainClient("bob@example.test", "alice@example.test", "demo-alice"), "alice@example.test",
		[]string{"x@customer.example"}, "Subject: x\r\n\r\nx\r\n"); err == nil {
		t.Error("AUTH PLAIN acting as another agent was accepted")
	}
	err := smtpSend(ts.submission, alice, "alice@example.test", []string{"support@example.test"},
		"From: alice@example.test\r\nTo: support@example.test\r\nSubject: x\r\n\r\nx\r\n")
	wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 5, 1}, "address it to a customer")

	err = smtpSend(ts.submission, alice, "alice@example.test", []string{"x@customer.example"},
		"this header line has no colon\r\n\r\nbody\r\n")
	if err == nil {
		t.Error("a message with an unreadable header was accepted")
	}

	// Over the participant cap (1 besides the owner): refused whole, nothing recorded.
	err = smtpSend(ts.submission, alice, "alice@example.test", []string{"o@customer.example", "p1@customer.example", "p2@customer.example"},
		"From: alice@example.test\r\nTo: o@customer.example\r\nCc: p1@customer.example, p2@customer.example\r\nSubject: x\r\n\r\nx\r\n")
	wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 7, 1}, "at most 1 participants")
	if pending, _ := ts.store.PendingDeliveries(context.Background(), 10); len(pending) != 0 {
		t.Errorf("a refused submission was queued: %+v", pending)
	}
}

// TestIMAPSeenIsPerAgentAndPushedUnderIDLE: \Seen belongs to one agent;
// EXAMINE never sets it; new mail reaches an idling client as EXISTS.
func TestIMAPSeenIsPerAgentAndPushedUnderIDLE(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	send := func(id string) {
		t.Helper()
		if err := smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"}, customerMail(id, "Subject "+id)); err != nil {
			t.Fatal(err)
		}
	}
	send("m1@customer.example")

	exists := make(chan uint32, 10)
	alice := imapLogin(t, ts.imap, "alice@example.test", "demo-alice", &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		}},
	})
	bob := imapLogin(t, ts.imap, "bob@example.test", "demo-bob", nil)

	// EXAMINE + BODY[] does not set \Seen.
	if _, err := bob.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect(); err == nil {
		t.Error("STORE in an EXAMINEd folder succeeded")
	}

	if _, err := alice.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	unseen := func(c *imapclient.Client) uint32 {
		t.Helper()
		st, err := c.Status("INBOX", &imap.StatusOptions{NumUnseen: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		return *st.NumUnseen
	}
	if err := bob.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	if n := unseen(bob); n != 1 {
		t.Errorf("bob has %d unseen; alice's \\Seen or bob's EXAMINE leaked into bob's", n)
	}
	res, err := alice.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	if err != nil || len(res.AllUIDs()) != 0 {
		t.Errorf("alice's UNSEEN search: %v %v", res, err)
	}

	// IDLE: a new customer mail arrives as EXISTS 2.
	idle, err := alice.Idle()
	if err != nil {
		t.Fatal(err)
	}
	send("m2@customer.example")
	select {
	case n := <-exists:
		if n != 2 {
			t.Errorf("EXISTS %d under IDLE, want 2", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no EXISTS under IDLE within 10s of new mail")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	res, err = alice.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "m2@"}}}, nil).Wait()
	if err != nil || len(res.AllUIDs()) != 1 {
		t.Errorf("SEARCH SUBJECT after IDLE: %v %v", res, err)
	}
}

// TestReplyEchoesOutlookThreadIndex: a reply from a client without
// Thread-Index to an Outlook customer carries a child of the customer's.
func TestReplyEchoesOutlookThreadIndex(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	outlook := "From: Hal <hal@contoso.example>\r\nTo: support@example.test\r\nSubject: Printer\r\nThread-Topic: Printer\r\n" +
		"Thread-Index: AQHbjLkTzKxYgnb4UEWnrS1cOq2XjQ==\r\nMessage-ID: <hal-1@contoso.example>\r\n\r\nHi\r\n"
	if err := smtpSend(ts.mx, nil, "hal@contoso.example", []string{"support@example.test"}, outlook); err != nil {
		t.Fatal(err)
	}
	reply := "From: alice@example.test\r\nTo: hal@contoso.example\r\nSubject: Re: Printer\r\nIn-Reply-To: <hal-1@contoso.example>\r\n\r\nOK\r\n"
	if err := smtpSend(ts.submission, sasl.NewPlainClient("", "alice@example.test", "demo-alice"), "alice@example.test",
		[]string{"hal@contoso.example"}, reply); err != nil {
		t.Fatal(err)
	}
	q, err := ts.store.PendingDeliveries(context.Background(), 10)
	if err != nil || len(q) != 1 {
		t.Fatalf("queue: %v %v", q, err)
	}
	ti := header(q[0].Raw, "Thread-Index")
	if !strings.HasPrefix(ti, "AQHbjLkTzKxYgnb4UEWnrS1cOq2Xj") || len(ti) != 36 || header(q[0].Raw, "Thread-Topic") != "Printer" {
		t.Errorf("reply Thread-Index %q, Thread-Topic %q", ti, header(q[0].Raw, "Thread-Topic"))
	}
}
