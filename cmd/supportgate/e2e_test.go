package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TestDemoWalkingSkeleton is issue 2's "done when", as a new user would try
// it: `supportgate serve` with no configuration serves the demo on its
// documented ports, and Python's smtplib and imaplib (clients we did not
// write) send a customer mail, read it as alice, reply, and find the
// rewritten reply in the outbox and both messages in one conversation.
func TestDemoWalkingSkeleton(t *testing.T) {
	python := needTool(t, "python3")
	p := ports{MX: 2525, Submission: 2587, IMAP: 1143, HTTP: 9325}
	for _, port := range []int{p.MX, p.Submission, p.IMAP, p.HTTP} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("demo port %d is busy: %v", port, err)
			}
			t.Skipf("demo port %d is busy (a supportgate running?): %v", port, err)
		}
		l.Close()
	}
	dir := t.TempDir()
	d := startDaemon(t, dir, p) // no -config and no ./supportgate.toml: the demo
	if !strings.Contains(d.log.String(), "embedded demo") {
		t.Errorf("the daemon does not say it runs the demo:\n%s", d.log.String())
	}
	script, err := filepath.Abs("../../testdata/e2e/walking_skeleton.py")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, script, "2525", "2587", "1143", filepath.Join(dir, "supportgate-data", "outbox")).CombinedOutput()
	t.Logf("walking_skeleton.py:\n%s", out)
	if err != nil || !bytes.HasSuffix(bytes.TrimSpace(out), []byte("OK")) {
		t.Fatalf("walking_skeleton.py failed: %v", err)
	}
}

