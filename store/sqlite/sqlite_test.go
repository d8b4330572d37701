package sqlite

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/supportgate/supportgate/store"
)

func TestOpenSQLiteCreatesAndMigrates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	s := openTest(t, dir)
	if _, err := os.Stat(filepath.Join(dir, DatabaseFile)); err != nil {
		t.Fatalf("database file not created: %v", err)
	}
	var versions []int
	rows, err := s.write.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	var want []int
	for v := 1; v <= len(migrations); v++ {
		want = append(want, v)
	}
	if !slices.Equal(versions, want) {
		t.Fatalf("schema_migrations = %v, want %v", versions, want)
	}
	// The schema is usable.
	for _, table := range []string{"sequences", "conversations", "participants", "messages", "message_ids",
		"folder_entries", "mailbox_state", "seen", "outbound_messages", "outbound_recipients"} {
		if n := count(t, s, table); n != 0 {
			t.Errorf("new database: %s has %d rows", table, n)
		}
	}
}

func TestOpenSQLiteTwiceIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	res := mustInbound(t, s, newInbound("support@example.com", "a@example.com", 1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Re-running migration 1 would fail (its tables exist), so a clean
	// reopen shows it was not re-run; the data and the version rows show the same.
	for i := 0; i < 2; i++ {
		s = openTest(t, dir)
		if n := count(t, s, "schema_migrations"); n != len(migrations) {
			t.Fatalf("reopen %d: schema_migrations has %d rows, want %d", i, n, len(migrations))
		}
		raw, err := s.MessageRaw(t.Context(), res.Message)
		if err != nil {
			t.Fatalf("reopen %d: MessageRaw: %v", i, err)
		}
		if !bytes.Equal(raw, rawMessage("a@example.com")) {
			t.Fatalf("reopen %d: message bytes changed", i)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenSQLiteRefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	newer := len(migrations) + 1
	if _, err := s.write.Exec(`INSERT INTO schema_migrations (version) VALUES (?)`, newer); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(t.Context(), dir)
	if err == nil {
		s2.Close()
		t.Fatal("OpenSQLite accepted a database with a newer schema")
	}
	msg := err.Error()
	for _, want := range []string{strconv.Itoa(newer), strconv.Itoa(len(migrations)), "newer"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	// The refusal changed nothing.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var max int
	if err := db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&max); err != nil {
		t.Fatal(err)
	}
	if max != newer {
		t.Fatalf("schema version is now %d, want %d", max, newer)
	}
}

func TestOpenSQLiteRefusesUnusableDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), filepath.Join(file, "data"))
	if err == nil {
		s.Close()
		t.Fatal("OpenSQLite succeeded under a regular file")
	}
}

func TestWriteConnectionIsWALAndSynchronousFull(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx := t.Context()
	// The write pool has exactly one connection, so these are its settings.
	var mode string
	if err := s.write.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	var sync int
	if err := s.write.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if sync != 2 { // 2 = FULL
		t.Errorf("synchronous = %d on the write connection, want 2 (FULL)", sync)
	}
	var fk int
	if err := s.write.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if fk != 1 {
		t.Errorf("foreign_keys = %d on the write connection, want 1", fk)
	}
	if got := s.write.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("write pool allows %d connections, want 1", got)
	}
	// The read pool is in WAL too (it is a property of the file) and cannot write.
	if err := s.read.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("read connection journal_mode = %q, want wal", mode)
	}
	if _, err := s.read.ExecContext(ctx, `INSERT INTO sequences (name, value) VALUES ('x', 1)`); err == nil {
		t.Error("the read pool accepted a write")
	}
}

