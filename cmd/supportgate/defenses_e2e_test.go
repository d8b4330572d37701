package main

import (
	"bufio"
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// TestDefensesE2E throws what the internet sends at the real daemon, on
// both protocols, and checks after each that it still serves the next
// customer normally (DESIGN.md §8, issue 7).
func TestDefensesE2E(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	cfg := testConfig(t, dir, p)
	// A small size limit so that the oversized mail is quick to send.
	patchConfig(t, cfg, "max_message_bytes = 26214400", "max_message_bytes = 65536")
	d := startDaemon(t, dir, p, "-config", cfg)
	mx, imapAddr := d.addr(p.MX), d.addr(p.IMAP)

	n := 0
	nextCustomer := func(after string) {
		t.Helper()
		n++
		id := "next-" + strings.ReplaceAll(after, " ", "-") + "@customer.example"
		msg := "From: Next <next@customer.example>\r\nTo: support@example.test\r\nSubject: after " + after +
			"\r\nMessage-ID: <" + id + ">\r\n\r\nStill there?\r\n"
		if err := sendMail(mx, nil, "next@customer.example", []string{"support@example.test"}, msg); err != nil {
			t.Fatalf("after %s, the next customer's mail failed: %v", after, err)
		}
		found := 0
		for _, f := range fetchInbox(t, imapAddr, "alice@example.test", "demo-alice") {
			if bytes.Contains(f.body, []byte(id)) {
				found++
			}
		}
		if found != 1 {
			t.Fatalf("after %s, the next customer's mail is not in INBOX", after)
		}
	}

	// raw sends bytes on a fresh connection and reads whatever comes back.
	raw := func(addr string, data []byte) string { return rawUntil(t, addr, data, "") }
	smtpData := func(body string) string {
		return "EHLO x.example\r\nMAIL FROM:<m@x.example>\r\nRCPT TO:<support@example.test>\r\nDATA\r\n" + body + "\r\n.\r\nQUIT\r\n"
	}

	t.Run("no open relay", func(t *testing.T) {
		err := sendMail(mx, nil, "a@x.example", []string{"victim@elsewhere.example"}, "Subject: relay\r\n\r\nx\r\n")
		var e *smtp.SMTPError
		if !errors.As(err, &e) || e.Code != 550 {
			t.Errorf("relaying got %v, want 550", err)
		}
		nextCustomer("relay attempt")
	})
	t.Run("oversized", func(t *testing.T) {
		err := sendMail(mx, nil, "a@x.example", []string{"support@example.test"}, "Subject: big\r\n\r\n"+strings.Repeat("x", 70000)+"\r\n")
		var e *smtp.SMTPError
		if !errors.As(err, &e) || e.Code != 552 {
			t.Errorf("oversized mail got %v, want 552", err)
		}
		nextCustomer("oversized")
	})
	t.Run("malformed MIME", func(t *testing.T) {
		out := raw(mx, []byte(smtpData("From: <<<\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"\r\n\r\n--\r\n--x--\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!")))
		if strings.Contains(out, "451 4.3.0") || strings.Contains(out, "421") {
			t.Errorf("malformed MIME got a server failure: %q", out)
		}
		nextCustomer("malformed MIME")
	})
	t.Run("5000-byte header line", func(t *testing.T) {
		raw(mx, []byte(smtpData("Subject: "+strings.Repeat("y", 5000)+"\r\nFrom: a@x.example\r\n\r\nbody")))
		nextCustomer("long header")
	})
	t.Run("NUL bytes", func(t *testing.T) {
		raw(mx, []byte(smtpData("Subject: nul\x00here\r\nFrom: a\x00@x.example\r\n\r\n\x00\x00body")))
		raw(mx, []byte("EHLO \x00\x00\r\nMAIL FROM:<\x00>\r\n"))
		raw(imapAddr, []byte("a1 LOGIN \x00 \x00\r\na2 SELECT \"\x00\"\r\n"))
		nextCustomer("NUL bytes")
	})
	t.Run("random bytes", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 7))
		for range 5 {
			junk := make([]byte, 4096)
			for i := range junk {
				junk[i] = byte(rng.Uint32())
			}
			raw(mx, junk)
			raw(d.addr(p.Submission), junk)
			raw(imapAddr, junk)
		}
		nextCustomer("random bytes")
	})
	t.Run("absurd IMAP literal", func(t *testing.T) {
		out := rawUntil(t, imapAddr, []byte("a1 LOGIN alice@example.test demo-alice\r\na2 APPEND INBOX {999999999999}\r\n"), "a2 ")
		if strings.HasPrefix(out, "+ ") || strings.Contains(out, "\n+ ") {
			t.Errorf("the server asked for a 999999999999-byte literal: %q", out)
		}
		if !strings.Contains(out, "a2 NO") && !strings.Contains(out, "a2 BAD") {
			t.Errorf("the absurd literal was not refused: %q", out)
		}
		out = rawUntil(t, imapAddr, []byte("a1 APPEND INBOX {999999999999+}\r\nxxxx\r\n"), "a1 ")
		if strings.Contains(out, "a1 OK") {
			t.Errorf("an absurd non-synchronizing literal was accepted: %q", out)
		}
		nextCustomer("absurd literal")
	})
}

// rawUntil sends data on a fresh connection after the greeting and returns
// what comes back until a line starts with until ("" : until the server is
// quiet for a second), at most 10 seconds.
func rawUntil(t *testing.T, addr string, data []byte, until string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n') // greeting
	c.Write(data)
	var out strings.Builder
	for {
		if until == "" {
			c.SetReadDeadline(time.Now().Add(time.Second))
		}
		line, err := r.ReadString('\n')
		out.WriteString(line)
		if err != nil || until != "" && strings.HasPrefix(line, until) {
			return out.String()
		}
	}
}

// TestIMAPSlowLorisE2E: against the daemon with read_timeout "2s", IMAP
// clients that never finish a command, or never send one at all,
// are dropped within about read_timeout, while a customer's mail is taken
// and an agent reads it all the while; a logged-in client that stays silent
// longer than read_timeout keeps its session (RFC 9051 5.4).
func TestIMAPSlowLorisE2E(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	cfg := testConfig(t, dir, p)
	patchConfig(t, cfg, "# [limits]", "[limits]")
	patchConfig(t, cfg, `# read_timeout = "5m"`, `read_timeout = "2s"`)
	d := startDaemon(t, dir, p, "-config", cfg)
	imapAddr := d.addr(p.IMAP)

	dial := func(greet bool) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", imapAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		r := bufio.NewReader(c)
		if greet {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "* OK") {
				t.Fatalf("greeting %q, %v", line, err)
			}
		}
		return c, r
	}
	// closedAfter reads c in the background until the server closes it,
	// and then reports after how long since start; a minute without that
	// is -1. It waits for the event, not for a time: the steps in between
	// may be slow on a busy machine.
	start := time.Now()
	closedAfter := func(c net.Conn, r *bufio.Reader) func() time.Duration {
		done := make(chan time.Duration, 1)
		go func() {
			c.SetReadDeadline(time.Now().Add(time.Minute))
			for {
				if _, err := r.ReadString('\n'); err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						done <- -1
					} else {
						done <- time.Since(start)
					}
					return
				}
			}
		}()
		return func() time.Duration { return <-done }
	}

	silent, silentR := dial(true)
	partial, partialR := dial(true)
	partial.Write([]byte("a1 LOGIN alice@example.test"))
	silentClosed, partialClosed := closedAfter(silent, silentR), closedAfter(partial, partialR)
	idle, idleR := dial(true)
	idle.Write([]byte("a1 LOGIN alice@example.test demo-alice\r\n"))
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		line, err := idleR.ReadString('\n')
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		if strings.HasPrefix(line, "a1 ") {
			break
		}
	}

	// Meanwhile the daemon serves a customer and an agent normally.
	msg := "From: Next <next@customer.example>\r\nTo: support@example.test\r\nSubject: during slow clients\r\nMessage-ID: <slow-e2e@customer.example>\r\n\r\nHi\r\n"
	if err := sendMail(d.addr(p.MX), nil, "next@customer.example", []string{"support@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range fetchInbox(t, imapAddr, "bob@example.test", "demo-bob") {
		found = found || bytes.Contains(f.body, []byte("slow-e2e@customer.example"))
	}
	if !found {
		t.Error("the customer's mail is not in INBOX while slow clients wait")
	}

	// Closed about read_timeout (2s) after connecting; the bound leaves
	// room for a busy machine, and is far from "never".
	if after := silentClosed(); after < 0 || after > 15*time.Second {
		t.Errorf("a client that never sent a command was closed after %v (-1: not within a minute)", after)
	}
	if after := partialClosed(); after < 0 || after > 15*time.Second {
		t.Errorf("a client that never finished its command was closed after %v (-1: not within a minute)", after)
	}
	time.Sleep(time.Until(start.Add(3 * time.Second)))
	idle.Write([]byte("a2 NOOP\r\n"))
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		line, err := idleR.ReadString('\n')
		if err != nil {
			t.Fatalf("a logged-in client silent beyond read_timeout was dropped: %v", err)
		}
		if strings.HasPrefix(line, "a2 ") {
			if !strings.HasPrefix(line, "a2 OK") {
				t.Errorf("NOOP after silence: %q", line)
			}
			break
		}
	}
}
