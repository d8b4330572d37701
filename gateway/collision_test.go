package gateway

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
)

// TestCollisionHold: DESIGN.md §5 item 10 through the submission socket.
func TestCollisionHold(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	ctx := context.Background()
	alice := func() sasl.Client { return sasl.NewPlainClient("", "alice@example.test", "demo-alice") }
	bob := func() sasl.Client { return sasl.NewPlainClient("", "bob@example.test", "demo-bob") }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(smtpSend(ts.mx, nil, "kim@customer.example", []string{"support@example.test"},
		"From: Kim <kim@customer.example>\r\nTo: support@example.test\r\nSubject: Refund\r\nMessage-ID: <kim-1@customer.example>\r\n\r\nPlease refund.\r\n"))
	answer := func(who sasl.Client, from, body string) error {
		return smtpSend(ts.submission, who, from, []string{"kim@customer.example"},
			"From: "+from+"\r\nTo: kim@customer.example\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\n"+body)
	}
	queued := func() int {
		q, err := ts.store.PendingDeliveries(ctx, 10)
		must(err)
		return len(q)
	}

	must(answer(bob(), "bob@example.test", "Refund sent today.\r\n"))
	// Alice answers the same message: held, with Bob's name and first line.
	err := answer(alice(), "alice@example.test", "We refunded you.\r\n")
	wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 7, 0}, `bob@example.test replied just now ("Refund sent today.")`)
	wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 7, 0}, "#send")
	// Notes and action-only messages are never held; Bob's own next reply is not.
	must(smtpSend(ts.submission, alice(), "alice@example.test", []string{"support@example.test"},
		"From: alice@example.test\r\nTo: support@example.test\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\nA note.\r\n"))
	must(smtpSend(ts.submission, alice(), "alice@example.test", []string{"support@example.test"},
		"From: alice@example.test\r\nTo: support@example.test\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\n#tag refund\r\n"))
	must(answer(bob(), "bob@example.test", "And a voucher.\r\n"))
	if n := queued(); n != 2 {
		t.Fatalf("%d replies queued, want Bob's two", n)
	}
	// The customer writes again: Bob's reply to the first message is held too.
	must(smtpSend(ts.mx, nil, "kim@customer.example", []string{"support@example.test"},
		"From: kim@customer.example\r\nTo: support@example.test\r\nSubject: Re: Refund\r\nMessage-ID: <kim-2@customer.example>\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\n> quoted\r\nWhere is it?\r\n"))
	err = answer(bob(), "bob@example.test", "Soon.\r\n")
	wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 7, 0}, `kim@customer.example wrote again just now ("Where is it?")`)
	// #send sends anyway, without the line.
	must(answer(alice(), "alice@example.test", "#send\r\n\r\nWe refunded you.\r\n"))
	if n := queued(); n != 3 {
		t.Fatalf("%d replies queued after #send, want 3", n)
	}
	q, err := ts.store.PendingDeliveries(ctx, 10)
	must(err)
	if raw := string(q[2].Raw); strings.Contains(raw, "#send") {
		t.Errorf("the #send line was sent:\n%s", raw)
	}
}

// TestCollisionCheckOff: collision_check = false sends every reply.
func TestCollisionCheckOff(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) { c.Inboxes[0].CollisionCheck = false })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(smtpSend(ts.mx, nil, "kim@customer.example", []string{"support@example.test"},
		"From: kim@customer.example\r\nTo: support@example.test\r\nSubject: Refund\r\nMessage-ID: <kim-1@customer.example>\r\n\r\nPlease refund.\r\n"))
	for _, who := range []string{"bob", "alice"} {
		must(smtpSend(ts.submission, sasl.NewPlainClient("", who+"@example.test", "demo-"+who), who+"@example.test", []string{"kim@customer.example"},
			"From: "+who+"@example.test\r\nTo: kim@customer.example\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\nDone.\r\n"))
	}
}

// TestCollisionSentenceFitsALine: however many wrote since, the reply line
// stays within RFC 5321's 512 octets.
func TestCollisionSentenceFitsALine(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	ctx := context.Background()
	long := strings.Repeat("x", 50)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(smtpSend(ts.mx, nil, "kim@customer.example", []string{"support@example.test"},
		"From: kim@customer.example\r\nTo: support@example.test\r\nSubject: Refund\r\nMessage-ID: <kim-1@customer.example>\r\n\r\nPlease refund.\r\n"))
	for i := range 5 {
		must(smtpSend(ts.mx, nil, "kim@customer.example", []string{"support@example.test"},
			"From: a-rather-long-name."+long+"@customer.example\r\nTo: support@example.test\r\nSubject: Re: Refund\r\n"+
				"In-Reply-To: <kim-1@customer.example>\r\nMessage-ID: <kim-"+string(rune('a'+i))+"@customer.example>\r\n\r\n"+long+long+"\r\n"))
	}
	msgs, err := ts.store.ConversationMessages(ctx, 1)
	must(err)
	if len(msgs) < 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	err = ts.srv.collisionRefusal(ctx, "bob@example.test", 1, &store.Hold{After: msgs[0].ID})
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("no refusal: %v", err)
	}
	if n := len("550 5.7.0 ") + len(se.Message) + 2; n > 512 || !strings.Contains(se.Message, "more") {
		t.Errorf("the reply line is %d octets: %s", n, se.Message)
	}
}