// TestRestartKeepsEverything closes and reopens the store: messages,
// conversations, UIDs, UIDVALIDITY, \Seen and the queue survive, and the
// sequences go on where they were.
func TestRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s := openTest(t, dir)
	const inbox = "support@example.com"
	view := store.MailboxView{Agent: "alice@support.example.com", Folder: store.FolderInbox, Inboxes: []string{inbox}}

	first := mustInbound(t, s, newInbound(inbox, "one@example.com", 1))
	second := mustInbound(t, s, store.Inbound{Inbox: inbox, Conversation: first.Conversation, Sender: "customer@example.com",
		MessageIDHeader: "two@example.com", SeenMessageIDs: []string{"one@example.com", "ref@example.com"},
		Raw: rawMessage("two"), Received: at(2)})
	msg := mustReserve(t, s)
	out := reply(msg, first.Conversation, view.Agent, "customer@example.com")
	out.NewParticipants = []string{"cc@example.com"}
	mustOutbound(t, s, out)
	if err := s.SetSeen(ctx, view.Agent, []int64{first.Message}, true); err != nil {
		t.Fatal(err)
	}
	validity := mustUIDValidity(t, s, view)
	entries, next := mustEntries(t, s, view)
	conv, err := s.Conversation(ctx, first.Conversation)
	if err != nil {
		t.Fatal(err)
	}
	pending := mustPending(t, s, 10)
	if len(entries) != 3 || len(pending) != 1 {
		t.Fatalf("before restart: %d entries, %d pending; want 3, 1", len(entries), len(pending))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir)
	if got := mustUIDValidity(t, s, view); got != validity {
		t.Errorf("UIDVALIDITY after restart = %d, want %d", got, validity)
	}
	gotEntries, gotNext := mustEntries(t, s, view)
	if !reflect.DeepEqual(gotEntries, entries) || gotNext != next {
		t.Errorf("entries after restart:\n%+v next %d\nwant\n%+v next %d", gotEntries, gotNext, entries, next)
	}
	gotConv, err := s.Conversation(ctx, first.Conversation)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotConv, conv) {
		t.Errorf("conversation after restart = %+v, want %+v", gotConv, conv)
	}
	if got := mustPending(t, s, 10); !reflect.DeepEqual(got, pending) {
		t.Errorf("queue after restart = %+v, want %+v", got, pending)
	}
	for id, want := range map[int64][]byte{first.Message: rawMessage("one@example.com"), second.Message: rawMessage("two"), msg: out.Raw} {
		raw, err := s.MessageRaw(ctx, id)
		if err != nil {
			t.Fatalf("MessageRaw(%d) after restart: %v", id, err)
		}
		if !bytes.Equal(raw, want) {
			t.Errorf("MessageRaw(%d) after restart = %q, want %q", id, raw, want)
		}
	}
	for _, mid := range []string{"one@example.com", "two@example.com", "ref@example.com", out.MessageIDHeader} {
		c, found, err := s.ConversationByMessageID(ctx, []string{mid})
		if err != nil || !found || c != first.Conversation {
			t.Errorf("ConversationByMessageID(%q) after restart = %d, %v, %v", mid, c, found, err)
		}
	}
	dup := mustInbound(t, s, store.Inbound{Inbox: inbox, Conversation: first.Conversation, Sender: "customer@example.com",
		MessageIDHeader: "two@example.com", Raw: []byte("again"), Received: at(3)})
	if !dup.Duplicate || dup.Message != second.Message {
		t.Errorf("re-delivery after restart = %+v, want a duplicate of %d", dup, second.Message)
	}

	// New numbers go on from where they were: no UID, message or
	// conversation number is reused.
	third := mustInbound(t, s, newInbound(inbox, "three@example.com", 4))
	if third.Message <= msg || third.Conversation <= first.Conversation {
		t.Errorf("after restart: message %d conversation %d, want above %d and %d", third.Message, third.Conversation, msg, first.Conversation)
	}
	after, afterNext := mustEntries(t, s, view)
	if len(after) != 4 {
		t.Fatalf("after restart: %d entries, want 4", len(after))
	}
	uids(t, after)
	if last := after[3]; last.Message != third.Message || last.UID != next {
		t.Errorf("new entry after restart = %+v, want message %d at UID %d (the old UIDNEXT)", last, third.Message, next)
	}
	if afterNext != next+1 {
		t.Errorf("UIDNEXT = %d, want %d", afterNext, next+1)
	}
}

