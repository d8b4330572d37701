package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
)

// authWorld is a test server whose [dns] resolver is a loopback DNS server
// publishing SPF, DKIM and DMARC records for a few domains. The SMTP
// client is 127.0.0.1.
type authWorld struct {
	*testServer
	dns *testDNS
	key ed25519.PrivateKey
}

func newAuthWorld(t *testing.T, authFailure string) *authWorld {
	t.Helper()
	d := newTestDNS(t)
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dkimKey := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	pass, fail := "v=spf1 ip4:127.0.0.1 -all", "v=spf1 -all"
	// customer.example: relaxed DMARC; mail.customer.example and
	// sub.customer.example share its organizational domain.
	d.TXT("customer.example", pass)
	d.TXT("mail.customer.example", pass)
	d.TXT("_dmarc.customer.example", "v=DMARC1; p=reject")
	d.TXT("sel._domainkey.customer.example", dkimKey)
	d.TXT("sel._domainkey.mail.customer.example", dkimKey)
	// strict.example: strict alignment for both.
	d.TXT("_dmarc.strict.example", "v=DMARC1; p=reject; aspf=s; adkim=s")
	d.TXT("mail.strict.example", pass)
	d.TXT("sel._domainkey.strict.example", dkimKey)
	d.TXT("sel._domainkey.mail.strict.example", dkimKey)
	// forged.example: this client may not send for it.
	d.TXT("forged.example", fail)
	d.TXT("nodmarc.example", fail)
	// example.test, the agents' domain: a forged agent fails DMARC.
	d.TXT("_dmarc.example.test", "v=DMARC1; p=reject")
	// temp.example and one DKIM key: the DNS server fails.
	d.ServFail("temp.example")
	d.ServFail("_dmarc.temp.example")
	d.ServFail("broken._domainkey.customer.example")

	ts := newTestServer(t, nil, func(c *config.Config) {
		c.DNS.Resolver = d.Addr
		if authFailure != "" {
			c.Inboxes[0].AuthFailure = authFailure
		}
	})
	return &authWorld{testServer: ts, dns: d, key: key}
}

