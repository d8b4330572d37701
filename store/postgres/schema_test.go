package postgres

import (
	"strings"
	"testing"
)

// TestCheck: check-config's look at the database: a new one and a
// migrated one are usable, one with a newer schema is not, and Check
// itself creates nothing.
func TestCheck(t *testing.T) {
	ctx := t.Context()
	dsn := pg.DSN(t)
	if err := Check(ctx, dsn); err != nil {
		t.Fatalf("a new database: %v", err)
	}
	s := openTest(t, dsn)
	if n := count(t, s, "schema_migrations"); n != len(migrations) {
		t.Fatalf("%d migrations after Open, want %d", n, len(migrations))
	}
	if err := Check(ctx, dsn); err != nil {
		t.Fatalf("a migrated database: %v", err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	if err := Check(ctx, dsn); err == nil || !strings.Contains(err.Error(), "newer than this program's") {
		t.Fatalf("a newer schema: %v", err)
	}
	if _, err := Open(ctx, dsn); err == nil || !strings.Contains(err.Error(), "newer than this program's") {
		t.Fatalf("Open of a newer schema: %v", err)
	}
	if err := Check(ctx, strings.Replace(dsn, "/t_", "/missing_", 1)); err == nil {
		t.Fatal("a database that does not exist: no error")
	}
}

// TestMigrationsRunAgain: a migration is written to run again on a
// database that has it (store/sqlite's rule): forgetting it and opening
// again changes nothing that is stored.
func TestMigrationsRunAgain(t *testing.T) {
	ctx := t.Context()
	dsn := pg.DSN(t)
	s := openTest(t, dsn)
	res := mustInbound(t, s, newInbound(inboxA, "kept@example.com", 1))
	before := sequence(t, s, "uid:INBOX")
	s.Close()
	s = openTest(t, dsn)
	if _, err := s.pool.Exec(ctx, `DELETE FROM schema_migrations`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dsn)
	if got := sequence(t, s, "uid:INBOX"); got != before {
		t.Errorf("the INBOX counter went from %d to %d", before, got)
	}
	if m, err := s.Message(ctx, res.Message); err != nil || m.Conversation != res.Conversation {
		t.Errorf("the stored message after the migrations ran again: %+v, %v", m, err)
	}
}

// TestJITOff: the store's connections run without JIT compilation (which
// cost a folder read more than the read), unless the DSN sets jit.
func TestJITOff(t *testing.T) {
	dsn := pg.DSN(t)
	for _, c := range []struct{ dsn, want string }{{dsn, "off"}, {dsn + "&jit=on", "on"}} {
		s := openTest(t, c.dsn)
		var jit string
		if err := s.pool.QueryRow(t.Context(), `SHOW jit`).Scan(&jit); err != nil {
			t.Fatal(err)
		}
		if jit != c.want {
			t.Errorf("DSN %q: jit is %s, want %s", c.dsn, jit, c.want)
		}
	}
}

// TestPoolSize: a node keeps up to DefaultMaxConns connections (pgxpool's
// default of max(4, cores) made IMAP sessions wait for one), or what the
// DSN says.
func TestPoolSize(t *testing.T) {
	dsn := pg.DSN(t)
	for _, c := range []struct {
		dsn  string
		want int32
	}{{dsn, DefaultMaxConns}, {dsn + "&pool_max_conns=7", 7}} {
		s := openTest(t, c.dsn)
		if got := s.pool.Config().MaxConns; got != c.want {
			t.Errorf("DSN %q: %d connections at most, want %d", c.dsn, got, c.want)
		}
	}
}
