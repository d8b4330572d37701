package storetest

import (
	"slices"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// sideCases check side conversations (DESIGN.md §14).
func sideCases() []testCase {
	return []testCase{
		{"SideConversations", testSideConversations},
	}
}

// testSideConversations: an agent's side message is queued to its
// recipients and filed in their Sent; its answers are kind side with their
// number, in the shared folders; a side's recipients grow as they join, a
// hidden one who joins leaves the hidden list; no side message makes a
// participant, and a side message holds no reply (collision hold).
func testSideConversations(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := mustInbound(t, s, newInbound(inboxA, "s1@example.com", 1))
	conv := first.Conversation
	if sides, err := s.Sides(ctx, conv); err != nil || len(sides) != 0 {
		t.Fatalf("Sides of a conversation without any: %v, %v", sides, err)
	}
	out := reply(mustReserve(t, s), conv, agent, "vendor@vendor.example", "dock@warehouse.example")
	out.Kind = store.KindSide
	out.Side = &store.SideWrite{Number: 1, Recipients: []string{"vendor@vendor.example"}, Hidden: []string{"dock@warehouse.example"}}
	out.HiddenBCC = []string{"dock@warehouse.example"}
	out.ServedReplyTo = "vendor@vendor.example"
	mustOutbound(t, s, out)
	m, err := s.Message(ctx, out.Message)
	if err != nil || m.Kind != store.KindSide || m.Side != 1 {
		t.Fatalf("the side message reads %+v, %v", m, err)
	}
	pending := mustPending(t, s, 10)
	if len(pending) != 1 || pending[0].Message != out.Message {
		t.Fatalf("pending %+v, want the side message queued", pending)
	}
	sides, err := s.Sides(ctx, conv)
	if err != nil || len(sides) != 1 || sides[0].Number != 1 || sides[0].Conversation != conv ||
		!slices.Equal(sides[0].Recipients, []string{"vendor@vendor.example"}) || !slices.Equal(sides[0].Hidden, []string{"dock@warehouse.example"}) {
		t.Fatalf("Sides = %+v, %v", sides, err)
	}

	// Answers: the vendor's, then the hidden recipient joining.
	ans := into(conv, inboxA, "v1@vendor.example", 2)
	ans.Sender = "vendor@vendor.example"
	ans.Side = &store.SideWrite{Number: 1}
	ans.ServedReplyTo = "vendor@vendor.example"
	a1 := mustInbound(t, s, ans)
	join := into(conv, inboxA, "d1@warehouse.example", 3)
	join.Sender = "dock@warehouse.example"
	join.Side = &store.SideWrite{Number: 1, Recipients: []string{"dock@warehouse.example"}}
	mustInbound(t, s, join)
	if m, err := s.Message(ctx, a1.Message); err != nil || m.Kind != store.KindSide || m.Side != 1 {
		t.Fatalf("the vendor's answer reads %+v, %v", m, err)
	}
	sides, _ = s.Sides(ctx, conv)
	if !slices.Equal(sides[0].Recipients, []string{"vendor@vendor.example", "dock@warehouse.example"}) || len(sides[0].Hidden) != 0 {
		t.Errorf("after the hidden recipient joined: %+v", sides[0])
	}
	// A second side has its own recipients.
	two := reply(mustReserve(t, s), conv, agent2, "team@other.example")
	two.Kind, two.Side = store.KindSide, &store.SideWrite{Number: 2, Recipients: []string{"team@other.example"}}
	mustOutbound(t, s, two)
	sides, _ = s.Sides(ctx, conv)
	if len(sides) != 2 || sides[1].Number != 2 || !slices.Equal(sides[1].Recipients, []string{"team@other.example"}) {
		t.Errorf("two sides: %+v", sides)
	}

	c := mustConversation(t, s, conv)
	if len(c.Participants) != 0 {
		t.Errorf("side messages made participants: %v", c.Participants)
	}
	// The agents see them in INBOX with their number; the author in Sent.
	entries, _ := mustEntries(t, s, inboxView(agent, inboxA))
	var sideEntries []int
	for _, e := range entries {
		if e.Kind == store.KindSide {
			sideEntries = append(sideEntries, e.Side)
		}
		if e.Message == a1.Message && e.ReplyTo != "vendor@vendor.example" {
			t.Errorf("the vendor's answer is served with Reply-To %q", e.ReplyTo)
		}
	}
	if !slices.Equal(sideEntries, []int{1, 1, 1, 2}) {
		t.Errorf("side entries in INBOX: %v", sideEntries)
	}
	_, sent, err := s.PrivateEntries(ctx, agent, store.MailboxSent)
	if err != nil {
		t.Fatalf("PrivateEntries(Sent): %v", err)
	}
	if len(sent) != 1 || sent[0].Message != out.Message || sent[0].Side != 1 || sent[0].ReplyTo != "vendor@vendor.example" {
		t.Errorf("the author's Sent: %+v", sent)
	}
	// Side messages hold no public reply to the customer's message.
	r := reply(mustReserve(t, s), conv, agent2, "customer@example.com")
	r.Hold = &store.Hold{After: first.Message}
	mustOutbound(t, s, r)
}