// mail is a message from fromAddr; signed by d= domain with selector sel
// when domain is not "".
func (w *authWorld) mail(t *testing.T, fromAddr, id, domain, sel, extra string) string {
	t.Helper()
	msg := "From: " + fromAddr + "\r\nTo: support@example.test\r\nSubject: Printer " + id + "\r\nMessage-ID: <" + id + ">\r\n" +
		extra + "\r\nHello\r\n"
	if domain == "" {
		return msg
	}
	var b bytes.Buffer
	err := dkim.Sign(&b, strings.NewReader(msg), &dkim.SignOptions{Domain: domain, Selector: sel, Signer: w.key,
		HeaderKeys: []string{"From", "To", "Subject", "Message-ID"}})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// stored returns the stored copy of the message with that Message-ID.
func (w *authWorld) stored(t *testing.T, id string) (store.Message, []byte) {
	t.Helper()
	ctx := context.Background()
	m, err := w.store.MessageByHeaderID(ctx, id)
	if err != nil {
		t.Fatalf("message %s not stored: %v", id, err)
	}
	raw, err := w.store.MessageRaw(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return m, raw
}

// authResults parses the first Authentication-Results field of raw into
// its authserv-id and "method=result param=value" words.
func authResults(t *testing.T, raw []byte) (string, map[string]string) {
	t.Helper()
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(h.Values("Authentication-Results")); n != 1 {
		t.Fatalf("%d Authentication-Results fields in\n%s", n, raw)
	}
	if !bytes.HasPrefix(afterTrace(t, raw), []byte("Authentication-Results: ")) {
		t.Errorf("Authentication-Results does not follow our Received: field:\n%s", raw)
	}
	id, results, err := authres.Parse(h.Get("Authentication-Results"))
	if err != nil {
		t.Fatalf("Authentication-Results does not parse: %v\n%s", err, raw)
	}
	got := map[string]string{}
	for _, r := range results {
		switch r := r.(type) {
		case *authres.SPFResult:
			got["spf"] = string(r.Value) + " smtp.mailfrom=" + r.From
		case *authres.DKIMResult:
			if got["dkim"] != "" {
				t.Errorf("more than one dkim result")
			}
			got["dkim"] = string(r.Value)
			if r.Domain != "" {
				got["dkim"] += " header.d=" + r.Domain
			}
		case *authres.DMARCResult:
			got["dmarc"] = string(r.Value) + " header.from=" + r.From
		}
	}
	return id, got
}

// TestMailAuthResults: SPF, DKIM and DMARC results on the stored copy, for
// pass, fail, temperror, and relaxed and strict alignment, with the inbox
// accepting everything.
func TestMailAuthResults(t *testing.T) {
	w := newAuthWorld(t, config.AuthFailureAccept)
	tests := []struct {
		name                      string
		mailFrom, from            string
		dkimDomain, sel           string
		tamper                    bool
		wantSPF, wantDKIM, wantDM string
	}{
		{"all pass", "gina@customer.example", "gina@customer.example", "customer.example", "sel", false,
			"pass smtp.mailfrom=gina@customer.example", "pass header.d=customer.example", "pass header.from=customer.example"},
		{"relaxed SPF alignment", "b@mail.customer.example", "gina@customer.example", "", "", false,
			"pass smtp.mailfrom=b@mail.customer.example", "none", "pass header.from=customer.example"},
		{"strict SPF alignment", "b@mail.strict.example", "x@strict.example", "", "", false,
			"pass smtp.mailfrom=b@mail.strict.example", "none", "fail header.from=strict.example"},
		{"relaxed DKIM alignment", "x@forged.example", "gina@customer.example", "mail.customer.example", "sel", false,
			"fail smtp.mailfrom=x@forged.example", "pass header.d=mail.customer.example", "pass header.from=customer.example"},
		{"strict DKIM alignment, subdomain", "x@forged.example", "x@strict.example", "mail.strict.example", "sel", false,
			"fail smtp.mailfrom=x@forged.example", "pass header.d=mail.strict.example", "fail header.from=strict.example"},
		{"strict DKIM alignment, same domain", "x@forged.example", "x@strict.example", "strict.example", "sel", false,
			"fail smtp.mailfrom=x@forged.example", "pass header.d=strict.example", "pass header.from=strict.example"},
		{"DKIM fail: body changed", "x@forged.example", "gina@customer.example", "customer.example", "sel", true,
			"fail smtp.mailfrom=x@forged.example", "fail header.d=customer.example", "fail header.from=customer.example"},
		{"DKIM fail, SPF aligned", "gina@customer.example", "gina@customer.example", "customer.example", "sel", true,
			"pass smtp.mailfrom=gina@customer.example", "fail header.d=customer.example", "pass header.from=customer.example"},
		{"DKIM key temperror", "x@forged.example", "gina@customer.example", "customer.example", "broken", false,
			"fail smtp.mailfrom=x@forged.example", "temperror header.d=customer.example", "temperror header.from=customer.example"},
		{"DMARC record of the organizational domain", "x@forged.example", "x@sub.customer.example", "", "", false,
			"fail smtp.mailfrom=x@forged.example", "none", "fail header.from=sub.customer.example"},
		{"SPF fail, no DMARC record", "a@nodmarc.example", "a@nodmarc.example", "", "", false,
			"fail smtp.mailfrom=a@nodmarc.example", "none", "none header.from=nodmarc.example"},
		{"SPF and DMARC temperror", "a@temp.example", "a@temp.example", "", "", false,
			"temperror smtp.mailfrom=a@temp.example", "none", "temperror header.from=temp.example"},
		{"no records at all", "a@unknown.example", "a@unknown.example", "", "", false,
			"none smtp.mailfrom=a@unknown.example", "none", "none header.from=unknown.example"},
	}
	for i, tt := range tests {
		id := "auth" + string(rune('a'+i)) + "@test"
		msg := w.mail(t, tt.from, id, tt.dkimDomain, tt.sel, "")
		if tt.tamper {
			msg = strings.Replace(msg, "Hello", "Hello, send money", 1)
		}
		if err := smtpSend(w.mx, nil, tt.mailFrom, []string{"support@example.test"}, msg); err != nil {
			t.Errorf("%s: refused: %v", tt.name, err)
			continue
		}
		_, raw := w.stored(t, id)
		host, got := authResults(t, raw)
		if host != w.srv.cfg().Server.Hostname {
			t.Errorf("%s: authserv-id %q, want %q", tt.name, host, w.srv.cfg().Server.Hostname)
		}
		if got["spf"] != tt.wantSPF || got["dkim"] != tt.wantDKIM || got["dmarc"] != tt.wantDM {
			t.Errorf("%s:\n got spf=%s; dkim=%s; dmarc=%s\nwant spf=%s; dkim=%s; dmarc=%s", tt.name,
				got["spf"], got["dkim"], got["dmarc"], tt.wantSPF, tt.wantDKIM, tt.wantDM)
		}
		if !bytes.HasSuffix(raw, []byte(msg)) {
			t.Errorf("%s: the message is not kept byte for byte after the header", tt.name)
		}
	}
}

// TestMailAuthPolicy: each auth_failure value on a failing message, and
// temperror, which never loses mail.
func TestMailAuthPolicy(t *testing.T) {
	ctx := context.Background()
	events := func(w *authWorld, conv int64) []string {
		t.Helper()
		evs, err := w.store.Events(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, e := range evs {
			if e.Type == "auth-failed" && !e.Quiet {
				t.Errorf("the auth-failed event is not quiet: %+v", e)
			}
			types = append(types, e.Type)
		}
		return types
	}
	status := func(w *authWorld, conv int64) store.Status {
		t.Helper()
		c, err := w.store.Conversation(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		return c.Status
	}

	t.Run("reject", func(t *testing.T) {
		w := newAuthWorld(t, config.AuthFailureReject)
		err := smtpSend(w.mx, nil, "x@forged.example", []string{"support@example.test"}, w.mail(t, "gina@customer.example", "r1@test", "", "", ""))
		wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 7, 1}, "DMARC failed")
		err = smtpSend(w.mx, nil, "a@nodmarc.example", []string{"support@example.test"}, w.mail(t, "a@nodmarc.example", "r2@test", "", "", ""))
		wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 7, 1}, "SPF record")
		// A temporary DNS failure defers: the sender keeps the mail and retries.
		err = smtpSend(w.mx, nil, "a@temp.example", []string{"support@example.test"}, w.mail(t, "a@temp.example", "r3@test", "", "", ""))
		wantSMTPError(t, err, 451, smtp.EnhancedCode{4, 4, 3}, "try again later")
		if err != nil && strings.Contains(err.Error(), "SERVFAIL") || err != nil && strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("DNS detail reached the client: %v", err)
		}
		for _, id := range []string{"r1@test", "r2@test", "r3@test"} {
			if _, err := w.store.MessageByHeaderID(ctx, id); err == nil {
				t.Errorf("refused message %s was stored", id)
			}
		}
		// A forwarder breaks SPF, an aligned DKIM signature passes DMARC: kept.
		if err := smtpSend(w.mx, nil, "x@forged.example", []string{"support@example.test"},
			w.mail(t, "gina@customer.example", "r4@test", "customer.example", "sel", "")); err != nil {
			t.Errorf("a DMARC pass was refused: %v", err)
		}
	})

	t.Run("flag is the default", func(t *testing.T) {
		w := newAuthWorld(t, "")
		if got := w.srv.cfg().Inboxes[0].AuthFailure; got != config.AuthFailureFlag {
			t.Fatalf("default auth_failure %q", got)
		}
		if err := smtpSend(w.mx, nil, "x@forged.example", []string{"support@example.test"}, w.mail(t, "gina@customer.example", "f1@test", "", "", "")); err != nil {
			t.Fatal(err)
		}
		m, _ := w.stored(t, "f1@test")
		if ev := events(w, m.Conversation); !strings.Contains(strings.Join(ev, " "), "auth-failed") {
			t.Errorf("no auth-failed event: %v", ev)
		}
		if m.SenderRole != store.SenderOwner || status(w, m.Conversation) != store.StatusOpen {
			t.Errorf("flagged mail: role %q, status %q", m.SenderRole, status(w, m.Conversation))
		}
		// temperror: stored, recorded, not flagged.
		if err := smtpSend(w.mx, nil, "a@temp.example", []string{"support@example.test"}, w.mail(t, "a@temp.example", "f2@test", "", "", "")); err != nil {
			t.Fatalf("temperror lost the mail: %v", err)
		}
		m, raw := w.stored(t, "f2@test")
		if _, ar := authResults(t, raw); !strings.HasPrefix(ar["dmarc"], "temperror") {
			t.Errorf("temperror not recorded: %v", ar)
		}
		if ev := events(w, m.Conversation); len(ev) != 0 {
			t.Errorf("temperror was flagged: %v", ev)
		}
	})

	t.Run("accept", func(t *testing.T) {
		w := newAuthWorld(t, config.AuthFailureAccept)
		if err := smtpSend(w.mx, nil, "x@forged.example", []string{"support@example.test"}, w.mail(t, "gina@customer.example", "a1@test", "", "", "")); err != nil {
			t.Fatal(err)
		}
		m, _ := w.stored(t, "a1@test")
		if ev := events(w, m.Conversation); len(ev) != 0 || status(w, m.Conversation) != store.StatusOpen {
			t.Errorf("accepted mail has events %v, status %q", ev, status(w, m.Conversation))
		}
	})

	t.Run("quarantine", func(t *testing.T) {
		w := newAuthWorld(t, config.AuthFailureQuarantine)
		// A new conversation from a failing sender goes to Spam.
		if err := smtpSend(w.mx, nil, "x@forged.example", []string{"support@example.test"}, w.mail(t, "gina@customer.example", "q1@test", "", "", "")); err != nil {
			t.Fatal(err)
		}
		m, _ := w.stored(t, "q1@test")
		if got := status(w, m.Conversation); got != store.StatusSpam {
			t.Errorf("quarantined conversation is %q", got)
		}
		// A passing one stays open; a failing reply into it is flagged, not moved.
		if err := smtpSend(w.mx, nil, "gina@customer.example", []string{"support@example.test"}, w.mail(t, "gina@customer.example", "q2@test", "", "", "")); err != nil {
			t.Fatal(err)
		}
		good, _ := w.stored(t, "q2@test")
		if err := smtpSend(w.mx, nil, "x@forged.example", []string{"support@example.test"},
			w.mail(t, "gina@customer.example", "q3@test", "", "", "In-Reply-To: <q2@test>\r\n")); err != nil {
			t.Fatal(err)
		}
		reply, _ := w.stored(t, "q3@test")
		if reply.Conversation != good.Conversation || status(w, good.Conversation) != store.StatusOpen {
			t.Errorf("failing reply: conversation %d (want %d), status %q", reply.Conversation, good.Conversation, status(w, good.Conversation))
		}
		if ev := events(w, good.Conversation); !strings.Contains(strings.Join(ev, " "), "auth-failed") {
			t.Errorf("failing reply not flagged: %v", ev)
		}
	})
}