// TestWalkingSkeletonGoClients drives the same path with Go's clients and
// checks the refusals: unknown recipients, wrong passwords, the view role,
// submission without AUTH; and that a note stays internal.
func TestWalkingSkeletonGoClients(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	d := startDaemon(t, dir, p, "-config", testConfig(t, dir, p))
	outbox := filepath.Join(dir, "data", "outbox")

	// MX: support and its plus forms are accepted, anything else is 550 5.1.1.
	customer := "dana@customer.example"
	first := "From: Dana <dana@customer.example>\r\nTo: support@example.test\r\nSubject: Invoice missing\r\n" +
		"Message-ID: <inv-1@customer.example>\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n\r\nWhere is my invoice?\r\n"
	if err := sendMail(d.addr(p.MX), nil, customer, []string{"support+whatever@example.test"}, first); err != nil {
		t.Fatalf("MX refused a plus-form support address: %v", err)
	}
	err := sendMail(d.addr(p.MX), nil, customer, []string{"ceo@example.test"}, first)
	var smtpErr *smtp.SMTPError
	if !errors.As(err, &smtpErr) || smtpErr.Code != 550 || smtpErr.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) {
		t.Fatalf("relay attempt: got %v, want 550 5.1.1", err)
	}

	// IMAP: a wrong password is refused; alice sees the message with its headers.
	if c, err := imapclient.DialInsecure(d.addr(p.IMAP), nil); err != nil {
		t.Fatal(err)
	} else {
		if err := c.Login("alice@example.test", "wrong").Wait(); err == nil {
			t.Error("IMAP login with a wrong password succeeded")
		}
		c.Close()
	}
	msgs := fetchInbox(t, d.addr(p.IMAP), "alice@example.test", "demo-alice")
	if len(msgs) != 1 {
		t.Fatalf("alice's INBOX has %d messages, want 1", len(msgs))
	}
	conv := header(msgs[0].body, "X-Supportgate-Conversation")
	if conv == "" || header(msgs[0].body, "X-Supportgate-Kind") != "inbound" {
		t.Fatalf("INBOX copy lacks the conversation headers:\n%s", msgs[0].body)
	}
	if int64(len(msgs[0].body)) != msgs[0].size {
		t.Errorf("RFC822.SIZE %d but BODY[] has %d bytes", msgs[0].size, len(msgs[0].body))
	}
	// carol (view) sees it too.
	if n := len(fetchInbox(t, d.addr(p.IMAP), "carol@example.test", "demo-carol")); n != 1 {
		t.Errorf("carol's INBOX has %d messages, want 1", n)
	}

	reply := "From: Bob <bob@example.test>\r\nTo: dana@customer.example\r\nSubject: Re: Invoice missing\r\n" +
		"In-Reply-To: <inv-1@customer.example>\r\nReferences: <inv-1@customer.example>\r\n\r\nIt is attached now.\r\n"
	// Submission: no AUTH, no mail.
	err = sendMail(d.addr(p.Submission), nil, "bob@example.test", []string{customer}, reply)
	if !errors.As(err, &smtpErr) || smtpErr.Code != 530 {
		t.Errorf("submission without AUTH: got %v, want 530", err)
	}
	// carol may read but not write: 550 5.7.1 with a sentence.
	err = sendMail(d.addr(p.Submission), sasl.NewPlainClient("", "carol@example.test", "demo-carol"),
		"carol@example.test", []string{customer}, reply)
	if !errors.As(err, &smtpErr) || smtpErr.Code != 550 || smtpErr.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) ||
		!strings.Contains(smtpErr.Message, "reply role") {
		t.Errorf("carol's reply: got %v, want 550 5.7.1 naming the reply role", err)
	}
	// bob replies with AUTH LOGIN (Outlook's mechanism) and a hidden Bcc.
	err = sendMail(d.addr(p.Submission), sasl.NewLoginClient("bob@example.test", "demo-bob"),
		"bob@example.test", []string{customer, "auditor@partner.example"}, reply)
	if err != nil {
		t.Fatalf("bob's reply: %v", err)
	}
	// bob writes a note: only internal recipients, so nothing leaves.
	note := "From: Bob <bob@example.test>\r\nTo: support@example.test\r\nSubject: Re: Invoice missing\r\n" +
		"In-Reply-To: <inv-1@customer.example>\r\n\r\nShe asked twice already.\r\n"
	if err := sendMail(d.addr(p.Submission), sasl.NewPlainClient("", "bob@example.test", "demo-bob"),
		"bob@example.test", []string{"support@example.test"}, note); err != nil {
		t.Fatalf("bob's note: %v", err)
	}

	envs := waitOutbox(t, outbox, 1)
	if got := envs[0].RcptTo; !slices.Equal(slices.Sorted(slices.Values(got)), []string{"auditor@partner.example", customer}) {
		t.Errorf("envelope recipients %v, want the customer and the hidden Bcc", got)
	}
	sent := envs[0].raw
	if bytes.Contains(sent, []byte("auditor@")) {
		t.Errorf("the hidden Bcc recipient shows in the sent message:\n%s", sent)
	}
	if !bytes.HasSuffix(sent, []byte("\r\n\r\nIt is attached now.\r\n")) {
		t.Errorf("body changed:\n%s", sent)
	}

	time.Sleep(200 * time.Millisecond) // the note has no outbox file to wait for
	if envs := waitOutbox(t, outbox, 1); len(envs) != 1 {
		t.Errorf("outbox has %d messages; the note must not leave", len(envs))
	}
	msgs = fetchInbox(t, d.addr(p.IMAP), "alice@example.test", "demo-alice")
	var kinds []string
	for _, m := range msgs {
		kinds = append(kinds, header(m.body, "X-Supportgate-Kind"))
		if c := header(m.body, "X-Supportgate-Conversation"); c != conv {
			t.Errorf("message in conversation %q, want %q", c, conv)
		}
	}
	if strings.Join(kinds, ",") != "inbound,reply,note" {
		t.Errorf("kinds %v, want inbound,reply,note", kinds)
	}
	if bcc := header(msgs[1].body, "X-Supportgate-Bcc"); bcc != "auditor@partner.example" {
		t.Errorf("agents' copy of the reply has X-Supportgate-Bcc %q", bcc)
	}

	// The customer answers the reply: In-Reply-To names the signed
	// Message-ID, so it threads; so does a bare mail to the Reply-To token.
	sentID := header(sent, "Message-Id")
	replyTo := strings.Trim(header(sent, "Reply-To"), "<>")
	followUps := []struct{ rcpt, msg string }{
		{"support@example.test", "From: dana@customer.example\r\nSubject: Re: Invoice missing\r\nIn-Reply-To: " + sentID +
			"\r\nMessage-ID: <inv-2@customer.example>\r\n\r\nThanks!\r\n"},
		{replyTo, "From: dana@customer.example\r\nSubject: one more thing\r\nMessage-ID: <inv-3@customer.example>\r\n\r\nAnd the VAT?\r\n"},
		{"support@example.test", "From: frank@other.example\r\nSubject: Invoice missing\r\nMessage-ID: <other-1@other.example>\r\n\r\nMe too\r\n"},
	}
	for _, f := range followUps {
		if err := sendMail(d.addr(p.MX), nil, "dana@customer.example", []string{f.rcpt}, f.msg); err != nil {
			t.Fatalf("follow-up to %s: %v", f.rcpt, err)
		}
	}
	msgs = fetchInbox(t, d.addr(p.IMAP), "alice@example.test", "demo-alice")
	if len(msgs) != 6 {
		t.Fatalf("INBOX has %d messages, want 6", len(msgs))
	}
	for i, want := range []string{conv, conv, "2"} {
		if got := header(msgs[3+i].body, "X-Supportgate-Conversation"); got != want {
			t.Errorf("follow-up %d threaded into conversation %q, want %q", i, got, want)
		}
	}

	// Health.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", p.HTTP))
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz: %v %v", resp, err)
	}
}

