package storetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// collisionsCases check Collisions, what the submission names in a held
// reply's refusal (DESIGN.md §5 item 10).
func collisionsCases() []testCase {
	return []testCase{
		{"Collisions", testCollisions},
	}
}

// testCollisions: Collisions returns exactly what AddOutbound's Hold counts
// (the customer's and participants' mail, other agents' public replies,
// after the message answered, in that conversation), newest first, at most
// limit; and a Hold is refused exactly when Collisions is not empty.
func testCollisions(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := mustInbound(t, s, newInbound(inboxA, "k1@example.com", 1))
	conv := first.Conversation
	other := mustInbound(t, s, newInbound(inboxA, "k-other@example.com", 2))

	own := reply(mustReserve(t, s), conv, agent, "customer@example.com")
	mustOutbound(t, s, own) // holds agent2's replies, not agent's
	note := reply(mustReserve(t, s), conv, agent2)
	note.Kind = store.KindNote
	mustOutbound(t, s, note) // a note holds nothing
	stranger := into(conv, inboxA, "k2@example.com", 3)
	stranger.Sender, stranger.SenderRole = "someone@example.org", store.SenderStranger
	mustInbound(t, s, stranger) // a stranger holds nothing
	part := into(conv, inboxA, "k3@example.com", 4)
	part.Sender, part.SenderRole = "p@example.com", store.SenderParticipant
	wPart := mustInbound(t, s, part).Message
	r1 := reply(mustReserve(t, s), conv, agent2, "customer@example.com")
	mustOutbound(t, s, r1)
	owner := into(conv, inboxA, "k4@example.com", 5)
	owner.SenderRole = store.SenderOwner
	wOwner := mustInbound(t, s, owner).Message
	r2 := reply(mustReserve(t, s), conv, agent2, "customer@example.com")
	mustOutbound(t, s, r2)
	// Another conversation's customer writing holds nothing here.
	again := into(other.Conversation, inboxA, "k5@example.com", 6)
	again.SenderRole = store.SenderOwner
	mustInbound(t, s, again)

	ids := func(who string, after int64, limit int) []int64 {
		t.Helper()
		ms, err := s.Collisions(ctx, conv, store.Hold{After: after}, who, limit)
		if err != nil {
			t.Fatalf("Collisions(%s, after %d, %d): %v", who, after, limit, err)
		}
		var out []int64
		for _, m := range ms {
			if m.Conversation != conv {
				t.Errorf("Collisions returned message %d of conversation %d, want %d", m.ID, m.Conversation, conv)
			}
			out = append(out, m.ID)
		}
		return out
	}
	check := func(who string, after int64, limit int, want ...int64) {
		t.Helper()
		if got := ids(who, after, limit); !slices.Equal(got, want) {
			t.Errorf("Collisions(%s, after %d, limit %d) = %v, want %v", who, after, limit, got, want)
		}
		// The refusal and the recording agree: a Hold is refused exactly
		// when something holds it.
		o := reply(mustReserve(t, s), conv, who, "customer@example.com")
		o.Hold = &store.Hold{After: after}
		err := s.AddOutbound(ctx, o)
		if held := len(ids(who, after, 1)) > 0; held != errors.Is(err, store.ErrCollision) || !held && err != nil {
			t.Errorf("AddOutbound by %s with Hold after %d: %v; Collisions says held = %v", who, after, err, held)
		}
	}
	check(agent, first.Message, 10, r2.Message, wOwner, r1.Message, wPart)
	check(agent, first.Message, 2, r2.Message, wOwner)
	check(agent2, first.Message, 10, wOwner, wPart, own.Message)
	check(agent, r2.Message, 10)
}