// TestDMARCFailureNeverAdmits: a mail whose DMARC fails never reopens a
// conversation, never adds a participant, whatever auth_failure says
// (DESIGN.md §4); the same mail passing DMARC does both.
func TestDMARCFailureNeverAdmits(t *testing.T) {
	ctx := context.Background()
	w := newAuthWorld(t, config.AuthFailureAccept)
	send := func(mailFrom, from, id, extra string) store.Message {
		t.Helper()
		if err := smtpSend(w.mx, nil, mailFrom, []string{"support@example.test"}, w.mail(t, from, id, "", "", extra)); err != nil {
			t.Fatal(err)
		}
		m, _ := w.stored(t, id)
		return m
	}
	first := send("gina@customer.example", "gina@customer.example", "d1@test", "")
	if err := w.store.UpdateConversation(ctx, store.StatusUpdate(first.Conversation, store.StatusClosed)); err != nil {
		t.Fatal(err)
	}
	conv := func() store.Conversation {
		t.Helper()
		c, err := w.store.Conversation(ctx, first.Conversation)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	reply := "In-Reply-To: <d1@test>\r\nCc: cc@customer.example\r\n"
	// Forged owner, with a Cc: stays closed, nobody added.
	send("x@forged.example", "gina@customer.example", "d2@test", reply)
	// Forged stranger and forged agent: never participants.
	send("x@forged.example", "hal@customer.example", "d3@test", "In-Reply-To: <d1@test>\r\n")
	m := send("x@forged.example", "alice@example.test", "d4@test", "In-Reply-To: <d1@test>\r\n")
	if m.SenderRole != store.SenderStranger {
		t.Errorf("a forged agent address is %q, want a stranger", m.SenderRole)
	}
	if c := conv(); c.Status != store.StatusClosed || len(c.Participants) != 0 || m.Conversation != c.ID {
		t.Fatalf("after DMARC failures: status %q, participants %v, threaded into %d", c.Status, c.Participants, m.Conversation)
	}
	// The same owner with DMARC passing reopens and adds the Cc.
	send("gina@customer.example", "gina@customer.example", "d5@test", reply)
	if c := conv(); c.Status != store.StatusOpen || len(c.Participants) != 1 || c.Participants[0] != "cc@customer.example" {
		t.Errorf("after a DMARC pass: status %q, participants %v", c.Status, c.Participants)
	}
}

// TestDMARCFailingAgentIsNoAgent: a forged agent address does not get
// through to a read-only conversation, where agents may still write.
func TestDMARCFailingAgentIsNoAgent(t *testing.T) {
	ctx := context.Background()
	w := newAuthWorld(t, config.AuthFailureAccept)
	if err := smtpSend(w.mx, nil, "gina@customer.example", []string{"support@example.test"}, w.mail(t, "gina@customer.example", "ro1@test", "", "", "")); err != nil {
		t.Fatal(err)
	}
	m, _ := w.stored(t, "ro1@test")
	readOnly := true
	if err := w.store.UpdateConversation(ctx, store.ConversationUpdate{Conversation: m.Conversation, ReadOnly: &readOnly}); err != nil {
		t.Fatal(err)
	}
	err := smtpSend(w.mx, nil, "x@forged.example", []string{"support@example.test"},
		w.mail(t, "alice@example.test", "ro2@test", "", "", "In-Reply-To: <ro1@test>\r\n"))
	wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 7, 1}, "read-only")
}

