package queue

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/sqlite"
)

// BenchmarkRelayDrain measures the outbound rate of the worker alone: 500
// replies with two recipients each, queued, drained through a relay on
// loopback (go-smtp's server) with the real SQLite store.
func BenchmarkRelayDrain(b *testing.B) {
	for range b.N {
		b.StopTimer()
		s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "data"))
		if err != nil {
			b.Fatal(err)
		}
		f := startFakeSMTP(b)
		for i := range 500 {
			queueReply(b, s, i, "carla@customer.example", "dave@customer.example")
		}
		w := &Worker{Store: s, Transport: &RelayTransport{Hostname: "sg.test", Relay: f.Addr}, Keys: testKeys,
			Retry: []time.Duration{time.Minute}, GiveUpAfter: time.Hour, Log: slog.New(slog.DiscardHandler)}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		start := time.Now()
		go func() { done <- w.Run(ctx) }()
		for {
			n, err := s.QueueCounts(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if n[store.RecipientQueued] == 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.ReportMetric(1000/time.Since(start).Seconds(), "recipients/s")
		b.StopTimer()
		cancel()
		<-done
		f.srv.Close()
		s.Close()
		if got := len(f.received()); got != 1000 {
			b.Fatalf("relay received %d, want 1000", got)
		}
	}
}
