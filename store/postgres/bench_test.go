package postgres

import (
	"bytes"
	"context"
	"fmt"
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

// BenchmarkStoreInsert measures a durable insert (a commit of
// PostgreSQL's, fsync included) from GOMAXPROCS callers and from 20 ×
// GOMAXPROCS, on one node and on two nodes sharing the database: inserts
// into one folder are serialised by its UID counter row (the package
// comment), so what bounds them is how long each holds it.
func BenchmarkStoreInsert(b *testing.B) {
	for _, nodes := range []int{1, 2} {
		for _, par := range []int{1, 20} {
			b.Run(fmt.Sprintf("nodes=%d/callers=%d", nodes, par), func(b *testing.B) {
				dsn := pg.DSN(b)
				stores := []*Store{openTest(b, dsn)}
				if nodes == 2 {
					stores = append(stores, openTest(b, dsn))
				}
				var n atomic.Int64
				b.ReportAllocs()
				b.SetParallelism(par)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						id := fmt.Sprintf("bench%d@customer.example", i)
						in := newInbound("support@example.test", id, int(i))
						in.Raw = benchRaw(id)
						if _, err := stores[int(i)%len(stores)].AddInbound(context.Background(), in); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkSeenRoundTrip measures what a session's STORE \Seen costs the
// store on PostgreSQL: the agent's \Seen of one message, then the read
// that brings the session's picture of INBOX up to date (EntryChanges from
// the cursor before). bench/run's million section had it at 34 ms at
// 10,000 messages, against 3 ms on SQLite (issue 18).
func BenchmarkSeenRoundTrip(b *testing.B) {
	ctx := context.Background()
	st := openTest(b, pg.DSN(b))
	var msgs []int64
	for i := range 200 {
		id := fmt.Sprintf("seen%d@customer.example", i)
		res, err := st.AddInbound(ctx, newInbound("support@example.test", id, i))
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, res.Message)
	}
	view := store.MailboxView{Agent: "alice@example.test", Folder: store.FolderInbox, Inboxes: []string{"support@example.test"}}
	c, err := st.EntryChanges(ctx, view, store.FolderCursor{})
	if err != nil {
		b.Fatal(err)
	}
	cur := c.Cursor
	b.ResetTimer()
	for i := range b.N {
		if err := st.SetSeen(ctx, view.Agent, msgs[i%len(msgs):i%len(msgs)+1], i/len(msgs)%2 == 0); err != nil {
			b.Fatal(err)
		}
		if _, err := st.UIDValidity(ctx, view); err != nil {
			b.Fatal(err)
		}
		c, err := st.EntryChanges(ctx, view, cur)
		if err != nil {
			b.Fatal(err)
		}
		cur = c.Cursor
	}
}
