package storetest

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// Quotas' counts (store.RateCounter, DESIGN.md §8, §15).
func rateCases() []testCase {
	return []testCase{
		{"RateCounterSlidingWindow", testRateWindow},
		{"RateCounterConcurrentTakersStopAtTheLimit", testRateConcurrent},
	}
}

// testRateWindow: a key takes up to its limit within the window, then is
// refused; other keys are apart; a count given back frees its place; an
// event leaves the window after window.
func testRateWindow(t *testing.T, s store.Store) {
	ctx := t.Context()
	const window, limit = time.Hour, 3
	take := func(key string, when time.Time) (int64, bool) {
		t.Helper()
		id, ok, err := s.TakeRate(ctx, key, when, window, limit)
		if err != nil {
			t.Fatalf("TakeRate(%s): %v", key, err)
		}
		return id, ok
	}
	count := func(key string, when time.Time) int {
		t.Helper()
		n, err := s.CountRate(ctx, key, when, window)
		if err != nil {
			t.Fatalf("CountRate(%s): %v", key, err)
		}
		return n
	}
	var ids []int64
	for i := range limit {
		id, ok := take("a@example.com", at(i*60))
		if !ok {
			t.Fatalf("take %d of %d refused", i+1, limit)
		}
		ids = append(ids, id)
	}
	if _, ok := take("a@example.com", at(200)); ok {
		t.Fatal("a take over the limit was granted")
	}
	if n := count("a@example.com", at(200)); n != limit {
		t.Errorf("CountRate = %d, want %d (a refused take is not counted)", n, limit)
	}
	if _, ok := take("b@example.com", at(200)); !ok {
		t.Error("another key was refused")
	}
	if err := s.GiveRate(ctx, "a@example.com", ids[1]); err != nil {
		t.Fatal(err)
	}
	if err := s.GiveRate(ctx, "a@example.com", ids[1]); err != nil {
		t.Fatalf("giving back twice: %v", err)
	}
	if n := count("a@example.com", at(200)); n != limit-1 {
		t.Errorf("CountRate after GiveRate = %d, want %d", n, limit-1)
	}
	if _, ok := take("a@example.com", at(201)); !ok {
		t.Fatal("refused after a count was given back")
	}
	if _, ok := take("a@example.com", at(202)); ok {
		t.Fatal("a take over the limit was granted after a give-back")
	}
	// at(0) leaves the window an hour later: one place is free.
	if n := count("a@example.com", at(3600)); n != limit-1 {
		t.Errorf("CountRate an hour after the first = %d, want %d", n, limit-1)
	}
	if _, ok := take("a@example.com", at(3600)); !ok {
		t.Fatal("refused once the first event left the window")
	}
	if n := count("a@example.com", at(3*3600)); n != 0 {
		t.Errorf("CountRate hours later = %d, want 0", n)
	}
}

// testRateConcurrent: 20 takers at once on one key with a limit of 5:
// exactly 5 are granted.
func testRateConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	var granted atomic.Int32
	concurrently(t, 20, func(i int) error {
		_, ok, err := s.TakeRate(ctx, "busy@example.com", at(i), time.Hour, 5)
		if ok {
			granted.Add(1)
		}
		return err
	})
	if n := granted.Load(); n != 5 {
		t.Errorf("%d takes granted at once, want 5", n)
	}
}
