package gateway

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/supportgate/supportgate/store"
)

// Issue 12: what real mail clients do by themselves never traps an agent.

// TestServedReplyTo: Reply in a mail client on a public reply writes to the
// customer, on a note stays a note (DESIGN.md §6): the IMAP copy of a
// reply carries Reply-To the owner, of a note the inbox, never two
// Reply-To fields, and its size is what FETCH BODY[] returns.
func TestServedReplyTo(t *testing.T) {
	w := newWorkspace(t, nil)
	w.customer("rt1@customer.example", "Broken printer")
	bob := sasl.NewPlainClient("", "bob@example.test", "demo-bob")
	reply := "From: bob@example.test\r\nTo: gina@customer.example\r\nCc: pat@partner.example\r\nSubject: Re: Broken printer\r\n" +
		"In-Reply-To: <rt1@customer.example>\r\nMessage-ID: <bob-r1@client.example>\r\n\r\nTry turning it off.\r\n"
	if err := smtpSend(w.submission, bob, "bob@example.test", []string{"gina@customer.example", "pat@partner.example"}, reply); err != nil {
		t.Fatal(err)
	}
	note := "From: bob@example.test\r\nTo: support@example.test\r\nSubject: Re: Broken printer\r\n" +
		"In-Reply-To: <rt1@customer.example>\r\nMessage-ID: <bob-n1@client.example>\r\nReply-To: bob@example.test\r\n\r\nShe called too.\r\n"
	if err := smtpSend(w.submission, bob, "bob@example.test", []string{"support@example.test"}, note); err != nil {
		t.Fatal(err)
	}
	alice := w.login("alice@example.test", nil)
	if n := selectN(t, alice, "INBOX"); n != 3 {
		t.Fatalf("INBOX has %d, want the customer's mail, the reply and the note", n)
	}
	msgs, err := alice.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{
		Envelope: true, RFC822Size: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil || len(msgs) != 3 {
		t.Fatalf("FETCH: %v (%d)", err, len(msgs))
	}
	want := []string{"", "gina@customer.example", "support@example.test"}
	for i, m := range msgs {
		var body []byte
		for _, b := range m.BodySection {
			body = b.Bytes
		}
		if int64(len(body)) != m.RFC822Size {
			t.Errorf("message %d: RFC822.SIZE %d, BODY[] %d bytes", i+1, m.RFC822Size, len(body))
		}
		head, _, _ := strings.Cut(string(body), "\r\n\r\n")
		fields := regexp.MustCompile(`(?im)^reply-to:[ \t]*(.*)$`).FindAllStringSubmatch(head, -1)
		if want[i] == "" {
			if len(fields) != 0 {
				t.Errorf("the customer's message got a Reply-To: %v", fields)
			}
			continue
		}
		if len(fields) != 1 || strings.TrimSpace(fields[0][1]) != want[i] {
			t.Errorf("message %d: Reply-To fields %v, want one: %s\n%s", i+1, fields, want[i], head)
		}
		if rt := m.Envelope.ReplyTo; len(rt) != 1 || rt[0].Addr() != want[i] {
			t.Errorf("message %d: ENVELOPE reply-to %v, want %s", i+1, rt, want[i])
		}
	}
	// What the customer got still carries the reply token.
	q, err := w.store.PendingDeliveries(context.Background(), 10)
	if err != nil || len(q) != 1 || !strings.Contains(header(q[0].Raw, "Reply-To"), "support+") {
		t.Fatalf("the queued reply: %v %v", q, err)
	}
	// Bob's Sent copy is served the same way.
	bobIMAP := w.login("bob@example.test", nil)
	selectN(t, bobIMAP, "Sent")
	sent, err := bobIMAP.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil || len(sent) != 1 || len(sent[0].Envelope.ReplyTo) != 1 || sent[0].Envelope.ReplyTo[0].Addr() != "gina@customer.example" {
		t.Errorf("Sent copy of the reply: %+v %v", sent, err)
	}
}

// TestResubmissionIsSentOnce: DESIGN.md §5 item 9, a client that submits
// the same message again (a lost 250, an Outbox retry) gets 250 and
// nothing is recorded or sent twice; another agent's message with the
// same Message-ID is not taken for it.
func TestResubmissionIsSentOnce(t *testing.T) {
	w := newWorkspace(t, nil)
	w.customer("rs1@customer.example", "Invoice")
	reply := "From: bob@example.test\r\nTo: gina@customer.example\r\nSubject: Re: Invoice\r\n" +
		"In-Reply-To: <rs1@customer.example>\r\nMessage-ID: <same@client.example>\r\n\r\nAttached.\r\n"
	for range 3 {
		if err := smtpSend(w.submission, sasl.NewPlainClient("", "bob@example.test", "demo-bob"), "bob@example.test",
			[]string{"gina@customer.example"}, reply); err != nil {
			t.Fatal(err)
		}
	}
	q, err := w.store.PendingDeliveries(context.Background(), 10)
	if err != nil || len(q) != 1 {
		t.Fatalf("%d deliveries queued for three submissions of one message, want 1 (%v)", len(q), err)
	}
	msgs, err := w.store.ConversationMessages(context.Background(), 1)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("conversation holds %d messages, want the customer's and one reply (%v)", len(msgs), err)
	}
	alices := strings.Replace(strings.Replace(reply, "bob@", "alice@", 1), "Attached.", "#send\r\n\r\nMine too.", 1) // past the collision hold (§5 item 10)
	if err := smtpSend(w.submission, sasl.NewPlainClient("", "alice@example.test", "demo-alice"), "alice@example.test",
		[]string{"gina@customer.example"}, alices); err != nil {
		t.Fatal(err)
	}
	if q, _ := w.store.PendingDeliveries(context.Background(), 10); len(q) != 2 {
		t.Errorf("alice's message with bob's Message-ID: %d deliveries, want 2", len(q))
	}
}

