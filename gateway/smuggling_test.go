package gateway

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestHasBareLineEnd(t *testing.T) {
	for in, want := range map[string]bool{
		"": false, "a\r\nb\r\n": false, "a\nb": true, "a\rb": true, "a\r": true, "\n": true,
		"a\r\n\r\n.\r\n": false, "x\r\r\n": true, "x\r\n\n": true,
	} {
		if got := hasBareLineEnd([]byte(in)); got != want {
			t.Errorf("hasBareLineEnd(%q) = %v", in, got)
		}
	}
}

// TestSMTPSmuggling sends both smuggling variants by hand: no second
// message may come out of one DATA, and bare line ends are refused.
func TestSMTPSmuggling(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	for _, tc := range []struct{ name, data string }{
		{"LF.CRLF", "Subject: one\r\n\r\nfirst\n.\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<support@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsecond\r\n.\r\n"},
		{"CRLF.LF", "Subject: one\r\n\r\nfirst\r\n.\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<support@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsecond\r\n.\r\n"},
		{"bare LF", "Subject: one\r\n\r\nfirst\nline\r\n.\r\n"},
		// Issue 13: the CR of CRLF.CR was dropped and the rest accepted.
		{"CRLF.CR", "Subject: one\r\n\r\nfirst\r\n.\rsecond\r\n.\r\n"},
		{"CRLF.CR smuggling", "Subject: one\r\n\r\nfirst\r\n.\rMAIL FROM:<evil@x.example>\r\nRCPT TO:<support@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsecond\r\n.\r\n"},
		{"NUL", "Subject: one\r\n\r\nfirst\r\n\x00.\r\nsecond\r\n.\r\n"},
		{"NUL in a header", "Subject: o\x00ne\r\n\r\nfirst\r\n.\r\n"},
		{"200 KB header line", "Subject: " + strings.Repeat("x", 200<<10) + "\r\n\r\nfirst\r\n.\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialSMTPRaw(t, ts.mx, 10*time.Second)
			read := c.reply
			read()
			for _, cmd := range []string{"EHLO x.example", "MAIL FROM:<a@x.example>", "RCPT TO:<support@example.test>", "DATA"} {
				c.Write([]byte(cmd + "\r\n"))
				read()
			}
			c.Write([]byte(tc.data))
			reply := read()
			if !strings.HasPrefix(reply, "554 5.6.0") {
				t.Errorf("the smuggling DATA was answered %q, want 554 5.6.0", reply)
			}
			// The session goes on: the client read its answer and may send
			// the next message (no reset after a long line).
			c.Write([]byte("NOOP\r\n"))
			if reply := read(); !strings.HasPrefix(reply, "250") {
				t.Errorf("after the refusal, NOOP got %q", reply)
			}
			c.Write([]byte("QUIT\r\n"))
			read()
		})
	}
	if n := countEntries(t, ts.store); n != 0 {
		t.Errorf("%d messages were stored from smuggling attempts", n)
	}
	// The server still serves the next customer normally.
	if err := smtpSend(ts.mx, nil, "a@x.example", []string{"support@example.test"}, customerMail("ok@x.example", "after")); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := ts.store.ConversationByMessageID(context.Background(), []string{"ok@x.example"}); !ok {
		t.Error("the next normal message was not stored")
	}
}
