package storetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// collisionCases check the collision hold (store.Outbound.Hold, DESIGN.md §5
// item 10).
func collisionCases() []testCase {
	return []testCase{
		{"CollisionHold", testCollisionHold},
		{"CollisionHoldConcurrent", testCollisionHoldConcurrent},
	}
}

// testCollisionHold: a reply to the customer's first message is held once
// the customer wrote again or another agent replied, never for the agent's
// own replies, notes, strangers or notifications; a held reply writes
// nothing.
func testCollisionHold(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := mustInbound(t, s, newInbound(inboxA, "c1@example.com", 1))
	conv := first.Conversation
	held := func(o store.Outbound) {
		t.Helper()
		o.Hold = &store.Hold{After: first.Message}
		if err := s.AddOutbound(ctx, o); !errors.Is(err, store.ErrCollision) {
			t.Fatalf("reply %d: err = %v, want ErrCollision", o.Message, err)
		}
		if _, err := s.Message(ctx, o.Message); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("held reply %d was recorded: %v", o.Message, err)
		}
	}
	sent := func(o store.Outbound) {
		t.Helper()
		o.Hold = &store.Hold{After: first.Message}
		mustOutbound(t, s, o)
	}

	// The agent's own reply, a note of another agent and a stranger's mail
	// hold nothing.
	sent(reply(mustReserve(t, s), conv, agent, "customer@example.com"))
	note := reply(mustReserve(t, s), conv, agent2)
	note.Kind = store.KindNote
	mustOutbound(t, s, note)
	stranger := into(conv, inboxA, "c2@example.com", 2)
	stranger.Sender, stranger.SenderRole = "someone@example.org", store.SenderStranger
	mustInbound(t, s, stranger)
	sent(reply(mustReserve(t, s), conv, agent, "customer@example.com"))

	// Another agent's public reply holds agent's next one; agent2's own
	// next one, answering after agent's replies, goes.
	r2 := reply(mustReserve(t, s), conv, agent2, "customer@example.com")
	mustOutbound(t, s, r2)
	held(reply(mustReserve(t, s), conv, agent, "customer@example.com"))
	o := reply(mustReserve(t, s), conv, agent2, "customer@example.com")
	o.Hold = &store.Hold{After: r2.Message}
	mustOutbound(t, s, o)

	// The customer writing again holds everyone's reply to the first message;
	// a reply to the new one goes.
	again := into(conv, inboxA, "c3@example.com", 3)
	again.SenderRole = store.SenderOwner
	newest := mustInbound(t, s, again)
	held(reply(mustReserve(t, s), conv, agent2, "customer@example.com"))
	o = reply(mustReserve(t, s), conv, agent, "customer@example.com")
	o.Hold = &store.Hold{After: newest.Message}
	mustOutbound(t, s, o)
	// A reply without Hold (#send, or collision_check off) always goes.
	mustOutbound(t, s, reply(mustReserve(t, s), conv, agent2, "customer@example.com"))
}

// testCollisionHoldConcurrent: of agents answering the same message at once,
// exactly one is recorded.
func testCollisionHoldConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := mustInbound(t, s, newInbound(inboxA, "cc1@example.com", 1))
	agents := []string{agent, agent2, "carla@support.example.com", "dan@support.example.com"}
	outs := make([]store.Outbound, len(agents))
	for i, a := range agents {
		outs[i] = reply(mustReserve(t, s), first.Conversation, a, "customer@example.com")
		outs[i].Hold = &store.Hold{After: first.Message}
	}
	errs := make([]error, len(outs))
	var wg sync.WaitGroup
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.AddOutbound(ctx, outs[i])
		}()
	}
	wg.Wait()
	recorded := 0
	for i, err := range errs {
		switch {
		case err == nil:
			recorded++
		case !errors.Is(err, store.ErrCollision):
			t.Errorf("%s: %v, want nil or ErrCollision", agents[i], err)
		}
	}
	if recorded != 1 {
		t.Fatalf("%d of %d concurrent replies to the same message were recorded, want exactly 1", recorded, len(outs))
	}
}
