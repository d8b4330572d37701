// Package memlimit keeps Go's soft memory limit at a floor, or half again
// the heap that is live when that is more, so that the collector returns
// the garbage of message handling early without collecting over and over
// when the live heap itself grows past a fixed limit (DESIGN.md §8:
// memory is bounded as a whole).
//
// A fixed limit of max_inflight_bytes + 128 MiB did that until the folder
// pictures of IMAP sessions outgrew it: one picture of a 921,000-message
// folder holds about 220 MB, and with two the live heap passed the limit,
// so that the collector ran without pause, at half of the CPU, and a
// STORE in that folder took 0.07 s instead of 0.013 s (issue 18).
package memlimit

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// For is the soft limit for a live heap of live bytes: floor, or half again
// the live heap when that is more. Below the floor nothing changes from a
// fixed limit (the daemon's is max_inflight_bytes + 128 MiB, whose peak
// TestMemoryIsBoundedUnderParallelLoad checks); above it the collector runs
// when the heap has grown by half, as with GOGC=50.
func For(live, floor int64) int64 { return max(floor, live+live/2) }

// live reads the heap the last collection found live.
func live() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}

// Adjust sets the soft limit for the heap live now and returns it.
func Adjust(floor int64) int64 {
	limit := For(live(), floor)
	debug.SetMemoryLimit(limit)
	return limit
}

// Keep adjusts the soft limit now and every interval until ctx is done.
func Keep(ctx context.Context, floor int64, interval time.Duration) {
	Adjust(floor)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			Adjust(floor)
		}
	}
}
