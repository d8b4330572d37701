package sqlite

import (
	"context"
	"testing"
)

// TestWriteConnectionTempStoreMemory: the write connection keeps its
// savepoint journals in memory (connect.go); the read pool keeps SQLite's
// default.
func TestWriteConnectionTempStoreMemory(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx := context.Background()
	var write, read int
	if err := s.write.QueryRowContext(ctx, `PRAGMA temp_store`).Scan(&write); err != nil {
		t.Fatal(err)
	}
	if err := s.read.QueryRowContext(ctx, `PRAGMA temp_store`).Scan(&read); err != nil {
		t.Fatal(err)
	}
	if write != 2 || read != 0 { // 2: MEMORY, 0: DEFAULT
		t.Fatalf("temp_store: write connection %d, read pool %d; want 2 and 0", write, read)
	}
}
