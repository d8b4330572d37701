package gateway

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// TestInboundStartsWithReceived: RFC 5321 4.4, every stored inbound message
// starts with a Received: field naming the client, our hostname and the
// time, above the Authentication-Results of the checks.
func TestInboundStartsWithReceived(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	c, err := smtp.Dial(ts.mx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("mail.customer.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("gina@customer.example", []string{"support@example.test"},
		strings.NewReader(customerMail("rcv-1@customer.example", "Trace"))); err != nil {
		t.Fatal(err)
	}
	msg, err := ts.store.MessageByHeaderID(context.Background(), "rcv-1@customer.example")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ts.store.MessageRaw(context.Background(), msg.ID)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	if !strings.HasPrefix(s, "Received: from mail.customer.example ([127.0.0.1])\r\n\tby "+ts.srv.cfg().Server.Hostname+" (supportgate) with ESMTP id mx-") {
		t.Fatalf("stored copy does not start with the trace field:\n%.300s", s)
	}
	first, _, _ := strings.Cut(s, "\r\nAuthentication-Results:")
	if !strings.Contains(first, "\r\n\tfor <support@example.test>; ") {
		t.Errorf("trace field lacks the recipient or is not followed by Authentication-Results:\n%s", first)
	}
	date := first[strings.LastIndex(first, "; ")+2:]
	if _, err := time.Parse(time.RFC1123Z, date); err != nil {
		t.Errorf("trace date %q: %v", date, err)
	}
}

// TestReceivedFieldIsSafe: nothing the client sent reaches the field
// unchecked (DESIGN.md §8).
func TestReceivedFieldIsSafe(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		helo, rcpt, want string
	}{
		{"mx.example.org", "support@example.test", "Received: from mx.example.org ([192.0.2.7])\r\n\tby mx.test (supportgate) with ESMTP id mx-1\r\n\tfor <support@example.test>; Mon, 07 Dec 2026 10:00:00 +0000\r\n"},
		{"[192.0.2.7]", "", "Received: from [192.0.2.7] ([192.0.2.7])\r\n\tby mx.test (supportgate) with ESMTP id mx-1; Mon, 07 Dec 2026 10:00:00 +0000\r\n"},
		{"evil\r\nBcc: x@y", "a@b\r\nX: y", "Received: from unknown ([192.0.2.7])\r\n\tby mx.test (supportgate) with ESMTP id mx-1; Mon, 07 Dec 2026 10:00:00 +0000\r\n"},
		{"[not-an-ip]", "", "Received: from unknown ([192.0.2.7])\r\n\tby mx.test (supportgate) with ESMTP id mx-1; Mon, 07 Dec 2026 10:00:00 +0000\r\n"},
	} {
		helo := tc.helo
		c := mxClient{ip: net.ParseIP("192.0.2.7"), helo: func() string { return helo }}
		if got := receivedField(c, "mx.test", "mx-1", tc.rcpt, now); got != tc.want {
			t.Errorf("helo %q rcpt %q:\n got %q\nwant %q", tc.helo, tc.rcpt, got, tc.want)
		}
	}
	tlsClient := mxClient{tls: true}
	if got := receivedField(tlsClient, "mx.test", "mx-2", "", now); !strings.Contains(got, "with ESMTPS id mx-2") {
		t.Errorf("over TLS: %q", got)
	}
}
