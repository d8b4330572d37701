package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// TestMetaBatchesBeyondChunk reads more messages than one statement holds.
func TestMetaBatchesBeyondChunk(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	var ids []int64
	meta := map[int64][]byte{}
	for i := range idChunk + 7 {
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

// TestMetaMigration opens a database made before migration 7, with
// messages, and checks that the migration keeps them, that they have no
// metadata yet (the IMAP side computes it at their first FETCH) and that
// it can then be recorded.
func TestMetaMigration(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	old := mustInbound(t, s, newInbound("support@example.com", "old@x", 1))
	// Back to the schema before migration 7.
	for _, q := range []string{`DROP TABLE message_meta`, `DELETE FROM schema_migrations WHERE version >= 7`} {
		if _, err := s.write.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s = openTest(t, dir)
	var v int
	if err := s.read.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("schema version %d (%v), want %d", v, err, len(migrations))
	}
	if raw, err := s.MessageRaw(ctx, old.Message); err != nil || !bytes.Equal(raw, rawMessage("old@x")) {
		t.Fatalf("the old message after the migration: %q, %v", raw, err)
	}
	if got, err := s.MessagesMeta(ctx, []int64{old.Message}); err != nil || len(got) != 0 {
		t.Fatalf("old message metadata %v, %v: want none (lazy backfill)", got, err)
	}
	if err := s.SetMessagesMeta(ctx, map[int64][]byte{old.Message: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.MessagesMeta(ctx, []int64{old.Message}); err != nil || string(got[old.Message]) != "m" {
		t.Fatalf("backfilled metadata %q, %v", got[old.Message], err)
	}
}
