package policy

import (
	"bytes"
	"testing"
	"time"
)

// benchReply is a 4 KiB reply as Thunderbird writes it.
func benchReply() []byte {
	var b bytes.Buffer
	b.WriteString("From: Alice <alice@example.test>\r\nTo: carla@customer.example\r\nCc: dan@customer.example\r\n" +
		"Subject: Re: [#42] Printer on fire\r\nMessage-ID: <draft-1@alice.example.test>\r\n" +
		"In-Reply-To: <c1@customer.example>\r\nReferences: <c0@customer.example> <c1@customer.example>\r\n" +
		"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n" +
		"User-Agent: Mozilla Thunderbird\r\nX-Mozilla-Draft-Info: internal/draft; vcard=0\r\n\r\n")
	for b.Len() < 4096 {
		b.WriteString("We are sorry to hear about the printer; please unplug it and wait for the fire brigade.\r\n")
	}
	return b.Bytes()
}

// BenchmarkReplyRewrite measures the submission's rewrite of a 4 KiB reply.
func BenchmarkReplyRewrite(b *testing.B) {
	raw := benchReply()
	r := ReplyRewrite{
		AgentName: "Alice", InboxName: "Example Support", InboxAddress: "support@example.test",
		ReplyTo: "support+tok@example.test", To: "carla@customer.example", Cc: []string{"dan@customer.example"},
		MessageID: "42.7.sig@mail.example.test", SubjectTag: "[#42]",
		InReplyTo: []string{"c1@customer.example"}, References: []string{"c0@customer.example", "c1@customer.example"},
		Now: time.Unix(1_700_000_000, 0),
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Rewrite(raw); err != nil {
			b.Fatal(err)
		}
	}
}