// TestMailAuthDNSTimeout: a resolver that never answers costs each lookup
// its deadline, not the resolver's retries; the result is temperror and an
// inbox that rejects failures defers (451) rather than losing the mail.
func TestMailAuthDNSTimeout(t *testing.T) {
	hole, err := net.ListenPacket("udp", "127.0.0.1:0") // read by nobody
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hole.Close() })
	ts := newTestServer(t, nil, func(c *config.Config) {
		c.DNS.Resolver = hole.LocalAddr().String()
		c.Inboxes[0].AuthFailure = config.AuthFailureReject
	})
	start := time.Now()
	err = smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"}, customerMail("slow@customer.example", "slow"))
	wantSMTPError(t, err, 451, smtp.EnhancedCode{4, 4, 3}, "try again later")
	// SPF and DMARC: two lookups of dnsLookupTimeout (4s) each, and some slack.
	if d := time.Since(start); d > 12*time.Second {
		t.Errorf("the checks took %v", d)
	}
}

// afterTrace returns a stored inbound message after the Received: field
// that the MX puts first (RFC 5321 4.4), failing the test without it.
func afterTrace(t *testing.T, raw []byte) []byte {
	t.Helper()
	if !bytes.HasPrefix(raw, []byte("Received: from ")) {
		t.Fatalf("the stored copy does not start with Received:\n%s", raw)
	}
	// The field ends at the first line break not followed by a fold.
	for i := bytes.Index(raw, []byte("\r\n")); i >= 0; {
		if i+2 < len(raw) && raw[i+2] != ' ' && raw[i+2] != '\t' {
			return raw[i+2:]
		}
		j := bytes.Index(raw[i+2:], []byte("\r\n"))
		if j < 0 {
			break
		}
		i += 2 + j
	}
	t.Fatalf("the Received: field does not end:\n%s", raw)
	return nil
}
