package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestAutoAcknowledgeE2E runs the daemon with auto_acknowledge on (outbound
// in directory mode) and reads what it sent: a customer's first request gets
// one RFC 3834 acknowledgement that threads; the same customer's second new
// request that day gets none (max_auto_acknowledgements_per_sender_per_day
// defaults to 1), nor do auto-replies, list mail and bounces; after a
// restart the count holds.
func TestAutoAcknowledgeE2E(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	cfg := testConfig(t, dir, p)
	patchConfig(t, cfg, `name = "Example Support"`, "name = \"Example Support\"\nauto_acknowledge = true")
	outbox := filepath.Join(dir, "data", "outbox")
	d := startDaemon(t, dir, p, "-config", cfg)

	n := 0
	send := func(d *daemon, mailFrom, from, extra string) {
		t.Helper()
		n++
		msg := fmt.Sprintf("From: %s\r\nTo: support@example.test\r\nSubject: Request %d\r\nMessage-ID: <req-%d@customer.example>\r\n%s\r\nHello\r\n",
			from, n, n, extra)
		if err := sendMail(d.addr(p.MX), nil, mailFrom, []string{"support@example.test"}, msg); err != nil {
			t.Fatalf("message %d from %q: %v", n, mailFrom, err)
		}
	}
	// acked waits for the acknowledgement of a fresh customer (which proves
	// that everything queued before it is in the outbox too) and returns the
	// recipients of every acknowledgement so far.
	acks := 0
	acked := func(d *daemon, marker string) []string {
		t.Helper()
		send(d, marker, marker, "")
		acks++
		var rcpts []string
		for _, e := range waitOutbox(t, outbox, acks) {
			rcpts = append(rcpts, e.RcptTo...)
		}
		if !slices.Contains(rcpts, marker) {
			t.Fatalf("the marker %s got no acknowledgement: %v", marker, rcpts)
		}
		return rcpts
	}
	count := func(rcpts []string, who string) int {
		c := 0
		for _, r := range rcpts {
			if r == who {
				c++
			}
		}
		return c
	}

	// 1. The first request.
	send(d, "gina@customer.example", "Gina <gina@customer.example>", "")
	envs := waitOutbox(t, outbox, 1)
	acks = 1
	ack := envs[0]
	switch {
	case !slices.Equal(ack.RcptTo, []string{"gina@customer.example"}):
		t.Fatalf("acknowledgement to %v", ack.RcptTo)
	case header(ack.raw, "Auto-Submitted") != "auto-replied":
		t.Errorf("Auto-Submitted: %q", header(ack.raw, "Auto-Submitted"))
	case header(ack.raw, "In-Reply-To") != "<req-1@customer.example>":
		t.Errorf("In-Reply-To: %q", header(ack.raw, "In-Reply-To"))
	case !strings.HasPrefix(header(ack.raw, "Subject"), "Auto: Request 1 [#"):
		t.Errorf("Subject: %q", header(ack.raw, "Subject"))
	case !strings.HasPrefix(header(ack.raw, "Reply-To"), "<support+"):
		t.Errorf("Reply-To: %q", header(ack.raw, "Reply-To"))
	case ack.MailFrom != "":
		t.Errorf("MAIL FROM %q, want <> (RFC 3834 3.3)", ack.MailFrom)
	case !strings.Contains(string(ack.raw), "request #"):
		t.Errorf("no request number in:\n%s", ack.raw)
	}

	// 2. The same day: another new request, and what must never be answered.
	send(d, "gina@customer.example", "Gina <gina@customer.example>", "")
	send(d, "holiday@customer.example", "holiday@customer.example", "Auto-Submitted: auto-replied\r\n")
	send(d, "news@lists.example", "news@lists.example", "List-Unsubscribe: <mailto:leave@lists.example>\r\n")
	send(d, "", "MAILER-DAEMON@mx.customer.example", "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n")
	rcpts := acked(d, "hans@customer.example")
	if c := count(rcpts, "gina@customer.example"); c != 1 {
		t.Errorf("gina got %d acknowledgements the same day, want 1", c)
	}
	for _, who := range []string{"holiday@customer.example", "news@lists.example", "mailer-daemon@mx.customer.example"} {
		if count(rcpts, who) != 0 {
			t.Errorf("%s got an acknowledgement: %v", who, rcpts)
		}
	}

	// 3. A restart keeps the count.
	d.stop()
	d = startDaemon(t, dir, p, "-config", cfg)
	send(d, "gina@customer.example", "Gina <gina@customer.example>", "")
	rcpts = acked(d, "ida@customer.example")
	if c := count(rcpts, "gina@customer.example"); c != 1 {
		t.Errorf("after a restart gina got %d acknowledgements in all, want 1", c)
	}
	if len(rcpts) != 3 {
		t.Errorf("the outbox holds acknowledgements to %v, want gina, hans and ida", rcpts)
	}
}
