package imapgw

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/sqlite"
)

// batchedUpdates is a store that records the conversation updates it is
// asked for, by transaction.
type batchedUpdates struct {
	*sqlite.Store
	mu           sync.Mutex
	transactions [][]int64 // the conversations of each
}

func (b *batchedUpdates) record(us ...store.ConversationUpdate) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var convs []int64
	for _, u := range us {
		convs = append(convs, u.Conversation)
	}
	b.transactions = append(b.transactions, convs)
}

func (b *batchedUpdates) UpdateConversation(ctx context.Context, u store.ConversationUpdate) error {
	b.record(u)
	return b.Store.UpdateConversation(ctx, u)
}

func (b *batchedUpdates) UpdateConversations(ctx context.Context, us []store.ConversationUpdate) error {
	b.record(us...)
	return b.Store.UpdateConversations(ctx, us)
}

// take returns the transactions recorded since the last take.
func (b *batchedUpdates) take() [][]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.transactions
	b.transactions = nil
	return t
}

// TestCommandChangesConversationsInOneTransaction: a STORE of a keyword on
// messages of four conversations, a COPY of them to Mine and an EXPUNGE
// that closes them each change the four conversations in one transaction
// (atonce.go), not one commit after another; every change is made.
func TestCommandChangesConversationsInOneTransaction(t *testing.T) {
	ctx := context.Background()
	sq, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	fillStore(t, sq, 8) // four conversations of two messages
	st := &batchedUpdates{Store: sq}
	c := dialTest(t, testServer(t, st))
	c.must(t, "SELECT INBOX")
	one := func(what string) {
		t.Helper()
		got := st.take()
		if len(got) != 1 || len(got[0]) != 4 {
			t.Errorf("%s: conversation updates in transactions %v, want the four in one", what, got)
		}
	}
	out := c.must(t, `STORE 1:8 +FLAGS ($label1)`)
	if n := strings.Count(out, "FLAGS ($label1))"); n != 8 {
		t.Errorf("STORE answered %d messages with $label1, want 8:\n%s", n, out)
	}
	one("STORE")
	c.must(t, `COPY 1:8 Mine`)
	one("COPY to Mine")
	if out := c.must(t, "STATUS Mine (MESSAGES)"); !strings.Contains(out, "MESSAGES 8") {
		t.Errorf("after COPY to Mine: %s", out)
	}
	c.must(t, `STORE 1:8 +FLAGS (\Deleted)`)
	st.take()
	c.must(t, `EXPUNGE`)
	one("EXPUNGE")
	if out := c.must(t, "STATUS INBOX (MESSAGES)"); !strings.Contains(out, "MESSAGES 0") {
		t.Errorf("after EXPUNGE of every message: %s", out)
	}
}
