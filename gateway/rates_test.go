package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
)

// countedBy is a store whose quota counts are rates: several test servers
// given one rates are nodes on one PostgreSQL database (store.RateCounter).
type countedBy struct {
	store.Store
	rates store.RateCounter
}

func (c countedBy) TakeRate(ctx context.Context, key string, at time.Time, window time.Duration, limit int) (int64, bool, error) {
	return c.rates.TakeRate(ctx, key, at, window, limit)
}

func (c countedBy) GiveRate(ctx context.Context, key string, id int64) error {
	return c.rates.GiveRate(ctx, key, id)
}

func (c countedBy) CountRate(ctx context.Context, key string, at time.Time, window time.Duration) (int, error) {
	return c.rates.CountRate(ctx, key, at, window)
}

// failingRates cannot count.
type failingRates struct{ store.MemoryRates }

func (*failingRates) TakeRate(context.Context, string, time.Time, time.Duration, int) (int64, bool, error) {
	return 0, false, errDisk
}

// TestMXSenderRateIsTheStores: max_messages_per_sender_per_hour is counted
// in the store, so two nodes sharing it share the quota (DESIGN.md §8,
// §15): two messages on node A use it up for node B; a store that cannot
// count makes the MX answer 451 4.3.0 with our sentence.
func TestMXSenderRateIsTheStores(t *testing.T) {
	shared := &store.MemoryRates{}
	limit := func(c *config.Config) { c.Limits.MaxMessagesPerSenderPerHour = 2 }
	a := newTestServer(t, func(s store.Store) store.Store { return countedBy{s, shared} }, limit)
	b := newTestServer(t, func(s store.Store) store.Store { return countedBy{s, shared} }, limit)
	for i := range 2 {
		if err := smtpSend(a.mx, nil, "fast@x.example", []string{"support@example.test"}, customerMail(strings.Repeat("q", i+1)+"@x.example", "hi")); err != nil {
			t.Fatal(err)
		}
	}
	err := smtpSend(b.mx, nil, "fast@x.example", []string{"support@example.test"}, customerMail("q3@x.example", "hi"))
	wantSMTPError(t, err, 451, smtp.EnhancedCode{4, 7, 1}, "Too many messages from this sender")
	if err := smtpSend(b.mx, nil, "slow@x.example", []string{"support@example.test"}, customerMail("s1@x.example", "hi")); err != nil {
		t.Errorf("another sender was refused on node B: %v", err)
	}

	broken := newTestServer(t, func(s store.Store) store.Store { return countedBy{s, &failingRates{}} }, limit)
	err = smtpSend(broken.mx, nil, "fast@x.example", []string{"support@example.test"}, customerMail("q4@x.example", "hi"))
	wantSMTPError(t, err, 451, smtp.EnhancedCode{4, 3, 0}, "try again later")
	if strings.Contains(err.Error(), "disk") {
		t.Errorf("internal error text leaked: %v", err)
	}
}
