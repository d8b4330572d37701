package store

import (
	"context"
	"slices"
	"sync"
	"time"
)

// RateCounter counts events per key over a sliding window, for the quotas
// that hold for the whole deployment rather than for one node (DESIGN.md
// §8: max_messages_per_sender_per_hour; §15: a node holds nothing another
// needs). On PostgreSQL every node counts into the database, so a sender
// cannot pass its quota by spreading its mail over the MX hosts; SQLite's
// one node keeps them in memory (MemoryRates), forgotten at a restart,
// which errs on the side of the client.
//
// Per-IP throttles (connections, failed logins) are not counted here:
// they guard one node's own sockets and CPU, and stay per node
// (gateway.Limiter).
type RateCounter interface {
	// TakeRate records one event of key at at unless key already has
	// limit events in (at-window, at]; the check and the record are one
	// step, so that concurrent takers on any node cannot pass the limit
	// together. id names the event for GiveRate.
	TakeRate(ctx context.Context, key string, at time.Time, window time.Duration, limit int) (id int64, ok bool, err error)
	// GiveRate removes an event TakeRate recorded (the message it counted
	// was not accepted after all); removing it twice is harmless.
	GiveRate(ctx context.Context, key string, id int64) error
	// CountRate returns how many events key has in (at-window, at].
	CountRate(ctx context.Context, key string, at time.Time, window time.Duration) (int, error)
}

// MemoryRates is a RateCounter in this process's memory. Its zero value
// is ready to use; it is safe for concurrent use.
type MemoryRates struct {
	mu        sync.Mutex
	events    map[string][]rateEvent // oldest first
	next      int64
	lastSweep time.Time
}

type rateEvent struct {
	id      int64
	at      time.Time
	expires time.Time // at + the window it was taken with
}

var _ RateCounter = (*MemoryRates)(nil)

// rateSweepEvery is how often expired events of every key are dropped, so
// that the map does not grow with every key ever seen.
const rateSweepEvery = time.Minute

// TakeRate implements RateCounter.
func (m *MemoryRates) TakeRate(_ context.Context, key string, at time.Time, window time.Duration, limit int) (int64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(at)
	evs := rateEventsAfter(m.events[key], at.Add(-window))
	if len(evs) >= limit {
		return 0, false, nil
	}
	if m.events == nil {
		m.events = map[string][]rateEvent{}
	}
	m.next++
	// Kept in order of time: a clock that went back inserts, not appends.
	i, _ := slices.BinarySearchFunc(m.events[key], at, func(e rateEvent, t time.Time) int {
		if e.at.After(t) {
			return 1
		}
		return -1
	})
	m.events[key] = slices.Insert(m.events[key], i, rateEvent{id: m.next, at: at, expires: at.Add(window)})
	return m.next, true, nil
}

// GiveRate implements RateCounter.
func (m *MemoryRates) GiveRate(_ context.Context, key string, id int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	evs := m.events[key]
	if i := slices.IndexFunc(evs, func(e rateEvent) bool { return e.id == id }); i >= 0 {
		m.events[key] = slices.Delete(evs, i, i+1)
	}
	return nil
}

// CountRate implements RateCounter.
func (m *MemoryRates) CountRate(_ context.Context, key string, at time.Time, window time.Duration) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(at)
	return len(rateEventsAfter(m.events[key], at.Add(-window))), nil
}

// rateEventsAfter returns the events after since (events are in order of time).
func rateEventsAfter(evs []rateEvent, since time.Time) []rateEvent {
	i := 0
	for i < len(evs) && !evs[i].at.After(since) {
		i++
	}
	return evs[i:]
}

// sweep drops expired events, at most once per rateSweepEvery. m.mu is
// held.
func (m *MemoryRates) sweep(now time.Time) {
	if now.Sub(m.lastSweep) < rateSweepEvery && !now.Before(m.lastSweep) {
		return
	}
	m.lastSweep = now
	for k, evs := range m.events {
		evs = slices.DeleteFunc(evs, func(e rateEvent) bool { return !e.expires.After(now) })
		if len(evs) == 0 {
			delete(m.events, k)
		} else {
			m.events[k] = evs
		}
	}
}
