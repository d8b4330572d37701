package gateway

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/threading"
)

// acksTo returns the queued deliveries to rcpt.
func acksTo(t *testing.T, st store.Store, rcpt string) []store.Delivery {
	t.Helper()
	ds, err := st.PendingDeliveries(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Delivery
	for _, d := range ds {
		for _, r := range d.Recipients {
			if r == rcpt {
				out = append(out, d)
			}
		}
	}
	return out
}

// TestAutoAcknowledgeOverMX drives the MX over a real socket: a customer's
// new request gets one RFC 3834 acknowledgement, queued like a reply and
// recorded in the conversation; a reply to it threads in; the same sender's
// second request that day, automatic mail, lists, bounces and agents get
// none.
func TestAutoAcknowledgeOverMX(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) { c.Inboxes[0].AutoAcknowledge = true })
	ctx := context.Background()
	send := func(from, extra, id, subject string) {
		t.Helper()
		msg := "From: <" + from + ">\r\nTo: support@example.test\r\nSubject: " + subject + "\r\nMessage-ID: <" + id + ">\r\n" + extra + "\r\nHello\r\n"
		if err := smtpSend(ts.mx, nil, from, []string{"support@example.test"}, msg); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}

	send("gina@customer.example", "", "first@customer.example", "Printer on fire")
	acks := acksTo(t, ts.store, "gina@customer.example")
	if len(acks) != 1 {
		t.Fatalf("%d acknowledgements queued, want 1", len(acks))
	}
	ack := acks[0]
	info := parseHeaderInfo(ack.Raw)
	conv, _, ok := ts.srv.keys.ParseMessageID(info.MessageID)
	first, _ := ts.store.MessageByHeaderID(ctx, "first@customer.example")
	switch {
	case !ok || conv != first.Conversation:
		t.Errorf("the acknowledgement's Message-ID %q does not name conversation %d", info.MessageID, first.Conversation)
	case info.Header.Get("Auto-Submitted") != "auto-replied":
		t.Errorf("Auto-Submitted = %q", info.Header.Get("Auto-Submitted"))
	case len(info.InReplyTo) != 1 || info.InReplyTo[0] != "first@customer.example":
		t.Errorf("In-Reply-To = %v", info.InReplyTo)
	case !strings.HasPrefix(ack.MailFrom, "bounces+") || !strings.HasSuffix(ack.MailFrom, "@example.test"):
		t.Errorf("MAIL FROM %q, want the VERP return path", ack.MailFrom)
	case info.Subject != "Auto: Printer on fire "+threading.Tag(conv):
		t.Errorf("Subject = %q", info.Subject)
	case !strings.Contains(string(ack.Raw), "request #"+strconv.FormatInt(conv, 10)):
		t.Errorf("the text lacks the request number:\n%s", ack.Raw)
	}
	replyTo := info.Header.Get("Reply-To")
	msgs, err := ts.store.ConversationMessages(ctx, conv)
	if err != nil || len(msgs) != 2 || msgs[1].Kind != store.KindReply || msgs[1].MessageIDHeader != info.MessageID {
		t.Errorf("the conversation does not show the acknowledgement: %+v, %v", msgs, err)
	}

	// The customer answers the acknowledgement: it threads in, unanswered.
	send("gina@customer.example", "In-Reply-To: <"+info.MessageID+">\r\n", "answer@customer.example", "Re: Auto: Printer on fire")
	if m, err := ts.store.MessageByHeaderID(ctx, "answer@customer.example"); err != nil || m.Conversation != conv {
		t.Errorf("the answer to the acknowledgement landed in %d (%v), want %d", m.Conversation, err, conv)
	}
	if !strings.Contains(replyTo, "support+"+ts.srv.keys.ReplyToken(conv)+"@example.test") {
		t.Errorf("Reply-To %q is not the conversation's reply address", replyTo)
	}

	// Nothing more for these, whatever they are.
	for _, tc := range []struct {
		name, from, extra string
		acks              int // to from, in all
	}{
		{"second request the same day", "gina@customer.example", "", 1},
		{"auto-reply", "holiday@customer.example", "Auto-Submitted: auto-replied\r\n", 0},
		{"Precedence bulk", "news@customer.example", "Precedence: bulk\r\n", 0},
		{"mailing list", "list-member@customer.example", "List-Id: <users.lists.example>\r\n", 0},
		{"DSN", "MAILER-DAEMON@customer.example", "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n", 0},
		{"agent", "bob@example.test", "", 0},
	} {
		send(tc.from, tc.extra, strings.ReplaceAll(tc.name, " ", "-")+"@customer.example", tc.name)
		if n := len(acksTo(t, ts.store, strings.ToLower(tc.from))); n != tc.acks {
			t.Errorf("%s: %d acknowledgements to %s, want %d", tc.name, n, tc.from, tc.acks)
		}
	}
	// A null sender (a bounce to the support address) gets none either.
	if err := smtpSend(ts.mx, nil, "", []string{"support@example.test"}, customerMail("null@customer.example", "Undeliverable")); err != nil {
		t.Fatal(err)
	}
	if n := len(acksTo(t, ts.store, "gina@customer.example")); n != 1 {
		t.Errorf("%d acknowledgements to gina, want still 1", n)
	}
	if ds, _ := ts.store.PendingDeliveries(ctx, 1000); len(ds) != 1 {
		t.Errorf("%d deliveries queued, want only the first acknowledgement", len(ds))
	}
}

// TestAutoAcknowledgeOff: an inbox without auto_acknowledge sends nothing.
func TestAutoAcknowledgeOff(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	if err := smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"}, customerMail("x@customer.example", "Hi")); err != nil {
		t.Fatal(err)
	}
	if ds, _ := ts.store.PendingDeliveries(context.Background(), 10); len(ds) != 0 {
		t.Errorf("%d deliveries queued by an inbox that does not acknowledge", len(ds))
	}
}
