package gateway

import (
	"context"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
)

// TestFollowerNotifications drives the notifier with a clock of its own over
// a real MX and IMAP: the CFO (a rule's follower, no agent) and bob (an agent
// the customer put in Cc) follow a conversation. The CFO is told of an
// update first_after after it, not sooner; of the next one not before
// interval has passed since; never of his own mail, which threads in as a
// follower's, not a participant's; never more than max_per_day a day. Bob
// read the update over IMAP before it was due, so he gets nothing.
func TestFollowerNotifications(t *testing.T) {
	ctx := context.Background()
	ts := newTestServer(t, nil, func(c *config.Config) {
		c.Inboxes[0].Rules = []config.Rule{{Name: "Billing", Subject: regexp.MustCompile(`(?i)refund`), Followers: []string{"cfo@example.test"}}}
		c.Notifications = config.Notifications{FirstAfter: 5 * time.Minute, Interval: 4 * time.Hour, MaxPerDay: 3}
	})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	send := func(from, id, extra, body string) store.Message {
		t.Helper()
		msg := "From: " + from + "\r\nTo: support@example.test\r\nSubject: Refund for order 42\r\nMessage-ID: <" + id + ">\r\n" + extra + "\r\n" + body + "\r\n"
		if err := smtpSend(ts.mx, nil, from, []string{"support@example.test"}, msg); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		m, err := ts.store.MessageByHeaderID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// notifications returns the notification mails queued so far, by recipient.
	var conv int64
	notifications := func() map[string][]string {
		t.Helper()
		msgs, err := ts.store.ConversationMessages(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for _, m := range msgs {
			if m.Kind != store.KindNotification {
				continue
			}
			rc, err := ts.store.MessageRecipients(ctx, m.ID)
			if err != nil || len(rc) != 1 {
				t.Fatalf("notification %d: recipients %+v, %v", m.ID, rc, err)
			}
			raw, _ := ts.store.MessageRaw(ctx, m.ID)
			out[rc[0].Recipient] = append(out[rc[0].Recipient], string(raw))
		}
		return out
	}
	tick := func(at time.Time) { ts.srv.notifyDue(ctx, log, at) }

	first := send("kim@customer.example", "k1@customer.example", "Cc: bob@example.test\r\n", "Where is my refund?")
	conv = first.Conversation
	// An agent's slip (#follow support+x@example.test) must not mail the
	// inbox itself.
	if err := ts.store.UpdateConversation(ctx, store.ConversationUpdate{Conversation: conv, AddFollowers: []string{"support+x@example.test"}}); err != nil {
		t.Fatal(err)
	}
	c, _ := ts.store.Conversation(ctx, conv)
	if !slices.Equal(c.Followers, []string{"bob@example.test", "cfo@example.test", "support+x@example.test"}) {
		t.Fatalf("followers %v", c.Followers)
	}
	update := send("kim@customer.example", "k2@customer.example", "In-Reply-To: <k1@customer.example>\r\n", "Any news? Kim")
	t0 := update.Received

	// Bob reads everything in his INBOX.
	bob := imapLogin(t, ts.imap, "bob@example.test", "demo-bob", nil)
	if _, err := bob.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := bob.Store(imap.SeqSetNum(1, 2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	bob.Logout()

	tick(t0.Add(4 * time.Minute))
	if n := notifications(); len(n) != 0 {
		t.Fatalf("notified before first_after: %v", n)
	}
	tick(t0.Add(6 * time.Minute))
	n := notifications()
	if len(n["cfo@example.test"]) != 1 || len(n["bob@example.test"]) != 0 {
		t.Fatalf("after first_after: %d to the CFO, %d to bob; want 1 and 0 (bob read it)", len(n["cfo@example.test"]), len(n["bob@example.test"]))
	}
	note := n["cfo@example.test"][0]
	for _, want := range []string{"Auto-Submitted: auto-generated", "Any news? Kim", "In-Reply-To: <k2@customer.example>", "Reply-To:"} {
		if !strings.Contains(note, want) {
			t.Errorf("the notification lacks %q:\n%s", want, note)
		}
	}
	// DESIGN.md §7 (clarified, issue 17): a follower added as the
	// conversation opens is told of the opening message too.
	if !strings.Contains(note, "Where is my refund?") {
		t.Errorf("the notification does not tell of the mail that opened the conversation the CFO follows:\n%s", note)
	}
	if ns, _ := ts.store.PendingNotices(ctx); len(ns) != 0 {
		t.Errorf("still pending after the notification and bob's reading: %+v", ns)
	}
	if got := n["support+x@example.test"]; len(got) != 0 {
		t.Errorf("the inbox itself was notified: %d", len(got))
	}
	// Not in anyone's folders.
	alice := imapLogin(t, ts.imap, "alice@example.test", "demo-alice", nil)
	if sel, err := alice.Select("INBOX", nil).Wait(); err != nil || sel.NumMessages != 2 {
		t.Errorf("alice's INBOX holds %v messages (%v); want the customer's two, no notification", sel.NumMessages, err)
	}
	alice.Logout()

	// The CFO answers the notification (to its Reply-To): his mail threads
	// in, as a follower's, and he is no participant.
	replyTo := regexp.MustCompile(`(?m)^Reply-To: .*<(support\+[^>]+)>`).FindStringSubmatch(note)
	if replyTo == nil {
		t.Fatalf("no Reply-To address:\n%s", note)
	}
	msg := "From: cfo@example.test\r\nTo: " + replyTo[1] + "\r\nSubject: Re: Update\r\nMessage-ID: <cfo-1@example.test>\r\n\r\nRefund it today.\r\n"
	if err := smtpSend(ts.mx, nil, "cfo@example.test", []string{replyTo[1]}, msg); err != nil {
		t.Fatal(err)
	}
	cfo, err := ts.store.MessageByHeaderID(ctx, "cfo-1@example.test")
	if err != nil || cfo.Conversation != conv || cfo.SenderRole != store.SenderFollower {
		t.Fatalf("the CFO's answer: %+v, %v; want conversation %d, role follower", cfo, err, conv)
	}
	if c, _ := ts.store.Conversation(ctx, conv); slices.Contains(c.Participants, "cfo@example.test") {
		t.Errorf("the CFO became a participant, whom the customer sees: %v", c.Participants)
	}

	// Next update: the CFO wrote since the last notification (he read it),
	// so first_after applies, not interval. Bob did not read this one.
	u2 := send("kim@customer.example", "k3@customer.example", "In-Reply-To: <k2@customer.example>\r\n", "Thanks!")
	tick(u2.Received.Add(6 * time.Minute))
	n = notifications()
	if len(n["cfo@example.test"]) != 2 || len(n["bob@example.test"]) != 1 {
		t.Fatalf("second round: %d to the CFO, %d to bob; want 2 and 1", len(n["cfo@example.test"]), len(n["bob@example.test"]))
	}
	if strings.Contains(n["cfo@example.test"][1], "Refund it today") || !strings.Contains(n["bob@example.test"][0], "Refund it today") {
		t.Errorf("the CFO must not be told of his own mail; bob must")
	}

	// Third update, unread by the CFO since: interval after the last.
	u3 := send("kim@customer.example", "k4@customer.example", "In-Reply-To: <k3@customer.example>\r\n", "Hello?")
	last := u2.Received.Add(6 * time.Minute)
	tick(u3.Received.Add(6 * time.Minute))
	if got := len(notifications()["cfo@example.test"]); got != 2 {
		t.Fatalf("the CFO got a notification %d within interval", got)
	}
	tick(last.Add(4*time.Hour + time.Minute))
	if got := len(notifications()["cfo@example.test"]); got != 3 {
		t.Fatalf("after interval: %d notifications to the CFO, want 3", got)
	}
	// A fourth within the day waits for the day to pass: max_per_day = 3.
	u4 := send("kim@customer.example", "k5@customer.example", "In-Reply-To: <k4@customer.example>\r\n", "Hello??")
	_ = u4
	tick(last.Add(9 * time.Hour))
	if got := len(notifications()["cfo@example.test"]); got != 3 {
		t.Fatalf("%d notifications to the CFO within a day, want at most 3", got)
	}
	tick(t0.Add(6*time.Minute + 24*time.Hour + time.Minute))
	if got := len(notifications()["cfo@example.test"]); got != 4 {
		t.Fatalf("a day after the first: %d notifications to the CFO, want 4", got)
	}

	// Marked spam: its updates are news to nobody.
	tick(t0.Add(29 * 24 * time.Hour)) // everything due before is sent
	before := notifications()
	if err := ts.store.UpdateConversation(ctx, store.StatusUpdate(conv, store.StatusSpam)); err != nil {
		t.Fatal(err)
	}
	send("kim@customer.example", "k6@customer.example", "In-Reply-To: <k5@customer.example>\r\n", "Buy now")
	tick(t0.Add(30 * 24 * time.Hour))
	if got := notifications(); len(got["cfo@example.test"]) != len(before["cfo@example.test"]) || len(got["bob@example.test"]) != len(before["bob@example.test"]) {
		t.Errorf("notified of a spam conversation: %d to the CFO, %d to bob; %d and %d before", len(got["cfo@example.test"]), len(got["bob@example.test"]),
			len(before["cfo@example.test"]), len(before["bob@example.test"]))
	}
	if ns, _ := ts.store.PendingNotices(ctx); len(ns) != 0 {
		t.Errorf("a spam conversation's notices stay pending: %+v", ns)
	}
}
