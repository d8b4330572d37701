package gateway

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/store"
)

// TestSideConversation: DESIGN.md §14 through the MX and submission
// sockets: #side goes only to whom the agent wrote, its answers and a Bcc
// recipient's Reply All come back as kind side, and Reply on a side message
// continues the side; nothing reaches the customer, nobody becomes a
// participant.
func TestSideConversation(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	ctx := context.Background()
	bob := func() sasl.Client { return sasl.NewPlainClient("", "bob@example.test", "demo-bob") }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(smtpSend(ts.mx, nil, "kim@customer.example", []string{"support@example.test"},
		"From: Kim <kim@customer.example>\r\nTo: support@example.test\r\nCc: lou@customer.example\r\nSubject: Broken part\r\nMessage-ID: <kim-1@customer.example>\r\n\r\nMy part broke.\r\n"))
	queue := func() []store.Delivery {
		q, err := ts.store.PendingDeliveries(ctx, 20)
		must(err)
		return q
	}
	// Bob asks the vendor, with a hidden copy to the warehouse.
	must(smtpSend(ts.submission, bob(), "bob@example.test", []string{"sales@vendor.example", "dock@warehouse.example"},
		"From: bob@example.test\r\nTo: sales@vendor.example\r\nSubject: Re: Broken part\r\nIn-Reply-To: <kim-1@customer.example>\r\n"+
			"Message-ID: <bob-side-1@client.example>\r\n\r\n#side\r\n\r\nDo you have a spare?\r\n"))
	q := queue()
	if len(q) != 1 {
		t.Fatalf("%d messages queued, want the side message", len(q))
	}
	sideMsg := q[0]
	if got := slices.Sorted(slices.Values(sideMsg.Recipients)); !slices.Equal(got, []string{"dock@warehouse.example", "sales@vendor.example"}) {
		t.Fatalf("the side message goes to %v", got)
	}
	raw := string(sideMsg.Raw)
	for _, leak := range []string{"kim@", "lou@", "kim-1@customer.example", "#side", "dock@"} {
		if strings.Contains(raw, leak) {
			t.Errorf("the side message shows %q:\n%s", leak, raw)
		}
	}
	replyTo := strings.Trim(header(sideMsg.Raw, "Reply-To"), "<>")
	if !strings.HasPrefix(replyTo, "support+1s1-") {
		t.Fatalf("the side message's Reply-To is %q, want the side's address", replyTo)
	}
	conv, err := ts.store.Conversation(ctx, 1)
	must(err)
	if !slices.Equal(conv.Participants, []string{"lou@customer.example"}) {
		t.Errorf("participants %v after #side", conv.Participants)
	}
	sides, err := ts.store.Sides(ctx, 1)
	must(err)
	if len(sides) != 1 || !slices.Equal(sides[0].Recipients, []string{"sales@vendor.example"}) || !slices.Equal(sides[0].Hidden, []string{"dock@warehouse.example"}) {
		t.Fatalf("sides %+v", sides)
	}

	// The vendor answers the side's address; the warehouse answers with
	// Reply All and joins the side.
	sideID := header(sideMsg.Raw, "Message-Id")
	must(smtpSend(ts.mx, nil, "sales@vendor.example", []string{replyTo},
		"From: sales@vendor.example\r\nTo: "+replyTo+"\r\nSubject: Re: Broken part\r\nMessage-ID: <vendor-1@vendor.example>\r\nIn-Reply-To: "+sideID+"\r\n\r\nYes, two.\r\n"))
	must(smtpSend(ts.mx, nil, "dock@warehouse.example", []string{replyTo},
		"From: dock@warehouse.example\r\nTo: "+replyTo+"\r\nCc: sales@vendor.example\r\nSubject: Re: Broken part\r\nMessage-ID: <dock-1@warehouse.example>\r\nIn-Reply-To: "+sideID+"\r\n\r\nWe have one here.\r\n"))
	msgs, err := ts.store.ConversationMessages(ctx, 1)
	must(err)
	if len(msgs) != 4 || msgs[2].Kind != store.KindSide || msgs[2].Side != 1 || msgs[3].Kind != store.KindSide || msgs[3].Side != 1 {
		t.Fatalf("messages %+v, want the answers as side 1", msgs)
	}
	conv, err = ts.store.Conversation(ctx, 1)
	must(err)
	if !slices.Equal(conv.Participants, []string{"lou@customer.example"}) {
		t.Errorf("participants %v after the side's answers", conv.Participants)
	}
	sides, err = ts.store.Sides(ctx, 1)
	must(err)
	if !slices.Equal(sides[0].Recipients, []string{"sales@vendor.example", "dock@warehouse.example"}) || len(sides[0].Hidden) != 0 {
		t.Errorf("after the Reply All: %+v", sides[0])
	}

	// Bob presses Reply on the vendor's answer: the side goes on, to both.
	must(smtpSend(ts.submission, bob(), "bob@example.test", []string{"sales@vendor.example"},
		"From: bob@example.test\r\nTo: sales@vendor.example\r\nSubject: Re: Broken part\r\nIn-Reply-To: <vendor-1@vendor.example>\r\n\r\nPlease send one.\r\n"))
	q = queue()
	if len(q) != 2 {
		t.Fatalf("%d messages queued, want 2", len(q))
	}
	if got := slices.Sorted(slices.Values(q[1].Recipients)); !slices.Equal(got, []string{"dock@warehouse.example", "sales@vendor.example"}) {
		t.Errorf("the side's next message goes to %v", got)
	}
	if irt := header(q[1].Raw, "In-Reply-To"); irt != "<vendor-1@vendor.example>" {
		t.Errorf("In-Reply-To %q", irt)
	}
	// The agents see the side's messages with their number; the Sent copy
	// answers to the side's recipients.
	entries, _, err := ts.store.Entries(ctx, store.MailboxView{Agent: "alice@example.test", Folder: store.FolderInbox, Inboxes: []string{"support@example.test"}})
	must(err)
	var sideEntries int
	for _, e := range entries {
		if e.Kind == store.KindSide {
			sideEntries++
			if e.Side != 1 {
				t.Errorf("entry %+v has side %d", e, e.Side)
			}
		}
	}
	if sideEntries != 4 {
		t.Errorf("%d side entries in INBOX, want 4", sideEntries)
	}
	// Reply on an answer writes to the side's recipients (DESIGN.md §6).
	for _, e := range entries {
		if e.Message == msgs[2].ID && e.ReplyTo != "sales@vendor.example" ||
			e.Message == msgs[3].ID && e.ReplyTo != "sales@vendor.example, dock@warehouse.example" {
			t.Errorf("the served Reply-To of side answer %d is %q", e.Message, e.ReplyTo)
		}
	}
	if last := entries[len(entries)-1]; last.ReplyTo != "sales@vendor.example, dock@warehouse.example" {
		t.Errorf("the served Reply-To of bob's side message is %q", last.ReplyTo)
	}
	// The customer's reply is no side message; the side never reaches her.
	must(smtpSend(ts.mx, nil, "kim@customer.example", []string{"support@example.test"},
		"From: kim@customer.example\r\nTo: support@example.test\r\nSubject: Re: Broken part\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\nAny news?\r\n"))
	msgs, _ = ts.store.ConversationMessages(ctx, 1)
	if last := msgs[len(msgs)-1]; last.Kind != store.KindInbound {
		t.Errorf("the customer's reply is %s", last.Kind)
	}
	for _, d := range queue() {
		if slices.Contains(d.Recipients, "kim@customer.example") || slices.Contains(d.Recipients, "lou@customer.example") {
			t.Errorf("a side message was sent to the customer: %v", d.Recipients)
		}
	}
	// #side to the customer is refused.
	err = smtpSend(ts.submission, bob(), "bob@example.test", []string{"kim@customer.example"},
		"From: bob@example.test\r\nTo: kim@customer.example\r\nSubject: Re: Broken part\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\n#side\r\n\r\nHi\r\n")
	wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 7, 1}, "never goes to the customer")
}