// TestAnsweredAndOwnKeywords: \Answered is the server's (a public reply
// followed the message; a note answers nothing), and what a client stores
// of it or of its bookkeeping is that agent's alone (DESIGN.md §6).
func TestAnsweredAndOwnKeywords(t *testing.T) {
	w := newWorkspace(t, nil)
	w.customer("an1@customer.example", "Refund")
	alice, bob := w.login("alice@example.test", nil), w.login("bob@example.test", nil)
	selectN(t, alice, "INBOX")
	selectN(t, bob, "INBOX")
	send := func(id, to, body string) {
		t.Helper()
		msg := "From: bob@example.test\r\nTo: " + to + "\r\nSubject: Re: Refund\r\nIn-Reply-To: <an1@customer.example>\r\nMessage-ID: <" + id + ">\r\n\r\n" + body + "\r\n"
		if err := smtpSend(w.submission, sasl.NewPlainClient("", "bob@example.test", "demo-bob"), "bob@example.test", []string{to}, msg); err != nil {
			t.Fatal(err)
		}
	}
	send("an-note@client.example", "support@example.test", "internal")
	if fl := flagsOf(t, alice, 1); slices.Contains(fl, imap.FlagAnswered) {
		t.Errorf("a note answered the customer's message: %v", fl)
	}
	send("an-reply@client.example", "gina@customer.example", "public")
	for _, c := range []struct {
		seq      uint32
		answered bool
	}{{1, true}, {2, true}, {3, false}} {
		if fl := flagsOf(t, alice, c.seq); slices.Contains(fl, imap.FlagAnswered) != c.answered {
			t.Errorf("message %d: flags %v, answered should be %v", c.seq, fl, c.answered)
		}
	}
	// A client's own \Answered and bookkeeping stay its agent's.
	if _, err := alice.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd,
		Flags: []imap.Flag{imap.FlagAnswered, "$Forwarded", "NonJunk", "$MDNSent"}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	fl := flagsOf(t, alice, 3)
	for _, f := range []imap.Flag{imap.FlagAnswered, "$Forwarded", "NonJunk", "$MDNSent"} {
		if !slices.Contains(fl, f) {
			t.Errorf("alice's own %s is not kept: %v", f, fl)
		}
	}
	selectN(t, bob, "INBOX")
	if fl := flagsOf(t, bob, 3); len(fl) != 1 || fl[0] != imap.FlagSeen {
		t.Errorf("bob sees %v on his own reply, want only his \\Seen", fl)
	}
	if c, _ := w.store.Conversation(context.Background(), 1); len(c.Tags) != 0 {
		t.Errorf("a client's bookkeeping became tags: %v", c.Tags)
	}
	// Removing \Answered removes the client's, not the server's.
	if _, err := alice.Store(imap.SeqSetNum(1, 3), &imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: []imap.Flag{imap.FlagAnswered}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(flagsOf(t, alice, 1), imap.FlagAnswered) || slices.Contains(flagsOf(t, alice, 3), imap.FlagAnswered) {
		t.Errorf("after -FLAGS \\Answered: 1 %v, 3 %v", flagsOf(t, alice, 1), flagsOf(t, alice, 3))
	}
	// STORE FLAGS replaces the agent's own, and keeps the conversation's.
	if _, err := alice.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"urgent"}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsSet, Flags: []imap.Flag{"urgent", "Junk"}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	fl = flagsOf(t, alice, 3)
	if !slices.Contains(fl, "Junk") || slices.Contains(fl, "$Forwarded") || !slices.Contains(fl, "urgent") {
		t.Errorf("after STORE FLAGS (urgent Junk): %v", fl)
	}
	// A view agent may keep its own bookkeeping, like \Seen.
	carol := w.login("carol@example.test", nil)
	selectN(t, carol, "INBOX")
	if _, err := carol.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"NonJunk"}, Silent: true}, nil).Collect(); err != nil {
		t.Errorf("carol's junk filter was refused: %v", err)
	}
}