// A data directory whose name has characters that mean something in a URI
// still holds the database, in WAL mode.
func TestOpenSQLiteOddDirectoryNames(t *testing.T) {
	for _, name := range []string{"with space", "percent%41", "hash#x", "question?x", "amp&_journal_mode=DELETE", "colon:x"} {
		parent := t.TempDir()
		dir := filepath.Join(parent, name)
		s, err := Open(t.Context(), dir)
		if err != nil {
			t.Errorf("%q: %v", name, err)
			continue
		}
		var mode string
		if err := s.write.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("%q: journal_mode = %q, %v; want wal", name, mode, err)
		}
		var sync int
		if err := s.write.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
			t.Errorf("%q: synchronous = %d, %v; want 2", name, sync, err)
		}
		s.Close()
		if _, err := os.Stat(filepath.Join(dir, DatabaseFile)); err != nil {
			t.Errorf("%q: %v", name, err)
		}
		if ents, _ := os.ReadDir(parent); len(ents) != 1 {
			t.Errorf("%q: the parent directory holds %d entries, want only the data directory", name, len(ents))
		}
	}
}

// TestRestartKeepsTurnsLimitsAndValidity: what the conformance suite
// checks within one run of the engine holds across a restart: the
// round-robin turn goes on where it was, the acknowledgements counted
// against the daily limit and recorded for their conversations stay, and
// UIDVALIDITY stays as it was last set, a change of inboxes included.
func TestRestartKeepsTurnsLimitsAndValidity(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s := openTest(t, dir)
	rr := &store.RoundRobin{Agents: []string{"ann@support.example.com", "ben@support.example.com", "cy@support.example.com"}}
	turn := func(s *Store, id string) string {
		t.Helper()
		in := newInbound(inboxA, id, 1)
		in.AssignInTurn = rr
		return mustInbound(t, s, in).Assignee
	}
	if a, b := turn(s, "t1@example.com"), turn(s, "t2@example.com"); a != rr.Agents[0] || b != rr.Agents[1] {
		t.Fatalf("turns %q, %q", a, b)
	}
	acked := newConversation(t, s, "acked@customer.example")
	if got, err := s.QueueAutoAck(ctx, newAck(t, s, acked, "support@x.test", "gina@customer.example", at(2), 1)); err != nil || got != store.AutoAckQueued {
		t.Fatalf("QueueAutoAck = %v, %v", got, err)
	}
	viewA := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}}
	viewAB := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA, "billing@example.com"}}
	v1 := mustUIDValidity(t, s, viewA)
	v2 := mustUIDValidity(t, s, viewAB)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir)
	if c := turn(s, "t3@example.com"); c != rr.Agents[2] {
		t.Errorf("after a restart the turn is %q, want %q", c, rr.Agents[2])
	}
	if n, err := s.AutoAcksSent(ctx, "support@x.test", "gina@customer.example", at(3)); err != nil || n != 1 {
		t.Errorf("AutoAcksSent after a restart = %d, %v; want 1", n, err)
	}
	other := newConversation(t, s, "other@customer.example")
	if got, err := s.QueueAutoAck(ctx, newAck(t, s, other, "support@x.test", "gina@customer.example", at(3), 1)); err != nil || got != store.AutoAckLimitReached {
		t.Errorf("QueueAutoAck over the limit after a restart = %v, %v", got, err)
	}
	if _, found, err := s.AutoAckOf(ctx, acked); !found || err != nil {
		t.Errorf("AutoAckOf after a restart: %v, %v", found, err)
	}
	if v := mustUIDValidity(t, s, viewAB); v != v2 {
		t.Errorf("UIDVALIDITY after a restart = %d, want %d", v, v2)
	}
	if v := mustUIDValidity(t, s, viewA); v <= v2 || v <= v1 {
		t.Errorf("UIDVALIDITY back on the first inboxes after a restart = %d, want above %d", v, v2)
	}
}
