package main

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TestParticipantsAndBccAgainstDaemon is issue 4's "done when" on the
// running daemon, with an inbox of max_participants = 2 and an archive bcc.
func TestParticipantsAndBccAgainstDaemon(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	cfgPath := testConfig(t, dir, p)
	patchConfig(t, cfgPath, "max_participants = 10", "max_participants = 2\nbcc = [\"archive@archive.example\"]")
	d := startDaemon(t, dir, p, "-config", cfgPath)
	outbox := filepath.Join(dir, "data", "outbox")
	bob := func() sasl.Client { return sasl.NewPlainClient("", "bob@example.test", "demo-bob") }

	if err := sendMail(d.addr(p.MX), nil, "kim@customer.example", []string{"support@example.test"},
		"From: Kim <kim@customer.example>\r\nTo: support@example.test\r\nCc: lou@customer.example, alice@example.test\r\n"+
			"Subject: Refund\r\nMessage-ID: <kim-1@customer.example>\r\n\r\nPlease refund.\r\n"); err != nil {
		t.Fatal(err)
	}
	// bob presses Reply (To the customer only) and adds a Bcc of his own.
	if err := sendMail(d.addr(p.Submission), bob(), "bob@example.test", []string{"kim@customer.example", "auditor@audit.example"},
		"From: bob@example.test\r\nTo: kim@customer.example\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\nDone.\r\n"); err != nil {
		t.Fatal(err)
	}
	envs := waitOutbox(t, outbox, 1)
	var rcpts []string
	for _, e := range envs {
		rcpts = append(rcpts, e.RcptTo...)
		for _, hidden := range []string{"archive@", "auditor@", "alice@", "Bcc:"} {
			if strings.Contains(string(e.raw), hidden) {
				t.Errorf("the sent message shows %q:\n%s", hidden, e.raw)
			}
		}
		if cc := header(e.raw, "Cc"); cc != "<lou@customer.example>" {
			t.Errorf("Cc of the plain Reply is %q, want the customer's Cc", cc)
		}
	}
	slices.Sort(rcpts)
	rcpts = slices.Compact(rcpts)
	if want := []string{"archive@archive.example", "auditor@audit.example", "kim@customer.example", "lou@customer.example"}; !slices.Equal(rcpts, want) {
		t.Errorf("the reply went to %v, want %v (and never to the agent alice)", rcpts, want)
	}
	msgs := fetchInbox(t, d.addr(p.IMAP), "alice@example.test", "demo-alice")
	if len(msgs) != 2 || header(msgs[1].body, "X-Supportgate-Bcc") == "" ||
		!strings.Contains(header(msgs[1].body, "X-Supportgate-Bcc"), "archive@archive.example") ||
		!strings.Contains(header(msgs[1].body, "X-Supportgate-Bcc"), "auditor@audit.example") {
		t.Errorf("agents do not see the hidden recipients: %d messages", len(msgs))
	}

	// Over the cap: refused, nothing sent.
	var smtpErr *smtp.SMTPError
	err := sendMail(d.addr(p.Submission), bob(), "bob@example.test", []string{"kim@customer.example", "m1@x.example", "m2@x.example"},
		"From: bob@example.test\r\nTo: kim@customer.example\r\nCc: m1@x.example, m2@x.example\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\nx\r\n")
	if !errors.As(err, &smtpErr) || smtpErr.Code != 550 || smtpErr.EnhancedCode[1] != 7 || !strings.Contains(smtpErr.Message, "at most 2") {
		t.Errorf("over the cap: %v", err)
	}
	// A view agent is refused.
	err = sendMail(d.addr(p.Submission), sasl.NewPlainClient("", "carol@example.test", "demo-carol"), "carol@example.test",
		[]string{"kim@customer.example"}, "From: carol@example.test\r\nTo: kim@customer.example\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\nx\r\n")
	if !errors.As(err, &smtpErr) || smtpErr.Code != 550 {
		t.Errorf("view agent: %v", err)
	}
	// A note to the support address is stored and never sent.
	if err := sendMail(d.addr(p.Submission), bob(), "bob@example.test", []string{"support@example.test"},
		"From: bob@example.test\r\nTo: support@example.test\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\nInternal: VIP.\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if after := waitOutbox(t, outbox, 1); len(after) != len(envs) {
		t.Errorf("the outbox grew from %d to %d: something besides the reply was sent", len(envs), len(after))
	}
	msgs = fetchInbox(t, d.addr(p.IMAP), "alice@example.test", "demo-alice")
	if len(msgs) != 3 || header(msgs[2].body, "X-Supportgate-Kind") != "note" {
		t.Errorf("the note is not in the conversation: %d messages", len(msgs))
	}
}