// TestRestartKeepsUIDs: UIDs, UIDVALIDITY, \Seen and messages survive a
// restart.
func TestRestartKeepsUIDs(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	cfg := testConfig(t, dir, p)
	d := startDaemon(t, dir, p, "-config", cfg)
	for i := range 3 {
		sendCustomerMail(t, d.addr(p.MX), i)
	}
	before := fetchInbox(t, d.addr(p.IMAP), "alice@example.test", "demo-alice")
	validity := selectValidity(t, d.addr(p.IMAP), "alice@example.test", "demo-alice")
	d.stop()

	d = startDaemon(t, dir, p, "-config", cfg)
	after := fetchInbox(t, d.addr(p.IMAP), "alice@example.test", "demo-alice")
	if v := selectValidity(t, d.addr(p.IMAP), "alice@example.test", "demo-alice"); v != validity {
		t.Errorf("UIDVALIDITY changed across a restart: %d, then %d", validity, v)
	}
	if len(after) != len(before) || len(after) != 3 {
		t.Fatalf("%d messages before the restart, %d after", len(before), len(after))
	}
	for i := range before {
		if before[i].uid != after[i].uid || !bytes.Equal(before[i].body, after[i].body) {
			t.Errorf("message %d: UID %d then %d, or its bytes changed", i, before[i].uid, after[i].uid)
		}
		if !after[i].seen {
			t.Errorf("message %d lost \\Seen (set by BODY[] before the restart)", i)
		}
	}
}

