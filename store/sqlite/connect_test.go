package sqlite

import (
	"context"
	"database/sql"
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

// TestReadPoolKeepsConnections: read connections that were in use at once
// stay open afterwards, with their prepared statements, instead of being
// closed and opened again for the next reads (database/sql keeps two idle).
func TestReadPoolKeepsConnections(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, t.TempDir())
	for range 3 {
		var conns []*sql.Conn
		for range readConns {
			c, err := s.read.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var n int
			if err := c.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
	}
	if st := s.read.Stats(); st.MaxIdleClosed != 0 || st.OpenConnections != readConns {
		t.Errorf("read pool: %d connections closed for want of room, %d open; want 0 and %d", st.MaxIdleClosed, st.OpenConnections, readConns)
	}
}
