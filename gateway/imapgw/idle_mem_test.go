package imapgw

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/supportgate/supportgate/store/sqlite"
)

// TestIdleMemory opens sessions in IDLE on one folder and reports what
// each holds (stack and heap), the figure bench/run's 10,000 sessions
// multiply. Run with -v; under -short it opens fewer.
func TestIdleMemory(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 50
	}
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fillStore(t, st, 1000)
	addr := testServer(t, st)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		c := dialTest(t, addr)
		c.must(t, "SELECT INBOX")
		if _, err := io.WriteString(c.c, "i IDLE\r\n"); err != nil {
			t.Fatal(err)
		}
		if l, err := c.r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+") {
			t.Fatalf("IDLE: %q %v", l, err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := func(a, b uint64) string { return fmt.Sprintf("%.1f KiB", float64(int64(a)-int64(b))/float64(n)/1024) }
	// Both ends of every connection are in this process: the client's
	// share is small (a 64 KiB buffer, allocated lazily, and a goroutine).
	t.Logf("%d sessions in IDLE over 1,000 messages: per session (client included) heap %s, stacks %s, goroutines %d",
		n, per(after.HeapInuse, before.HeapInuse), per(after.StackInuse, before.StackInuse), runtime.NumGoroutine())
}
