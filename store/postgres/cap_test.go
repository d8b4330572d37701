package postgres

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// TestParticipantCapInTransaction: the cap is counted where participants
// are added (issue 13): two messages at once never pass it; an agent's
// message over it writes nothing, not even its quick actions.
func TestParticipantCapInTransaction(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
	first := mustInbound(t, s, newInbound("support@example.com", "cap0@customer.example", 1))
	capOne := store.ParticipantCap{Max: 1, Enforce: true}
	var wg sync.WaitGroup
	for i, who := range []string{"a@customer.example", "b@customer.example"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := newInbound("support@example.com", who+".msg", 2+i)
			in.Conversation, in.NewParticipants, in.Cap = first.Conversation, []string{who}, capOne
			if _, err := s.AddInbound(ctx, in); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	c, err := s.Conversation(ctx, first.Conversation)
	if err != nil || len(c.Participants) != 1 {
		t.Fatalf("participants %v with a cap of 1 (%v)", c.Participants, err)
	}
	evs, _ := s.Events(ctx, first.Conversation)
	if !slices.ContainsFunc(evs, func(e store.Event) bool { return e.Type == "participants-over-cap" }) {
		t.Errorf("no event tells the team of the one left out: %+v", evs)
	}
	// An agent's reply over the cap: nothing is written, actions included.
	out := reply(mustReserve(t, s), first.Conversation, "alice@example.com", "gina@customer.example", "z@customer.example")
	out.NewParticipants, out.Cap = []string{"z@customer.example"}, capOne
	out.Update = &store.ConversationUpdate{AddTags: []string{"vip"}}
	if err := s.AddOutbound(ctx, out); !errors.Is(err, store.ErrParticipantCap) {
		t.Fatalf("a reply over the cap: %v", err)
	}
	if c, _ := s.Conversation(ctx, first.Conversation); len(c.Tags) != 0 || len(c.Participants) != 1 {
		t.Errorf("the refused reply changed the conversation: %+v", c)
	}
	if d := mustPending(t, s, 10); len(d) != 0 {
		t.Errorf("the refused reply was queued: %v", d)
	}
	// Within the cap, the message and its actions commit together.
	out.NewParticipants, out.Cap = nil, capOne
	assignee := "alice@example.com"
	out.Update = &store.ConversationUpdate{AddTags: []string{"vip"}, Assignee: &assignee}
	mustOutbound(t, s, out)
	if c, _ := s.Conversation(ctx, first.Conversation); !slices.Equal(c.Tags, []string{"vip"}) || c.Assignee != assignee {
		t.Errorf("the reply's actions: %+v", c)
	}
}
