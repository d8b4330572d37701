package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// benchRaw is a 4 KiB inbound message.
func benchRaw(id string) []byte {
	var b bytes.Buffer
	b.WriteString("From: carla@customer.example\r\nTo: support@example.test\r\nSubject: Printer on fire\r\nMessage-ID: <" + id + ">\r\n\r\n")
	for b.Len() < 4096 {
		b.WriteString("The printer is on fire and the fire brigade does not answer the phone.\r\n")
	}
	return b.Bytes()
}

// BenchmarkStoreInsert measures a durable insert (fsync included) from
// GOMAXPROCS callers and from 20 × GOMAXPROCS: with group commit the parallel case shares fsyncs.
func BenchmarkStoreInsert(b *testing.B) {
	for _, par := range []int{1, 20} {
		b.Run(fmt.Sprintf("callers=%d", par), func(b *testing.B) {
			s := openTest(b, b.TempDir())
			var n atomic.Int64
			b.ReportAllocs()
			// RunParallel runs par × GOMAXPROCS goroutines.
			b.SetParallelism(par)
			before := s.w.commits.Load()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					id := fmt.Sprintf("bench%d@customer.example", i)
					in := newInbound("support@example.test", id, int(i))
					in.Raw = benchRaw(id)
					if _, err := s.AddInbound(context.Background(), in); err != nil {
						b.Error(err)
						return
					}
				}
			})
			if c := s.w.commits.Load() - before; c > 0 {
				b.ReportMetric(float64(n.Load())/float64(c), "writes/commit")
			}
		})
	}
}

// BenchmarkStoreInsertIntoLongConversation measures a reply added to a
// conversation that already holds 0, 1,000 or 5,000 messages: the cost must
// not grow with the conversation (it did while every insert re-synced the
// conversation's folder entries).
func BenchmarkStoreInsertIntoLongConversation(b *testing.B) {
	for _, size := range []int{0, 1000, 5000} {
		b.Run(fmt.Sprintf("messages=%d", size), func(b *testing.B) {
			ctx := context.Background()
			s := openTest(b, b.TempDir())
			conv := mustInbound(b, s, newInbound("support@example.test", "first@customer.example", 0)).Conversation
			add := func(i int) {
				id := fmt.Sprintf("long%d@customer.example", i)
				in := newInbound("support@example.test", id, i)
				in.Conversation, in.Raw = conv, benchRaw(id)
				if _, err := s.AddInbound(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
			for i := range size {
				add(i + 1)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				add(size + 1 + i)
			}
		})
	}
}

func benchmarkInbound(i int) store.Inbound {
	raw := bytes.Repeat([]byte("0123456789abcdef"), 4096/16)
	copy(raw, fmt.Sprintf("Message-ID: <%d@example.com>\r\n", i))
	return store.Inbound{Inbox: inboxA, Owner: "customer@example.com", Subject: "bench", Sender: "customer@example.com",
		MessageIDHeader: fmt.Sprintf("%d@example.com", i), Raw: raw, Received: at(i)}
}

// BenchmarkAddInbound stores 4 KiB messages one after another: the cost of
// one durable commit (an fsync) per message.
func BenchmarkAddInbound(b *testing.B) {
	s := openTest(b, b.TempDir())
	ctx := context.Background()
	b.SetBytes(4096)
	i := 0
	for b.Loop() {
		if _, err := s.AddInbound(ctx, benchmarkInbound(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAddInboundParallel stores 4 KiB messages from many goroutines, the
// case group commit (DESIGN.md §13) would speed up.
func BenchmarkAddInboundParallel(b *testing.B) {
	s := openTest(b, b.TempDir())
	b.SetBytes(4096)
	addInboundParallel(b, s, benchmarkInbound)
}

// addInboundParallel stores message(0), message(1)... from b's parallel
// goroutines.
func addInboundParallel(b *testing.B, s *Store, message func(int) store.Inbound) {
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.AddInbound(context.Background(), message(int(next.Add(1)-1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// realInbound is message i as a customer writes it.
func realInbound(i int) store.Inbound {
	id := fmt.Sprintf("fill%d@customer.example", i)
	sender := fmt.Sprintf("c%d@customer.example", i%1000)
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <support@example.test>\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <%s>\r\nSubject: Printer %d\r\n", sender, id, i)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
	for b.Len() < 4096 {
		b.WriteString("The printer on the third floor is on fire again; please send someone.\r\n")
	}
	return store.Inbound{Inbox: inboxA, Owner: sender, Subject: fmt.Sprintf("Printer %d", i), Sender: sender,
		MessageIDHeader: id, Raw: b.Bytes(), Received: at(i)}
}

// BenchmarkAddInboundSearchable stores 4 KiB customer messages (headers
// and a text body, each with its SEARCH tokens) from 10 goroutines per
// core, as the MX does: what the SEARCH index costs the single writer
// (searchpending.go: 0.84 ms a message with FTS4 inserts in each
// message's transaction, 0.39-0.47 with the queue, 0.33 without an index).
func BenchmarkAddInboundSearchable(b *testing.B) {
	s := openTest(b, b.TempDir())
	b.SetParallelism(10)
	addInboundParallel(b, s, realInbound)
}

// BenchmarkAddOutbound records 4 KiB replies as the submission does (a
// number reserved, then the reply recorded and queued with its collision
// hold) into one conversation, from 1 caller and from 10 at once (bench/run's
// outbound section submits from 10 sessions): the writer's cost per reply.
func BenchmarkAddOutbound(b *testing.B) {
	for _, callers := range []int{1, 10} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			ctx := context.Background()
			s := openTest(b, b.TempDir())
			first := mustInbound(b, s, newInbound("support@example.test", "first@customer.example", 0))
			var n atomic.Int64
			before := s.w.commits.Load()
			var wg sync.WaitGroup
			b.ResetTimer()
			for range callers {
				wg.Go(func() {
					for n.Add(1) <= int64(b.N) {
						msg, err := s.NextMessageNumber(ctx)
						if err != nil {
							b.Error(err)
							return
						}
						out := reply(msg, first.Conversation, agent, "customer@example.com")
						out.Raw = benchRaw(fmt.Sprintf("r%d@support.example.com", msg))
						out.ClientMessageID = fmt.Sprintf("c%d@agent.example", msg)
						out.Hold = &store.Hold{After: first.Message}
						if err := s.AddOutbound(ctx, out); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(s.w.commits.Load()-before)/float64(b.N), "commits/reply")
		})
	}
}
