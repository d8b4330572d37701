package imapgw

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/sqlite"
)

// concurrentUpdates is a store whose UpdateConversation records how many
// calls were in flight at once; the first call waits (up to a limit) for a
// second, so that writes made one after another show as one at a time.
type concurrentUpdates struct {
	*sqlite.Store
	mu       sync.Mutex
	cond     *sync.Cond
	inFlight int
	most     int
}

func (c *concurrentUpdates) UpdateConversation(ctx context.Context, u store.ConversationUpdate) error {
	c.mu.Lock()
	c.inFlight++
	c.most = max(c.most, c.inFlight)
	c.cond.Broadcast()
	deadline := time.Now().Add(5 * time.Second)
	wake := time.AfterFunc(5*time.Second, func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
	for c.most < 2 && time.Now().Before(deadline) {
		c.cond.Wait()
	}
	wake.Stop()
	c.mu.Unlock()
	err := c.Store.UpdateConversation(ctx, u)
	c.mu.Lock()
	c.inFlight--
	c.mu.Unlock()
	return err
}

// TestCommandWritesAtOnce: a STORE of a keyword on messages of several
// conversations, and an EXPUNGE that closes several, make their desk
// changes at once (atonce.go), not one commit after another; every
// change is made.
func TestCommandWritesAtOnce(t *testing.T) {
	ctx := context.Background()
	sq, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	fillStore(t, sq, 8) // four conversations of two messages
	st := &concurrentUpdates{Store: sq}
	st.cond = sync.NewCond(&st.mu)
	c := dialTest(t, testServer(t, st))
	c.must(t, "SELECT INBOX")
	out := c.must(t, `STORE 1:8 +FLAGS ($label1)`)
	if n := strings.Count(out, "FLAGS ($label1))"); n != 8 {
		t.Errorf("STORE answered %d messages with $label1, want 8:\n%s", n, out)
	}
	st.mu.Lock()
	most := st.most
	st.mu.Unlock()
	if most < 2 {
		t.Errorf("the STORE's conversation changes ran one at a time (at most %d in flight)", most)
	}
	st.mu.Lock()
	st.most = 0
	st.mu.Unlock()
	c.must(t, `STORE 1:8 +FLAGS (\Deleted)`)
	c.must(t, `EXPUNGE`)
	st.mu.Lock()
	most = st.most
	st.mu.Unlock()
	if most < 2 {
		t.Errorf("the EXPUNGE's conversation changes ran one at a time (at most %d in flight)", most)
	}
	if out := c.must(t, "STATUS INBOX (MESSAGES)"); !strings.Contains(out, "MESSAGES 0") {
		t.Errorf("after EXPUNGE of every message: %s", out)
	}
}