// lineIMAP is an IMAP session read line by line, to check the order of
// untagged responses.
type lineIMAP struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	n    int
}

func dialLineIMAP(t *testing.T, addr, user, pass string) *lineIMAP {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := &lineIMAP{t: t, conn: c, r: bufio.NewReader(c)}
	s.line() // greeting
	s.cmd(fmt.Sprintf("LOGIN %s %s", user, pass))
	return s
}

func (s *lineIMAP) line() string {
	s.t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := s.r.ReadString('\n')
	if err != nil {
		s.t.Fatalf("reading: %v", err)
	}
	return l
}

// cmd sends a command and returns its untagged responses, failing unless
// it ends OK.
func (s *lineIMAP) cmd(c string) []string {
	s.t.Helper()
	s.n++
	tag := fmt.Sprintf("t%d", s.n)
	fmt.Fprintf(s.conn, "%s %s\r\n", tag, c)
	var out []string
	for {
		l := s.line()
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				s.t.Fatalf("%s: %s", c, l)
			}
			return out
		}
		out = append(out, l)
	}
}

// TestKeywordsAnnouncedBeforeUse: RFC 9051 7.3.5, every keyword a FETCH
// shows is in the FLAGS of the mailbox first, also a tag another agent
// created while the session was open, and one the session stores itself.
func TestKeywordsAnnouncedBeforeUse(t *testing.T) {
	w := newWorkspace(t, nil)
	w.customer("kw1@customer.example", "Tags")
	bob := dialLineIMAP(t, w.imap, "bob@example.test", "demo-bob")
	sel := strings.Join(bob.cmd("SELECT INBOX"), "")
	if strings.Contains(sel, "escalated") {
		t.Fatalf("a tag nobody set is announced: %s", sel)
	}
	alice := w.login("alice@example.test", nil)
	selectN(t, alice, "INBOX")
	if _, err := alice.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"escalated"}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	checkOrder := func(lines []string, keyword string) {
		t.Helper()
		flags, fetch := -1, -1
		for i, l := range lines {
			if strings.HasPrefix(l, "* FLAGS ") && strings.Contains(l, keyword) && flags < 0 {
				flags = i
			}
			if strings.Contains(l, " FETCH ") && strings.Contains(l, keyword) && fetch < 0 {
				fetch = i
			}
		}
		if fetch < 0 || flags < 0 || flags > fetch {
			t.Errorf("%s: FLAGS at %d, first FETCH showing it at %d:\n%s", keyword, flags, fetch, strings.Join(lines, ""))
		}
	}
	checkOrder(bob.cmd("FETCH 1 (FLAGS)"), "escalated")
	checkOrder(bob.cmd("STORE 1 +FLAGS (vip)"), "vip")
	// A later SELECT lists them.
	sel = strings.Join(bob.cmd("SELECT INBOX"), "")
	if !strings.Contains(sel, "escalated") || !strings.Contains(sel, "vip") {
		t.Errorf("SELECT does not announce the tags in use:\n%s", sel)
	}
	// A tag arriving under IDLE is announced first too.
	fmt.Fprintf(bob.conn, "t99 IDLE\r\n")
	if l := bob.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %s", l)
	}
	if _, err := alice.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"callback"}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for !strings.Contains(strings.Join(lines, ""), "FETCH") {
		lines = append(lines, bob.line())
	}
	checkOrder(lines, "callback")
	fmt.Fprintf(bob.conn, "DONE\r\n")
	for l := bob.line(); !strings.HasPrefix(l, "t99 "); l = bob.line() {
	}
	_ = store.KindReply
}

// TestSearchSmallerWithOtherKeys: SMALLER keeps its bound when other keys
// follow it (go-imap's SearchCriteria.And dropped it; imaptest stress:
// "SEARCH result has extra seq").
func TestSearchSmallerWithOtherKeys(t *testing.T) {
	w := newWorkspace(t, nil)
	w.customer("small@customer.example", "Sizes")
	big := "From: Gina <gina@customer.example>\r\nTo: support@example.test\r\nSubject: Sizes\r\nMessage-ID: <big@customer.example>\r\n\r\n" +
		strings.Repeat("Hello there\r\n", 500)
	if err := smtpSend(w.mx, nil, "gina@customer.example", []string{"support@example.test"}, big); err != nil {
		t.Fatal(err)
	}
	c := dialLineIMAP(t, w.imap, "alice@example.test", "demo-alice")
	c.cmd("SELECT INBOX")
	got := strings.Join(c.cmd(`SEARCH SMALLER 2000 TEXT "hello" SUBJECT "sizes"`), "")
	if !strings.Contains(got, "* SEARCH 1") || strings.Contains(got, " 2") {
		t.Errorf("SEARCH SMALLER 2000 TEXT hello SUBJECT sizes: %q, want only message 1", got)
	}
}
