package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
)

// TestThreadingAgainstDaemon is issue 3's "done when", on the running
// daemon: what threads, what starts a new conversation, and duplicates.
func TestThreadingAgainstDaemon(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	d := startDaemon(t, dir, p, "-config", testConfig(t, dir, p))
	mx := func(rcpt, msg string) {
		t.Helper()
		from := "ivy@customer.example"
		if i := strings.Index(msg, "From: "); i >= 0 {
			from = strings.Fields(msg[i+6:])[0]
		}
		if err := sendMail(d.addr(p.MX), nil, from, []string{rcpt}, msg); err != nil {
			t.Fatalf("MX: %v", err)
		}
	}
	first := "From: ivy@customer.example\r\nTo: support@example.test\r\nSubject: Broken hinge\r\nMessage-ID: <ivy-1@customer.example>\r\n\r\nThe hinge broke.\r\n"
	mx("support@example.test", first)
	reply := "From: bob@example.test\r\nTo: ivy@customer.example\r\nSubject: Re: Broken hinge\r\nIn-Reply-To: <ivy-1@customer.example>\r\n\r\nSending a new one.\r\n"
	if err := sendMail(d.addr(p.Submission), sasl.NewPlainClient("", "bob@example.test", "demo-bob"), "bob@example.test",
		[]string{"ivy@customer.example"}, reply); err != nil {
		t.Fatal(err)
	}
	sent := waitOutbox(t, filepath.Join(dir, "data", "outbox"), 1)[0].raw
	sentID, replyTo := header(sent, "Message-Id"), strings.Trim(header(sent, "Reply-To"), "<>")

	mx("support@example.test", "From: ivy@customer.example\r\nSubject: Re: Broken hinge [#1]\r\nMessage-ID: <ivy-2@customer.example>\r\n"+
		"References: <ivy-1@customer.example> "+sentID+"\r\n\r\nOnly References.\r\n")
	mx(replyTo, "From: ivy@customer.example\r\nSubject: hinge\r\nMessage-ID: <ivy-3@customer.example>\r\n\r\nNo thread headers at all.\r\n")
	mx("support@example.test", "From: mallory@evil.example\r\nSubject: Re: Broken hinge [#1]\r\nMessage-ID: <mal-1@evil.example>\r\n\r\nCopied tag.\r\n")
	mx("support+1-aaaaaaaaaaaaaaaa@example.test", "From: mallory@evil.example\r\nSubject: hi\r\nMessage-ID: <mal-2@evil.example>\r\n\r\nForged token.\r\n")
	mx("support@example.test", "From: ivy@customer.example\r\nSubject: Re: other\r\nMessage-ID: <ivy-4@customer.example>\r\nIn-Reply-To: <nope@nowhere.example>\r\n\r\nUnknown reference.\r\n")
	mx("support@example.test", first) // delivered twice

	msgs := fetchInbox(t, d.addr(p.IMAP), "alice@example.test", "demo-alice")
	var got []string
	for _, m := range msgs {
		got = append(got, header(m.body, "X-Supportgate-Conversation")+":"+header(m.body, "Message-ID"))
	}
	want := []string{
		"1:<ivy-1@customer.example>",
		"1:" + sentID,
		"1:<ivy-2@customer.example>", // only References
		"1:<ivy-3@customer.example>", // Reply-To token, thread headers stripped
		"2:<mal-1@evil.example>",     // a stranger's copied tag starts a new one
		"3:<mal-2@evil.example>",     // forged token
		"4:<ivy-4@customer.example>", // unknown reference
	} // and the duplicate is shown once
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("INBOX:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if role := header(msgs[4].body, "X-Supportgate-Sender"); role != "owner" {
		t.Errorf("mallory's new conversation: X-Supportgate-Sender %q", role)
	}
}
