package store

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestClaimAutoAck: at most limit acknowledgements per inbox and recipient
// in any 24 hours, case-insensitively, counted across a restart.
func TestClaimAutoAck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	t0 := at(0)
	steps := []struct {
		name             string
		inbox, recipient string
		at               time.Time
		limit            int
		want             bool
	}{
		{"first", "support@x.test", "gina@customer.example", t0, 1, true},
		{"same day", "support@x.test", "gina@customer.example", t0.Add(time.Hour), 1, false},
		{"case does not matter", "Support@X.test", "GINA@customer.example", t0.Add(2 * time.Hour), 1, false},
		{"another recipient", "support@x.test", "hans@customer.example", t0.Add(2 * time.Hour), 1, true},
		{"another inbox", "billing@x.test", "gina@customer.example", t0.Add(2 * time.Hour), 1, true},
		{"a higher limit", "support@x.test", "gina@customer.example", t0.Add(3 * time.Hour), 2, true},
		{"the higher limit reached", "support@x.test", "gina@customer.example", t0.Add(4 * time.Hour), 2, false},
		{"24 hours after the first, one of two left", "support@x.test", "gina@customer.example", t0.Add(24 * time.Hour), 2, true},
		{"then none", "support@x.test", "gina@customer.example", t0.Add(25 * time.Hour), 2, false},
	}
	for i, st := range steps {
		if i == 4 { // a restart keeps what was claimed
			s.Close()
			s = openTest(t, dir)
		}
		got, err := s.ClaimAutoAck(ctx, st.inbox, st.recipient, st.at, st.limit)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got != st.want {
			t.Errorf("%s: ClaimAutoAck = %v, want %v", st.name, got, st.want)
		}
	}
}

// TestClaimAutoAckConcurrent: messages arriving at once cannot both take
// the last acknowledgement.
func TestClaimAutoAckConcurrent(t *testing.T) {
	s := openTest(t, t.TempDir())
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.ClaimAutoAck(context.Background(), "support@x.test", "gina@customer.example", at(0), 1)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				granted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if granted != 1 {
		t.Errorf("%d concurrent claims granted, want 1", granted)
	}
}

// TestReleaseAutoAck: a released claim no longer counts against the limit;
// releasing is case-insensitive, touches only the claim made at that time,
// and releasing what was never claimed does nothing.
func TestReleaseAutoAck(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	t0 := at(0)
	claim := func(name string, when time.Time, limit int, want bool) {
		t.Helper()
		got, err := s.ClaimAutoAck(ctx, "support@x.test", "gina@customer.example", when, limit)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != want {
			t.Errorf("%s: ClaimAutoAck = %v, want %v", name, got, want)
		}
	}
	release := func(name, recipient string, when time.Time) {
		t.Helper()
		if err := s.ReleaseAutoAck(ctx, "Support@X.test", recipient, when); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	claim("first", t0, 1, true)
	claim("limit reached", t0.Add(time.Minute), 1, false)
	release("release the first", "GINA@customer.example", t0)
	claim("after the release", t0.Add(time.Hour), 1, true)
	release("nothing claimed then", "gina@customer.example", t0.Add(2*time.Hour))
	release("another recipient", "hans@customer.example", t0.Add(time.Hour))
	release("released twice", "gina@customer.example", t0)
	claim("still at the limit", t0.Add(3*time.Hour), 1, false)
	claim("the other of two kept", t0.Add(4*time.Hour), 2, true)
	release("release the last of two", "gina@customer.example", t0.Add(4*time.Hour))
	claim("one of two free again", t0.Add(5*time.Hour), 2, true)
	claim("then none", t0.Add(6*time.Hour), 2, false)
}
