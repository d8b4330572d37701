package postgres

import (
	"context"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// TestConversationCounts: the conversations by status, as /metrics serves
// them.
func TestConversationCounts(t *testing.T) {
	s := openTest(t, pg.DSN(t))
	ctx := context.Background()
	counts, err := s.ConversationCounts(ctx)
	if err != nil || len(counts) != 0 {
		t.Fatalf("empty store: %v, %v", counts, err)
	}
	a := mustInbound(t, s, newInbound("support@example.com", "a@x", 1))
	mustInbound(t, s, newInbound("support@example.com", "b@x", 2))
	c := mustInbound(t, s, newInbound("sales@example.com", "c@x", 3))
	if err := s.SetStatus(ctx, a.Conversation, store.StatusClosed); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatus(ctx, c.Conversation, store.StatusSpam); err != nil {
		t.Fatal(err)
	}
	counts, err = s.ConversationCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[store.Status]int64{store.StatusOpen: 1, store.StatusClosed: 1, store.StatusSpam: 1}; len(counts) != len(want) ||
		counts[store.StatusOpen] != 1 || counts[store.StatusClosed] != 1 || counts[store.StatusSpam] != 1 {
		t.Errorf("ConversationCounts = %v, want %v", counts, want)
	}
}