// TestKillAfter250 kills the daemon with SIGKILL the instant after a 250, on
// the MX and on submission: nothing that got a 250 is lost, and the queued
// reply is delivered after the restart.
func TestKillAfter250(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	cfg := testConfig(t, dir, p)

	d := startDaemon(t, dir, p, "-config", cfg)
	sendCustomerMail(t, d.addr(p.MX), 0)
	d.kill()

	d = startDaemon(t, dir, p, "-config", cfg)
	msgs := fetchInbox(t, d.addr(p.IMAP), "bob@example.test", "demo-bob")
	if len(msgs) != 1 || !bytes.Contains(msgs[0].body, []byte("Message-ID: <crash-0@customer.example>")) {
		t.Fatalf("after kill -9, INBOX holds %d messages", len(msgs))
	}
	reply := "From: Bob <bob@example.test>\r\nTo: erin@customer.example\r\nSubject: Re: crash\r\n" +
		"In-Reply-To: <crash-0@customer.example>\r\n\r\nOn it.\r\n"
	// Send through a raw client so the kill comes right after the 250 of DATA.
	c, err := smtp.Dial(d.addr(p.Submission))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "bob@example.test", "demo-bob")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("bob@example.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("erin@customer.example", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(reply))
	if err := w.Close(); err != nil { // returns once the 250 is read
		t.Fatal(err)
	}
	d.kill()
	c.Close()

	d = startDaemon(t, dir, p, "-config", cfg)
	msgs = fetchInbox(t, d.addr(p.IMAP), "bob@example.test", "demo-bob")
	if len(msgs) != 2 || header(msgs[1].body, "X-Supportgate-Kind") != "reply" {
		t.Fatalf("after kill -9 following the reply's 250, INBOX holds %d messages", len(msgs))
	}
	envs := waitOutbox(t, filepath.Join(dir, "data", "outbox"), 1)
	if len(envs) != 1 || envs[0].RcptTo[0] != "erin@customer.example" {
		t.Errorf("the queued reply was not delivered after the restart: %+v", envs)
	}
}

func sendCustomerMail(t *testing.T, addr string, i int) {
	t.Helper()
	msg := fmt.Sprintf("From: Erin <erin@customer.example>\r\nTo: support@example.test\r\nSubject: Crash %d\r\n"+
		"Message-ID: <crash-%d@customer.example>\r\n\r\nIt crashed %d times.\r\n", i, i, i)
	if err := sendMail(addr, nil, "erin@customer.example", []string{"support@example.test"}, msg); err != nil {
		t.Fatalf("MX: %v", err)
	}
}

type fetched struct {
	uid  imap.UID
	size int64
	seen bool
	body []byte
}

// fetchInbox logs in, reads INBOX with BODY[] (which sets \Seen) and logs out.
func fetchInbox(t *testing.T, addr, user, pass string) []fetched {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("IMAP login %s: %v", user, err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("SELECT INBOX: %v", err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	section := &imap.FetchItemBodySection{}
	bufs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, Flags: true, RFC822Size: true, Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{},
		InternalDate: true, BodySection: []*imap.FetchItemBodySection{section},
	}).Collect()
	if err != nil {
		t.Fatalf("FETCH: %v", err)
	}
	var out []fetched
	for _, b := range bufs {
		f := fetched{uid: b.UID, size: b.RFC822Size, body: b.FindBodySection(section)}
		for _, fl := range b.Flags {
			f.seen = f.seen || fl == imap.FlagSeen
		}
		if b.Envelope == nil || b.BodyStructure == nil || b.InternalDate.IsZero() {
			t.Errorf("FETCH of UID %d lacks ENVELOPE, BODYSTRUCTURE or INTERNALDATE", b.UID)
		}
		out = append(out, f)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
	return out
}

func selectValidity(t *testing.T, addr, user, pass string) uint32 {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	return sel.UIDValidity
}

// header returns a top-level header field's value ("" if absent).
func header(msg []byte, name string) string {
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	for _, line := range strings.Split(string(head), "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

type outboxEntry struct {
	MailFrom string   `json:"mail_from"`
	RcptTo   []string `json:"rcpt_to"`
	raw      []byte
}

// waitOutbox waits until the outbox holds at least n envelopes and returns
// them with their messages, in id order.
func waitOutbox(t *testing.T, dir string, n int) []outboxEntry {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		if len(files) >= n {
			var out []outboxEntry
			for _, f := range files {
				var e outboxEntry
				b, err := os.ReadFile(f)
				if err == nil {
					err = json.Unmarshal(b, &e)
				}
				if err == nil {
					e.raw, err = os.ReadFile(strings.TrimSuffix(f, ".json") + ".eml")
				}
				if err != nil {
					t.Fatalf("outbox entry %s: %v", f, err)
				}
				out = append(out, e)
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox %s holds %d envelopes after 20s, want %d", dir, len(files), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
