package gateway

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/supportgate/supportgate/internal/hostile"
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

// TestHostileCorpus: each hostile message is stored or refused with a
// sentence; every stored one is served, and FETCH and SEARCH of the whole
// folder answer for every message (DESIGN.md §8).
func TestHostileCorpus(t *testing.T) {
	var logs lockedBuffer
	w := &workspace{newLoggingTestServer(t, nil, nil, &logs), t}
	w.customer("plain-before@customer.example", "An ordinary request")
	stored := 1
	for i, m := range hostile.Corpus() {
		reply := rawSend(t, w.mx, fmt.Sprintf("mallory%d@evil.example", i), m.Data)
		switch {
		case m.Refused:
			if !strings.HasPrefix(reply, "554 5.6.0 ") || len(reply) < 30 {
				t.Errorf("%s: answered %q, want 554 5.6.0 and a sentence", m.Name, reply)
			}
		case !strings.HasPrefix(reply, "250 "):
			t.Errorf("%s: refused: %q", m.Name, reply)
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
