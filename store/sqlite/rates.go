package sqlite

import (
	"context"
	"time"
)

// The quotas' counts (store.RateCounter) of SQLite's one node are in its
// memory: nothing else needs them, a restart forgets them (which errs on
// the side of the client), and counting a message costs no write.

// TakeRate implements store.RateCounter.
func (s *Store) TakeRate(ctx context.Context, key string, at time.Time, window time.Duration, limit int) (int64, bool, error) {
	return s.rates.TakeRate(ctx, key, at, window, limit)
}

// GiveRate implements store.RateCounter.
func (s *Store) GiveRate(ctx context.Context, key string, id int64) error {
	return s.rates.GiveRate(ctx, key, id)
}

// CountRate implements store.RateCounter.
func (s *Store) CountRate(ctx context.Context, key string, at time.Time, window time.Duration) (int, error) {
	return s.rates.CountRate(ctx, key, at, window)
}