// TestPoliciesAgainstDaemon: quick actions, require_tag, read-only,
// blocked senders and attachment limits through the running daemon.
func TestPoliciesAgainstDaemon(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	cfgPath := testConfig(t, dir, p)
	patchConfig(t, cfgPath, "require_tag = false", "require_tag = true\nshow_events = true\n"+
		"blocked_senders = [\"pest@customer.example\"]\nmax_attachment_bytes = 10")
	d := startDaemon(t, dir, p, "-config", cfgPath)
	bob := func() sasl.Client { return sasl.NewPlainClient("", "bob@example.test", "demo-bob") }
	var smtpErr *smtp.SMTPError
	refused := func(err error, code int, phrase string) {
		t.Helper()
		if !errors.As(err, &smtpErr) || smtpErr.Code != code || !strings.Contains(smtpErr.Message, phrase) {
			t.Errorf("got %v, want %d with %q", err, code, phrase)
		}
	}
	if err := sendMail(d.addr(p.MX), nil, "kim@customer.example", []string{"support@example.test"},
		"From: kim@customer.example\r\nTo: support@example.test\r\nSubject: Refund\r\nMessage-ID: <kim-1@customer.example>\r\n\r\nPlease.\r\n"); err != nil {
		t.Fatal(err)
	}
	reply := func(top string) string {
		return "From: bob@example.test\r\nTo: kim@customer.example\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\n" + top + "Done.\r\n"
	}
	refused(sendMail(d.addr(p.Submission), bob(), "bob@example.test", []string{"kim@customer.example"}, reply("")), 550, "#tag <tag>")
	if err := sendMail(d.addr(p.Submission), bob(), "bob@example.test", []string{"kim@customer.example"}, reply("#tag billing\r\n#assign me\r\n\r\n")); err != nil {
		t.Fatalf("a tagged reply: %v", err)
	}
	envs := waitOutbox(t, filepath.Join(dir, "data", "outbox"), 1)
	if strings.Contains(string(envs[0].raw), "#tag") || !strings.HasSuffix(string(envs[0].raw), "\r\n\r\nDone.\r\n") {
		t.Errorf("the quick actions reached the customer:\n%s", envs[0].raw)
	}
	code, out, _ := runCLI("", "conversations", "show", "1", "--json", "-config", cfgPath)
	var c conversationJSON
	if code != 0 || json.Unmarshal([]byte(out), &c) != nil || !slices.Equal(c.Tags, []string{"billing"}) || c.Assignee != "bob@example.test" {
		t.Errorf("after #tag and #assign: %s", out)
	}
	// Only actions: read-only on; the customer's next mail is refused.
	if err := sendMail(d.addr(p.Submission), bob(), "bob@example.test", []string{"support@example.test"},
		"From: bob@example.test\r\nTo: support@example.test\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\n#readonly on\r\n"); err != nil {
		t.Fatal(err)
	}
	refused(sendMail(d.addr(p.MX), nil, "kim@customer.example", []string{"support@example.test"},
		"From: kim@customer.example\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\nAgain.\r\n"), 550, "read-only")
	refused(sendMail(d.addr(p.MX), nil, "pest@customer.example", []string{"support@example.test"}, "Subject: x\r\n\r\nx\r\n"), 550, "refused")
	refused(sendMail(d.addr(p.Submission), bob(), "bob@example.test", []string{"pest@customer.example"},
		"From: bob@example.test\r\nTo: pest@customer.example\r\nSubject: hi\r\n\r\n#tag x\r\n\r\nhi\r\n"), 550, "blocked")
	att := "From: bob@example.test\r\nTo: new@customer.example\r\nSubject: file\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\n#tag files\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/pdf\r\n" +
		"Content-Disposition: attachment; filename=\"big.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQgaGVsbG8=\r\n--b--\r\n"
	refused(sendMail(d.addr(p.Submission), bob(), "bob@example.test", []string{"new@customer.example"}, att), 550, "larger than the 10 bytes")
}
