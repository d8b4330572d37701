package gateway

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
)

// TestParticipantsBccAndQuickActions covers issue 4 through the MX and
// submission sockets: participants from Cc with the cap, agents as
// followers, hidden BCC, quick actions, read-only and blocked senders.
func TestParticipantsBccAndQuickActions(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) {
		c.Inboxes[0].MaxParticipants = 2
		c.Inboxes[0].BCC = []string{"archive@archive.example"}
		c.Inboxes[0].ShowEvents = true
		c.Inboxes[0].BlockedSenders = []string{"pest@customer.example"}
	})
	ctx := context.Background()
	bob := func() sasl.Client { return sasl.NewPlainClient("", "bob@example.test", "demo-bob") }
	mx := func(from string, rcpts []string, msg string) error {
		return smtpSend(ts.mx, nil, from, rcpts, msg)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(mx("kim@customer.example", []string{"support@example.test"},
		"From: Kim <kim@customer.example>\r\nTo: support@example.test\r\nCc: Lou <lou@customer.example>, alice@example.test, support+x@example.test\r\n"+
			"Subject: Refund\r\nMessage-ID: <kim-1@customer.example>\r\n\r\nPlease refund.\r\n"))
	conv := func() store.Conversation {
		c, err := ts.store.Conversation(ctx, 1)
		must(err)
		return c
	}
	if c := conv(); !slices.Equal(c.Participants, []string{"lou@customer.example"}) || !slices.Equal(c.Followers, []string{"alice@example.test"}) {
		t.Fatalf("after the customer's Cc: participants %v, followers %v", c.Participants, c.Followers)
	}

	// A plain Reply to the customer only, with an own Bcc: the participant is
	// in Cc, the inbox BCC and the agent's Bcc get it with no header trace.
	must(smtpSend(ts.submission, bob(), "bob@example.test", []string{"kim@customer.example", "auditor@audit.example"},
		"From: bob@example.test\r\nTo: kim@customer.example\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\n#tag billing\r\n#assign me\r\n\r\nRefund sent.\r\n"))
	q, err := ts.store.PendingDeliveries(ctx, 10)
	must(err)
	if len(q) != 1 {
		t.Fatalf("queue holds %d messages", len(q))
	}
	got := slices.Sorted(slices.Values(q[0].Recipients))
	want := []string{"archive@archive.example", "auditor@audit.example", "kim@customer.example", "lou@customer.example"}
	if !slices.Equal(got, want) {
		t.Errorf("envelope %v, want %v", got, want)
	}
	sent := string(q[0].Raw)
	if cc := header(q[0].Raw, "Cc"); cc != "<lou@customer.example>" {
		t.Errorf("Cc %q, want the participant", cc)
	}
	for _, hidden := range []string{"archive@", "auditor@", "Bcc:", "#tag", "#assign"} {
		if strings.Contains(sent, hidden) {
			t.Errorf("the sent message shows %q:\n%s", hidden, sent)
		}
	}
	if c := conv(); !slices.Equal(c.Tags, []string{"billing"}) || c.Assignee != "bob@example.test" {
		t.Errorf("quick actions not applied: tags %v, assignee %q", c.Tags, c.Assignee)
	}
	entries, _, err := ts.store.Entries(ctx, store.MailboxView{Agent: "alice@example.test", Folder: store.FolderInbox, Inboxes: []string{"support@example.test"}})
	must(err)
	var bcc []string
	for _, e := range entries {
		if e.Kind == store.KindReply {
			bcc = e.HiddenBCC
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(bcc)), []string{"archive@archive.example", "auditor@audit.example"}) {
		t.Errorf("the agents' copy lists hidden BCC %v", bcc)
	}

	// Over the cap (2): refused whole, nothing queued.
	err = smtpSend(ts.submission, bob(), "bob@example.test", []string{"kim@customer.example", "m1@x.example", "m2@x.example"},
		"From: bob@example.test\r\nTo: kim@customer.example\r\nCc: m1@x.example, m2@x.example\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\nx\r\n")
	wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 7, 1}, "m1@x.example, m2@x.example")
	if q, _ := ts.store.PendingDeliveries(ctx, 10); len(q) != 1 {
		t.Errorf("a refused reply was queued")
	}

	// Writing to a blocked sender is refused; the blocked sender's mail too.
	err = smtpSend(ts.submission, bob(), "bob@example.test", []string{"pest@customer.example"},
		"From: bob@example.test\r\nTo: pest@customer.example\r\nSubject: hi\r\n\r\nx\r\n")
	wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 7, 1}, "blocked")
	err = mx("pest@customer.example", []string{"support@example.test"}, "From: pest@customer.example\r\nSubject: x\r\n\r\nx\r\n")
	wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 7, 1}, "refused")

	// Only actions: an action, not a note; nothing stored or sent but the event.
	before := countEntries(t, ts.store)
	must(smtpSend(ts.submission, bob(), "bob@example.test", []string{"support@example.test"},
		"From: bob@example.test\r\nTo: support@example.test\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\n#readonly on\r\n#uncc lou@customer.example\r\n"))
	if c := conv(); !c.ReadOnly || len(c.Participants) != 0 {
		t.Errorf("after #readonly on, #uncc: %+v", c)
	}
	if q, _ := ts.store.PendingDeliveries(ctx, 10); len(q) != 1 {
		t.Errorf("an action-only message was queued")
	}
	if n := countEntries(t, ts.store) - before; n != 1 { // the event (show_events), no note
		t.Errorf("an action-only message added %d INBOX entries, want the event only", n)
	}
	err = mx("kim@customer.example", []string{"support@example.test"},
		"From: kim@customer.example\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\nAnd?\r\n")
	wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 7, 1}, "read-only")

	// A bad quick action refuses the message with a sentence.
	err = smtpSend(ts.submission, bob(), "bob@example.test", []string{"kim@customer.example"},
		"From: bob@example.test\r\nTo: kim@customer.example\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\n#assign nobody@nowhere.example\r\n\r\nx\r\n")
	wantSMTPError(t, err, 554, smtp.EnhancedCode{5, 6, 0}, "names no agent")

	evs, err := ts.store.Events(ctx, 1)
	must(err)
	if len(evs) < 3 {
		t.Errorf("events %+v", evs)
	}
}

