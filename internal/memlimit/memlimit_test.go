package memlimit

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
)

// TestLimitFollowsLiveHeap holds a live heap larger than the floor and
// checks that the limit set is half again above it: with a fixed limit
// below the live heap, the collector would run without pause.
func TestLimitFollowsLiveHeap(t *testing.T) {
	defer debug.SetMemoryLimit(math.MaxInt64)
	const floor = 16 << 20
	held := make([][]byte, 64)
	for i := range held {
		held[i] = make([]byte, 1<<20) // 64 MiB live, four times the room
	}
	runtime.GC() // the live heap is what a collection found
	limit := Adjust(floor)
	if limit < 96<<20 {
		t.Fatalf("limit %d MiB with 64 MiB live, want at least 96 MiB", limit>>20)
	}
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Fatalf("the runtime's limit is %d, want %d", got, limit)
	}
	runtime.KeepAlive(held)
	if small := For(1<<20, 32<<20); small != 32<<20 {
		t.Fatalf("limit %d for a small live heap, want the floor", small)
	}
	held = nil
	runtime.GC()
	if after := Adjust(floor); after >= limit {
		t.Fatalf("limit %d MiB after the heap was freed, want below %d MiB", after>>20, limit>>20)
	}
}
