package gateway

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/store"
)

// TestMerge: DESIGN.md §14 through the sockets: #merge moves the
// conversation; afterwards the customer's reply to either conversation's
// last message, and the old subject tag, land in the target.
func TestMerge(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	ctx := context.Background()
	bob := func() sasl.Client { return sasl.NewPlainClient("", "bob@example.test", "demo-bob") }
	carol := func() sasl.Client { return sasl.NewPlainClient("", "carol@example.test", "demo-carol") }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(smtpSend(ts.mx, nil, "kim@customer.example", []string{"support@example.test"},
		"From: kim@customer.example\r\nTo: support@example.test\r\nSubject: Refund\r\nMessage-ID: <kim-1@customer.example>\r\n\r\nPlease refund.\r\n"))
	must(smtpSend(ts.mx, nil, "kim@home.example", []string{"support@example.test"},
		"From: kim@home.example\r\nTo: support@example.test\r\nSubject: Refund again\r\nMessage-ID: <kim-2@home.example>\r\n\r\nStill waiting.\r\n"))
	must(smtpSend(ts.submission, bob(), "bob@example.test", []string{"kim@customer.example"},
		"From: bob@example.test\r\nTo: kim@customer.example\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\n#tag refund\r\n\r\nOn its way.\r\n"))
	q, err := ts.store.PendingDeliveries(ctx, 10)
	must(err)
	replyID := header(q[0].Raw, "Message-Id")

	// Refusals: no such conversation, itself, a view agent.
	merge := func(who sasl.Client, from, line string) error {
		return smtpSend(ts.submission, who, from, []string{"support@example.test"},
			"From: "+from+"\r\nTo: support@example.test\r\nSubject: Re: Refund\r\nIn-Reply-To: <kim-1@customer.example>\r\n\r\n"+line+"\r\n")
	}
	wantSMTPError(t, merge(bob(), "bob@example.test", "#merge 99"), 550, smtp.EnhancedCode{5, 5, 1}, "no conversation #99")
	wantSMTPError(t, merge(bob(), "bob@example.test", "#merge 1"), 550, smtp.EnhancedCode{5, 5, 1}, "is this conversation")
	wantSMTPError(t, merge(carol(), "carol@example.test", "#merge 2"), 550, smtp.EnhancedCode{5, 7, 1}, "not write")

	// Alice has INBOX open: she sees the merged messages leave and arrive
	// with new UIDs (DESIGN.md §6: a move, EXPUNGE and EXISTS).
	var expunged atomic.Int32
	alice := imapLogin(t, ts.imap, "alice@example.test", "demo-alice", &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{Expunge: func(uint32) { expunged.Add(1) }},
	})
	if _, err := alice.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	uidsOf := func() []imap.UID {
		res, err := alice.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
		must(err)
		return res.AllUIDs()
	}
	before := uidsOf()

	must(merge(bob(), "bob@example.test", "#merge #2"))
	deadline := time.Now().Add(10 * time.Second)
	for expunged.Load() == 0 && time.Now().Before(deadline) {
		must(alice.Noop().Wait())
	}
	after := uidsOf()
	// Before: kim-1 (conversation 1), kim-2 (2), bob's reply (1).
	if expunged.Load() != 2 || len(after) != len(before) || slices.Contains(after, before[0]) || !slices.Contains(after, before[1]) ||
		slices.Contains(after, before[2]) {
		t.Errorf("alice's INBOX: UIDs %v before, %v after, %d expunged; want conversation 1's two messages expunged and back with new UIDs",
			before, after, expunged.Load())
	}
	c, err := ts.store.Conversation(ctx, 1)
	must(err)
	if c.ID != 2 || len(c.Tags) != 1 || c.Tags[0] != "refund" {
		t.Fatalf("conversation 1 after the merge: %+v", c)
	}
	if len(c.Participants) != 1 || c.Participants[0] != "kim@customer.example" {
		t.Errorf("participants of the target %v, want the merged conversation's owner", c.Participants)
	}
	// The customer answers bob's reply (of the merged conversation), and
	// writes with the old tag: both land in #2.
	must(smtpSend(ts.mx, nil, "kim@customer.example", []string{"support@example.test"},
		"From: kim@customer.example\r\nTo: support@example.test\r\nSubject: Re: Refund\r\nMessage-ID: <kim-3@customer.example>\r\nIn-Reply-To: "+replyID+"\r\n\r\nThanks!\r\n"))
	must(smtpSend(ts.mx, nil, "kim@customer.example", []string{"support@example.test"},
		"From: kim@customer.example\r\nTo: support@example.test\r\nSubject: Refund [#1]\r\nMessage-ID: <kim-4@customer.example>\r\n\r\nAnd one more thing.\r\n"))
	for _, id := range []string{"kim-3@customer.example", "kim-4@customer.example", "kim-1@customer.example"} {
		m, err := ts.store.MessageByHeaderID(ctx, id)
		must(err)
		if m.Conversation != 2 {
			t.Errorf("%s is in conversation %d, want 2", id, m.Conversation)
		}
	}
	list, _, err := ts.store.ListConversations(ctx, "", 0, 10)
	must(err)
	if len(list) != 1 {
		t.Errorf("%d conversations listed after the merge, want 1", len(list))
	}
	evs, err := ts.store.Events(ctx, 2)
	must(err)
	found := false
	for _, e := range evs {
		found = found || e.Type == "merged"
	}
	if !found {
		t.Errorf("no merge event in the target: %+v", evs)
	}
	entries, _, err := ts.store.Entries(ctx, store.MailboxView{Agent: "alice@example.test", Folder: store.FolderInbox, Inboxes: []string{"support@example.test"}})
	must(err)
	for _, e := range entries {
		if e.Conversation != 2 {
			t.Errorf("INBOX entry %+v not in the target", e)
		}
	}
}