// TestRequireTagAndAttachments: the inbox policies refuse a reply with a
// sentence that says what to do.
func TestRequireTagAndAttachments(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) {
		c.Inboxes[0].RequireTag = true
		c.Inboxes[0].MaxAttachmentBytes = 10
	})
	alice := sasl.NewPlainClient("", "alice@example.test", "demo-alice")
	if err := smtpSend(ts.mx, nil, "kim@customer.example", []string{"support@example.test"}, customerMail("kim-9@customer.example", "Help")); err != nil {
		t.Fatal(err)
	}
	reply := func(top, extraHeader, body string) string {
		return "From: alice@example.test\r\nTo: gina@customer.example\r\nSubject: Re: Help\r\nIn-Reply-To: <kim-9@customer.example>\r\n" + extraHeader + "\r\n" + top + body
	}
	err := smtpSend(ts.submission, alice, "alice@example.test", []string{"gina@customer.example"}, reply("", "", "x\r\n"))
	wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 7, 1}, "#tag <tag>")
	att := "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
	body := "--b\r\nContent-Type: text/plain\r\n\r\n#tag vip\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/pdf\r\n" +
		"Content-Disposition: attachment; filename=\"big.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQgaGVsbG8=\r\n--b--\r\n"
	err = smtpSend(ts.submission, alice, "alice@example.test", []string{"gina@customer.example"}, reply("", att, body))
	wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 7, 1}, "larger than the 10 bytes")
	if err := smtpSend(ts.submission, alice, "alice@example.test", []string{"gina@customer.example"}, reply("#tag vip\r\n\r\n", "", "ok\r\n")); err != nil {
		t.Errorf("a reply with #tag was refused: %v", err)
	}
}

// TestNewOutboundConversation: an agent writing to a customer with no
// thread headers starts a conversation owned by that customer, in the inbox
// the From identity names (DESIGN.md §5 item 1).
func TestNewOutboundConversation(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	err := smtpSend(ts.submission, sasl.NewPlainClient("", "alice@example.test", "demo-alice"), "alice@example.test",
		[]string{"new@customer.example", "second@customer.example"},
		"From: Example Support <support@example.test>\r\nTo: new@customer.example, second@customer.example\r\nSubject: Your order\r\n\r\n#tag orders\r\n\r\nIt shipped.\r\n")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ts.store.Conversation(context.Background(), 1)
	if err != nil || c.Owner != "new@customer.example" || c.Inbox != "support@example.test" || c.Subject != "Your order" ||
		!slices.Equal(c.Participants, []string{"second@customer.example"}) || !slices.Equal(c.Tags, []string{"orders"}) {
		t.Errorf("new conversation %+v, %v", c, err)
	}
	q, _ := ts.store.PendingDeliveries(context.Background(), 10)
	if len(q) != 1 || !strings.Contains(header(q[0].Raw, "Subject"), "[#1]") || header(q[0].Raw, "To") != "<new@customer.example>" {
		t.Errorf("the first message of the conversation: %+v", q)
	}
}
