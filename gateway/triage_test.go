package gateway

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
)

// TestTriage: over the MX, a new request matching a rule is tagged,
// assigned and followed as the rule says; other new requests go to the
// inbox's reply and admin agents in turn (carol, a view agent, never gets
// one); replies and retried duplicates take no turn; the assignee finds
// the conversation in Mine.
func TestTriage(t *testing.T) {
	ctx := context.Background()
	ts := newTestServer(t, nil, func(c *config.Config) {
		c.Inboxes[0].Assign = config.AssignRoundRobin
		c.Inboxes[0].ShowEvents = true
		c.Inboxes[0].Rules = []config.Rule{{
			Name: "Billing", Subject: regexp.MustCompile(`(?i)refund|invoice`),
			Tags: []string{"billing"}, Assign: "bob@example.test", Followers: []string{"cfo@example.test"},
		}, {
			Name: "Outage", Body: regexp.MustCompile(`(?i)\bis down\b`), Tags: []string{"outage"},
		}}
	})
	send := func(id, subject, extra, body string) store.Conversation {
		t.Helper()
		msg := "From: Kim <kim@customer.example>\r\nTo: support@example.test\r\nSubject: " + subject +
			"\r\nMessage-ID: <" + id + ">\r\n" + extra + "\r\n" + body + "\r\n"
		if err := smtpSend(ts.mx, nil, "kim@customer.example", []string{"support@example.test"}, msg); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		m, err := ts.store.MessageByHeaderID(ctx, id)
		if err != nil {
			t.Fatalf("%s not stored: %v", id, err)
		}
		c, err := ts.store.Conversation(ctx, m.Conversation)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	refund := send("t1@customer.example", "=?UTF-8?Q?Refund_for_order_42?=", "", "Please.")
	if refund.Assignee != "bob@example.test" || !slices.Equal(refund.Tags, []string{"billing"}) ||
		!slices.Contains(refund.Followers, "cfo@example.test") {
		t.Errorf("the rule's request: assignee %q, tags %v, followers %v; want bob, billing, cfo@", refund.Assignee, refund.Tags, refund.Followers)
	}
	evs, err := ts.store.Events(ctx, refund.ID)
	if err != nil || len(evs) != 1 || !strings.Contains(evs[0].Text, "Rules Billing: tagged billing; assigned to bob@example.test; followed by cfo@example.test") {
		t.Errorf("events %+v, %v", evs, err)
	}

	var turns []string
	for _, id := range []string{"t2", "t3", "t4"} {
		turns = append(turns, send(id+"@customer.example", "Question "+id, "", "Hello").Assignee)
	}
	if want := []string{"alice@example.test", "bob@example.test", "alice@example.test"}; !slices.Equal(turns, want) {
		t.Errorf("round-robin turns %v, want %v (carol only views)", turns, want)
	}
	// A reply and a retried duplicate take no turn.
	if c := send("t5@customer.example", "Re: Question t2", "In-Reply-To: <t2@customer.example>\r\n", "More"); c.Assignee != "alice@example.test" {
		t.Errorf("the reply's conversation is assigned to %q, want alice still", c.Assignee)
	}
	send("t4@customer.example", "Question t4", "", "Hello")
	outage := send("t6@customer.example", "Help", "", "Our site is down since noon.")
	if outage.Assignee != "bob@example.test" || !slices.Equal(outage.Tags, []string{"outage"}) {
		t.Errorf("after a reply and a duplicate: assignee %q, tags %v; want bob's turn and the outage tag", outage.Assignee, outage.Tags)
	}

	// Bob's client shows his conversations in Mine: the rule's and his turns'.
	c := imapLogin(t, ts.imap, "bob@example.test", "demo-bob", nil)
	defer c.Logout()
	sel, err := c.Select("Mine", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	// Refund (message, rules event), t3 (message, turn event), t6 (message,
	// rules event, turn event).
	if sel.NumMessages != 7 {
		t.Errorf("bob's Mine holds %d messages, want 7", sel.NumMessages)
	}
}
