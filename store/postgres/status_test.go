package postgres

import (
	"context"
	"slices"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// TestKeywordsOfManyConversations: a folder may hold more conversations
// than SQLite allows variables in one statement (found by bench/run at
// 200,000 messages: SELECT INBOX failed).
func TestKeywordsOfManyConversations(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
	a := mustInbound(t, s, newInbound("support@example.test", "a@x", 1))
	if err := s.UpdateConversation(ctx, store.KeywordsUpdate(a.Conversation, []string{"vip"}, nil)); err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, 40000)
	for i := range ids {
		ids[i] = int64(i + 1000)
	}
	ids[39999] = a.Conversation
	kws, err := keywords(ctx, s.pool, ids)
	if err != nil || !slices.Equal(kws[a.Conversation], []string{"vip"}) {
		t.Errorf("keywords of 40,000 conversations: %v %v", kws, err)
	}
}
