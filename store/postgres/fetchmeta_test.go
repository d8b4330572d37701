package postgres

import (
	"context"
	"fmt"
	"testing"
)

// fakeMeta stands for the IMAP side's computation.
func fakeMeta(raw []byte) []byte { return append([]byte("meta:"), raw[:8]...) }

// TestMetaBatchesBeyondChunk reads more messages than one statement holds.
func TestMetaBatchesBeyondChunk(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
	var ids []int64
	meta := map[int64][]byte{}
	for i := range 507 {
		res := mustInbound(t, s, newInbound("support@example.com", fmt.Sprintf("m%d@x", i), i))
		ids = append(ids, res.Message)
		meta[res.Message] = []byte(fmt.Sprint(i))
	}
	if got, _ := s.MessagesMeta(ctx, ids); len(got) != 0 {
		t.Fatalf("%d metadata rows without a MetaFunc", len(got))
	}
	if err := s.SetMessagesMeta(ctx, meta); err != nil {
		t.Fatal(err)
	}
	got, err := s.MessagesMeta(ctx, ids)
	if err != nil || len(got) != len(ids) {
		t.Fatalf("%d of %d rows back: %v", len(got), len(ids), err)
	}
	raws, err := s.MessagesRaw(ctx, ids)
	if err != nil || len(raws) != len(ids) {
		t.Fatalf("%d of %d messages back: %v", len(raws), len(ids), err)
	}
	// Metadata of a message that does not exist is not recorded.
	if err := s.SetMessagesMeta(ctx, map[int64][]byte{424242: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "message_meta"); n != len(ids) {
		t.Fatalf("%d rows, want %d", n, len(ids))
	}
}
