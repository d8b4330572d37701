package gateway

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
)

// noSetStatus is a store whose SetStatus always fails and counts its calls:
// a second write after AddInbound, which a crash or an error could lose.
type noSetStatus struct {
	store.Store
	calls atomic.Int32
}

func (s *noSetStatus) SetStatus(context.Context, int64, store.Status) error {
	s.calls.Add(1)
	return errors.New("killed between AddInbound and SetStatus")
}

// TestQuarantineIsOneWrite: with auth_failure = "quarantine" (DESIGN.md
// §8), a failing mail that opens a conversation is stored with that
// conversation already in Spam, by AddInbound alone: with SetStatus
// failing, it is in Spam, never in the agents' INBOX, and its retry (a
// duplicate) leaves it there. A passing mail opens its conversation in
// INBOX; a failing reply into it is flagged and moves nothing.
func TestQuarantineIsOneWrite(t *testing.T) {
	ctx := context.Background()
	d := newTestDNS(t)
	d.TXT("customer.example", "v=spf1 ip4:127.0.0.1 -all")
	d.TXT("_dmarc.customer.example", "v=DMARC1; p=reject")
	d.TXT("forged.example", "v=spf1 -all")
	st := &noSetStatus{}
	var logged lockedBuffer // the admin reads in the log what happened to each mail
	ts := newLoggingTestServer(t, func(s store.Store) store.Store { st.Store = s; return st }, func(c *config.Config) {
		c.DNS.Resolver = d.Addr
		c.Inboxes[0].AuthFailure = config.AuthFailureQuarantine
	}, &logged)
	send := func(mailFrom, id, extra string) store.Message {
		t.Helper()
		msg := "From: gina@customer.example\r\nTo: support@example.test\r\nSubject: Printer " + id +
			"\r\nMessage-ID: <" + id + ">\r\n" + extra + "\r\nHello\r\n"
		if err := smtpSend(ts.mx, nil, mailFrom, []string{"support@example.test"}, msg); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		m, err := ts.store.MessageByHeaderID(ctx, id)
		if err != nil {
			t.Fatalf("%s not stored: %v", id, err)
		}
		return m
	}
	conv := func(id int64) store.Conversation {
		t.Helper()
		c, err := ts.store.Conversation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	eventTypes := func(id int64) string {
		t.Helper()
		evs, err := ts.store.Events(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, e := range evs {
			types = append(types, e.Type)
		}
		return strings.Join(types, " ")
	}
	// count is how many messages alice's client sees in a folder.
	count := func(name string) uint32 {
		t.Helper()
		c := imapLogin(t, ts.imap, "alice@example.test", "demo-alice", nil)
		defer c.Logout()
		sel, err := c.Select(name, nil).Wait()
		if err != nil {
			t.Fatalf("SELECT %s: %v", name, err)
		}
		return sel.NumMessages
	}

	q := send("x@forged.example", "q1@test", "")
	if line := logLine(logged.String(), "conversation="+strconv.FormatInt(q.Conversation, 10)); !strings.Contains(line, "auth_failed=") ||
		!strings.Contains(line, "quarantined=true") {
		t.Errorf("the log does not say the mail was quarantined: %q", line)
	}
	if c := conv(q.Conversation); c.Status != store.StatusSpam {
		t.Errorf("quarantined conversation is %q, want spam", c.Status)
	}
	if ev := eventTypes(q.Conversation); !strings.Contains(ev, "auth-failed") {
		t.Errorf("quarantined mail not flagged: events %q", ev)
	}
	if n := count("INBOX"); n != 0 {
		t.Errorf("INBOX holds %d messages, want none: the quarantined one is not for it", n)
	}
	if n := count("Spam"); n != 1 {
		t.Errorf("Spam holds %d messages, want the quarantined one", n)
	}
	// The client's retry is a duplicate; the conversation stays in Spam.
	if again := send("x@forged.example", "q1@test", ""); again.ID != q.ID || conv(q.Conversation).Status != store.StatusSpam {
		t.Errorf("retry: message %d (want %d), status %q", again.ID, q.ID, conv(q.Conversation).Status)
	}

	// A passing mail opens a conversation in INBOX; a failing reply into it
	// is flagged and stays where it is.
	good := send("gina@customer.example", "q2@test", "")
	reply := send("x@forged.example", "q3@test", "In-Reply-To: <q2@test>\r\n")
	if c := conv(good.Conversation); reply.Conversation != good.Conversation || c.Status != store.StatusOpen {
		t.Errorf("failing reply: conversation %d (want %d), status %q", reply.Conversation, good.Conversation, c.Status)
	}
	if ev := eventTypes(good.Conversation); !strings.Contains(ev, "auth-failed") {
		t.Errorf("failing reply not flagged: events %q", ev)
	}
	if n, spam := count("INBOX"), count("Spam"); n != 2 || spam != 1 {
		t.Errorf("INBOX holds %d messages, Spam %d; want the passing mail and its reply, and the quarantined one", n, spam)
	}
	if n := st.calls.Load(); n != 0 {
		t.Errorf("SetStatus called %d times; quarantine must need no write after AddInbound", n)
	}
	if line := logLine(logged.String(), "conversation="+strconv.FormatInt(good.Conversation, 10)); !strings.Contains(line, "quarantined=false") {
		t.Errorf("a mail that was not quarantined is logged as %q", line)
	}
}

// logLine is the first "inbound message stored" line of log holding want.
func logLine(log, want string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "inbound message stored") && strings.Contains(l, want+" ") {
			return l
		}
	}
	return ""
}
