package gateway

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// rawSend sends data as it is (no client fixes its line ends) in one SMTP
// transaction, ended by CRLF.CRLF, and returns the answer to it.
func rawSend(t *testing.T, addr, from, data string) string {
	t.Helper()
	c := dialSMTPRaw(t, addr, 2*time.Minute)
	defer c.Close()
	c.reply()
	for _, cmd := range []string{"EHLO x.example", "MAIL FROM:<" + from + ">", "RCPT TO:<support@example.test>", "DATA"} {
		if reply := c.cmd(cmd); reply == "" || reply[0] != '2' && reply[0] != '3' {
			t.Fatalf("%s: %s", cmd, reply)
		}
	}
	go func() { // written while the answer is read: the server may answer early
		io.WriteString(c, data)
		io.WriteString(c, "\r\n.\r\n")
	}()
	reply := c.reply()
	c.cmd("QUIT")
	return strings.TrimSpace(reply)
}

// hostileMail is one message of the hostile corpus (issue 13): either it
// is stored, and then served over IMAP like any other, or it is refused
// with a 5xx and a sentence.
type hostileMail struct {
	name, data string
	refused    bool // 554 5.6.0 expected
}

// hostileCorpus builds the corpus; the big ones are made here rather than
// kept in testdata/.
func hostileCorpus() []hostileMail {
	head := func(id string) string {
		return "From: Mallory <mallory@evil.example>\r\nTo: support@example.test\r\nSubject: " + id +
			"\r\nMessage-ID: <" + id + "@evil.example>\r\nMIME-Version: 1.0\r\n"
	}
	nested := func(id string, depth int, rfc822 bool) string {
		var b strings.Builder
		b.WriteString(head(id))
		for i := range depth {
			if rfc822 {
				b.WriteString("Content-Type: message/rfc822\r\n\r\nSubject: level " + fmt.Sprint(i) + "\r\n")
			} else {
				fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
			}
		}
		b.WriteString("Content-Type: text/plain\r\n\r\nthe bottom\r\n")
		if !rfc822 {
			for i := depth - 1; i >= 0; i-- {
				fmt.Fprintf(&b, "--b%d--\r\n", i)
			}
		}
		return b.String()
	}
	var parts strings.Builder
	parts.WriteString(head("many-parts") + "Content-Type: multipart/mixed; boundary=\"p\"\r\n\r\n")
	for i := range 100_000 {
		fmt.Fprintf(&parts, "--p\r\n\r\n%d\r\n", i)
	}
	parts.WriteString("--p--\r\n")
	var bigHeader strings.Builder
	bigHeader.WriteString(head("big-header"))
	for bigHeader.Len() < 10<<20 {
		bigHeader.WriteString("X-Filler: " + strings.Repeat("h", 990) + "\r\n")
	}
	bigHeader.WriteString("\r\nbody\r\n")
	return []hostileMail{
		{name: "nested multiparts, 10,000 levels", data: nested("deep-multipart", 10_000, false)},
		{name: "nested message/rfc822, 10,000 levels", data: nested("deep-rfc822", 10_000, true)},
		{name: "100,000 parts", data: parts.String()},
		{name: "10 MB header", data: bigHeader.String()},
		{name: "broken base64", data: head("bad-base64") + "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64***\r\n"},
		{name: "broken quoted-printable", data: head("bad-qp") + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n=\r\n"},
		{name: "unknown charset", data: head("bad-charset") + "Content-Type: text/plain; charset=x-nonesuch\r\n\r\n\xff\xfe\r\n"},
		{name: "multipart without boundary", data: head("no-boundary") + "Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nhello\r\n"},
		{name: "multipart never closed", data: head("unclosed") + "Content-Type: multipart/mixed; boundary=u\r\n\r\n--u\r\nContent-Type: multipart/alternative; boundary=v\r\n\r\n--v\r\n\r\nx\r\n"},
		{name: "encoded words gone wrong", data: head("bad-words") + "Content-Type: text/plain\r\nX-Note: =?utf-8?B?!!!?= =?x-none?Q?a?=\r\n\r\nbody\r\n"},
		{name: "NUL", data: head("nul") + "\r\nbefore\x00after\r\n", refused: true},
		// smtpsmug's end-of-data variants (the bytes after them would be a
		// second message on a server that took them for the end).
		{name: "bare LF", data: head("lf") + "\r\nline\nline\r\n", refused: true},
		{name: "bare CR", data: head("cr") + "\r\nline\rline\r\n", refused: true},
		{name: "LF.LF", data: head("lf-dot-lf") + "\r\nline\n.\nMAIL FROM:<x@evil.example>\r\n", refused: true},
		{name: "CRLF.LF", data: head("crlf-dot-lf") + "\r\nline\r\n.\nMAIL FROM:<x@evil.example>\r\n", refused: true},
		{name: "LF.CRLF", data: head("lf-dot-crlf") + "\r\nline\n.\r\nMAIL FROM:<x@evil.example>\r\n", refused: true},
		{name: "CR.CR", data: head("cr-dot-cr") + "\r\nline\r.\rMAIL FROM:<x@evil.example>\r\n", refused: true},
		{name: "CRLF.CR", data: head("crlf-dot-cr") + "\r\nline\r\n.\rMAIL FROM:<x@evil.example>\r\n", refused: true},
		{name: "CR.CRLF", data: head("cr-dot-crlf") + "\r\nline\r.\r\nMAIL FROM:<x@evil.example>\r\n", refused: true},
	}
}

// TestHostileCorpus: each hostile message is stored or refused with a
// sentence; every stored one is served, and FETCH and SEARCH of the whole
// folder answer for every message (DESIGN.md §8).
func TestHostileCorpus(t *testing.T) {
	var logs lockedBuffer
	w := &workspace{newLoggingTestServer(t, nil, nil, &logs), t}
	w.customer("plain-before@customer.example", "An ordinary request")
	stored := 1
	for i, m := range hostileCorpus() {
		reply := rawSend(t, w.mx, fmt.Sprintf("mallory%d@evil.example", i), m.data)
		switch {
		case m.refused:
			if !strings.HasPrefix(reply, "554 5.6.0 ") || len(reply) < 30 {
				t.Errorf("%s: answered %q, want 554 5.6.0 and a sentence", m.name, reply)
			}
		case !strings.HasPrefix(reply, "250 "):
			t.Errorf("%s: refused: %q", m.name, reply)
		default:
			stored++
		}
	}
	w.customer("plain-after@customer.example", "Another ordinary request")
	stored++
	alice := w.login("alice@example.test", nil)
	if n := selectN(t, alice, "INBOX"); int(n) != stored {
		t.Fatalf("INBOX has %d messages, want %d", n, stored)
	}
	msgs, err := alice.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, Flags: true, Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		RFC822Size: true, BodySection: []*imap.FetchItemBodySection{{Peek: true, Specifier: imap.PartSpecifierHeader}},
	}).Collect()
	if err != nil || len(msgs) != stored {
		t.Fatalf("FETCH 1:* answered %d of %d messages: %v", len(msgs), stored, err)
	}
	for _, m := range msgs {
		if m.Envelope == nil || m.BodyStructure == nil || m.RFC822Size == 0 {
			t.Errorf("message %d served without envelope, structure or size", m.SeqNum)
		}
	}
	// Every stored one whole, one at a time (BODY[] and a section).
	for seq := uint32(1); seq <= uint32(stored); seq++ {
		if _, err := alice.Fetch(imap.SeqSetNum(seq), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{
			{Peek: true}, {Peek: true, Part: []int{1, 1}},
		}}).Collect(); err != nil {
			t.Errorf("FETCH %d BODY[]: %v", seq, err)
		}
	}
	res, err := alice.Search(&imap.SearchCriteria{Text: []string{"ordinary request"}}, nil).Wait()
	if err != nil || len(res.AllSeqNums()) != 2 {
		t.Errorf("SEARCH TEXT over the folder: %v, %v", res, err)
	}
	if l := logs.String(); strings.Contains(l, "level=ERROR") || strings.Contains(l, "panic") {
		t.Errorf("the daemon logged an error or a panic:\n%s", l)
	}
}
