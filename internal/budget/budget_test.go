package budget

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
)

func TestReadAllTakesAndGivesBack(t *testing.T) {
	b := New(1 << 20)
	data := strings.Repeat("x", 300<<10)
	got, release, err := b.ReadAll(strings.NewReader(data))
	if err != nil || string(got) != data {
		t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
	}
	if u := b.Used(); u < int64(len(data)) || u > 2*int64(len(data))+chunk {
		t.Errorf("%d bytes taken for %d read", u, len(data))
	}
	release()
	release()
	if u := b.Used(); u != 0 {
		t.Errorf("%d bytes still taken after release", u)
	}
}

func TestReadAllRefusesOverBudget(t *testing.T) {
	b := New(256 << 10)
	_, release, err := b.ReadAll(strings.NewReader(strings.Repeat("x", 1<<20)))
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("a message over the budget: %v", err)
	}
	release()
	if u := b.Used(); u != 0 {
		t.Errorf("%d bytes taken by a refused message", u)
	}
}

// TestParallelReadsStayWithinBudget: many readers at once never hold more
// than the budget; each either gets its whole message or ErrExhausted.
func TestParallelReadsStayWithinBudget(t *testing.T) {
	const limit = 4 << 20
	b := New(limit)
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak := int64(0)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := bytes.Repeat([]byte("y"), 1<<20)
			got, release, err := b.ReadAll(io.MultiReader(bytes.NewReader(data[:1000]), bytes.NewReader(data[1000:])))
			defer release()
			mu.Lock()
			peak = max(peak, b.Used())
			mu.Unlock()
			if err == nil && len(got) != len(data) {
				t.Errorf("got %d bytes", len(got))
			}
			if err != nil && !errors.Is(err, ErrExhausted) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if peak > limit || b.Used() != 0 {
		t.Errorf("peak %d of %d, %d left taken", peak, limit, b.Used())
	}
}

func TestReader(t *testing.T) {
	b := New(100)
	r := b.NewReader(strings.NewReader(strings.Repeat("z", 150)))
	_, err := io.ReadAll(r)
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("reading past the budget: %v", err)
	}
	r.Close()
	if b.Used() != 0 {
		t.Errorf("%d taken after Close", b.Used())
	}
}
