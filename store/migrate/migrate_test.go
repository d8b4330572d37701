package migrate

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/supportgate/supportgate/internal/pgtest"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/postgres"
	"github.com/supportgate/supportgate/store/searchtext"
	"github.com/supportgate/supportgate/store/sqlite"
)

// pg is the PostgreSQL server of this package's tests (internal/pgtest).
var pg = pgtest.New()

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

const (
	inboxA = "support@example.com"
	inboxB = "billing@example.com"
	alice  = "alice@support.example.com"
	bob    = "bob@support.example.com"
	cfo    = "cfo@example.com"
)

// TestEveryTableAccountedFor fails when a table of either engine is neither
// copied nor declared not copied, or when a copied table's columns differ
// between the engines: a new migration must say how it is migrated.
func TestEveryTableAccountedFor(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, sqlite.DatabaseFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lite := strings1(t, db, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)

	dsn := pg.DSN(t)
	p, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1`)
	pgTables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}

	for engine, tables := range map[string][]string{"SQLite": lite, "PostgreSQL": pgTables} {
		for _, table := range tables {
			if _, ok := NotCopied[table]; !ok && !slices.Contains(Copied, table) {
				t.Errorf("%s's table %s is neither in migrate.Copied nor in migrate.NotCopied: say how migrate-store moves it", engine, table)
			}
		}
	}
	for _, table := range Copied {
		if !slices.Contains(lite, table) || !slices.Contains(pgTables, table) {
			t.Errorf("copied table %s: in SQLite %v, in PostgreSQL %v", table, slices.Contains(lite, table), slices.Contains(pgTables, table))
			continue
		}
		lc, err := sqliteColumns(ctx, db, table)
		if err != nil {
			t.Fatal(err)
		}
		pc, err := postgresColumns(ctx, conn, table)
		if err != nil {
			t.Fatal(err)
		}
		var pcs []string
		for c := range pc {
			if _, ok := PostgresOnlyColumns[table+"."+c]; !ok {
				pcs = append(pcs, c)
			}
		}
		sort.Strings(lc)
		sort.Strings(pcs)
		if !slices.Equal(lc, pcs) {
			t.Errorf("table %s: SQLite's columns %v, PostgreSQL's %v", table, lc, pcs)
		}
	}
}

func strings1(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func at(n int) time.Time { return time.UnixMilli(1_700_000_000_000 + int64(n)*1000) }

func raw(tag string) []byte {
	return []byte("From: customer@example.com\r\nSubject: " + tag + "\r\n\r\nnul:\x00:end\r\n8bit:\xff\xfe\r\n" + tag + "\r\n")
}

func inbound(inbox, id string, n int) store.Inbound {
	return store.Inbound{Inbox: inbox, Owner: "customer@example.com", Subject: "Help " + id, NormSubject: "help " + id,
		Sender: "customer@example.com", MessageIDHeader: id, Raw: raw(id), Received: at(n)}
}

func meta(raw []byte) []byte { return []byte(fmt.Sprint("meta ", len(raw))) }

// fill writes a store through the contract with something in every table.
func fill(t *testing.T, s store.Store) {
	ctx := t.Context()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	add := func(in store.Inbound) store.InboundResult {
		t.Helper()
		res, err := s.AddInbound(ctx, in)
		must("AddInbound "+in.MessageIDHeader, err)
		return res
	}
	reserve := func() int64 {
		n, err := s.NextMessageNumber(ctx)
		must("NextMessageNumber", err)
		return n
	}
	out := func(msg, conv int64, kind store.Kind, rcpts ...string) store.Outbound {
		return store.Outbound{Message: msg, Conversation: conv, Kind: kind, Agent: alice,
			MessageIDHeader: fmt.Sprintf("m%d@support.example.com", msg), Raw: raw(fmt.Sprint("out ", msg)),
			Received: at(100 + int(msg)), MailFrom: fmt.Sprintf("bounces+%d@support.example.com", msg), Recipients: rcpts}
	}
	s.SetMetaFunc(meta)

	a := add(inbound(inboxA, "a1@example.com", 1))
	b := add(inbound(inboxB, "b1@example.com", 2))
	rr := inbound(inboxA, "rr@example.com", 3)
	rr.AssignInTurn = &store.RoundRobin{Agents: []string{alice, bob}}
	r := add(rr)
	spam := add(inbound(inboxB, "spam@example.com", 4))
	closed := add(inbound(inboxA, "closed@example.com", 5))
	follow := inbound(inboxA, "a2@example.com", 6)
	follow.Conversation, follow.SeenMessageIDs = a.Conversation, []string{"unknown-ref@example.com"}
	follow.NewParticipants = []string{"friend@example.com"}
	add(follow)

	rep := out(reserve(), a.Conversation, store.KindReply, "customer@example.com", "friend@example.com")
	rep.ClientMessageID, rep.ServedReplyTo, rep.ServedCut = "client-1@example.com", "reply@support.example.com", 3
	must("reply", s.AddOutbound(ctx, rep))
	must("note", s.AddOutbound(ctx, out(reserve(), b.Conversation, store.KindNote)))
	must("reply b", s.AddOutbound(ctx, out(reserve(), b.Conversation, store.KindReply, "customer@example.com")))
	// A side conversation with a vendor, with a hidden recipient (DESIGN.md §14).
	side := out(reserve(), b.Conversation, store.KindSide, "vendor@vendor.example", "dock@warehouse.example")
	side.Side = &store.SideWrite{Number: 1, Recipients: []string{"vendor@vendor.example"}, Hidden: []string{"dock@warehouse.example"}}
	side.HiddenBCC = []string{"dock@warehouse.example"}
	must("side", s.AddOutbound(ctx, side))
	// A new conversation started by an agent.
	conv, err := s.NextConversationNumber(ctx)
	must("NextConversationNumber", err)
	started := out(reserve(), conv, store.KindReply, "new@example.com")
	started.NewConversation = &store.NewConversation{Inbox: inboxB, Owner: "new@example.com", Subject: "Hello"}
	must("new conversation", s.AddOutbound(ctx, started))

	must("spam", s.UpdateConversation(ctx, store.StatusUpdate(spam.Conversation, store.StatusSpam)))
	must("closed", s.UpdateConversation(ctx, store.StatusUpdate(closed.Conversation, store.StatusClosed)))
	must("assign", s.UpdateConversation(ctx, store.AssigneeUpdate(b.Conversation, alice)))
	must("tags", s.UpdateConversation(ctx, store.KeywordsUpdate(a.Conversation, []string{"urgent", store.KeywordFlagged}, nil)))
	ro := true
	must("read-only", s.UpdateConversation(ctx, store.ConversationUpdate{Conversation: closed.Conversation, ReadOnly: &ro}))
	must("followers", s.UpdateConversation(ctx, store.ConversationUpdate{Conversation: a.Conversation, AddFollowers: []string{cfo}}))
	_, err = s.AddEvent(ctx, store.Event{Conversation: b.Conversation, Type: "test", Text: "an event", Detail: "detail", At: at(50)})
	must("AddEvent", err)
	// News for the follower: a notice pending.
	add(store.Inbound{Inbox: inboxA, Conversation: a.Conversation, Sender: "customer@example.com",
		MessageIDHeader: "a3@example.com", Raw: raw("a3"), Received: at(7)})

	must("seen", s.SetSeen(ctx, alice, []int64{a.Message, b.Message}, true))
	must("keywords", s.SetAgentKeywords(ctx, alice, []int64{a.Message}, []string{"$Important"}, nil))
	view := store.MailboxView{Agent: alice, Folder: store.FolderInbox, Inboxes: []string{inboxA, inboxB}}
	entries, _, err := s.Entries(ctx, view)
	must("Entries", err)
	must("marks", s.SetMarks(ctx, alice, store.FolderInbox, []uint32{entries[0].UID}, store.MarkDeleted, true))
	must("CreateMailbox", s.CreateMailbox(ctx, alice, "Archive"))
	_, _, err = s.AddPrivate(ctx, alice, "Archive", []store.PrivateMessage{
		{Raw: raw("private"), Flags: []string{`\Seen`, "$Label1"}, Received: at(20)},
		{Message: b.Message, Flags: []string{`\Flagged`}, Received: at(21)},
	})
	must("AddPrivate", err)
	must("SetSubscribed", s.SetSubscribed(ctx, alice, "Archive", true))

	ack := out(reserve(), r.Conversation, store.KindReply, "customer@example.com")
	ack.Agent = ""
	_, err = s.QueueAutoAck(ctx, store.AutoAck{Inbox: inboxA, Recipient: "customer@example.com", Limit: 5, Outbound: ack})
	must("QueueAutoAck", err)

	// One delivery attempted and failed: its state, attempts and next
	// attempt must survive.
	due, err := s.DueRecipients(ctx, at(10_000), 10)
	must("DueRecipients", err)
	if len(due) == 0 {
		t.Fatal("nothing due")
	}
	k := store.RecipientKey{QueueID: due[0].QueueID, Recipient: due[0].Recipient}
	_, err = s.BeginAttempt(ctx, k, at(10_000), at(10_600))
	must("BeginAttempt", err)
	_, err = s.FinishAttempt(ctx, k, store.AttemptResult{State: store.RecipientQueued, NextAttempt: at(11_000), LastError: "451 later", DelayNotified: true, At: at(10_001)})
	must("FinishAttempt", err)
	// Several views' UIDVALIDITYs recorded.
	for _, f := range []store.Folder{store.FolderInbox, store.FolderMine, store.FolderClosed, store.FolderSpam, store.FolderUnassigned} {
		_, err := s.UIDValidity(ctx, store.MailboxView{Agent: alice, Folder: f, Inboxes: []string{inboxA, inboxB}})
		must("UIDValidity", err)
	}
	_, err = s.UIDValidity(ctx, store.MailboxView{Agent: bob, Folder: store.FolderInbox, Inboxes: []string{inboxA}, Name: "Inboxes/" + inboxA})
	must("UIDValidity", err)
}

// snapshot is what the contract shows of a store: everything a client or
// the queue sees.
func snapshot(t *testing.T, s store.Store) map[string]any {
	t.Helper()
	ctx := t.Context()
	out := map[string]any{}
	put := func(key string, v any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		out[key] = v
	}
	var convs []store.Conversation
	for _, st := range []store.Status{store.StatusOpen, store.StatusClosed, store.StatusSpam} {
		list, _, err := s.ListConversations(ctx, st, 0, 1000)
		put("list "+string(st), list, err)
		convs = append(convs, list...)
	}
	if len(convs) < 6 {
		t.Fatalf("only %d conversations", len(convs))
	}
	var msgIDs []int64
	for _, c := range convs {
		conv, err := s.Conversation(ctx, c.ID)
		put(fmt.Sprint("conversation ", c.ID), conv, err)
		msgs, err := s.ConversationMessages(ctx, c.ID)
		put(fmt.Sprint("messages ", c.ID), msgs, err)
		for _, m := range msgs {
			msgIDs = append(msgIDs, m.ID)
			b, err := s.MessageRaw(ctx, m.ID)
			put(fmt.Sprint("raw ", m.ID), b, err)
			if m.MessageIDHeader != "" {
				m2, err := s.MessageByHeaderID(ctx, m.MessageIDHeader)
				put("by header "+m.MessageIDHeader, m2.ID, err)
			}
		}
		evs, err := s.Events(ctx, c.ID)
		put(fmt.Sprint("events ", c.ID), evs, err)
		sides, err := s.Sides(ctx, c.ID)
		if len(sides) == 0 {
			sides = nil // one engine's none is nil, the other's empty
		}
		put(fmt.Sprint("sides ", c.ID), sides, err)
		ack, found, err := s.AutoAckOf(ctx, c.ID)
		put(fmt.Sprint("autoack ", c.ID), [2]any{ack, found}, err)
	}
	meta, err := s.MessagesMeta(ctx, msgIDs)
	put("meta", meta, err)
	conv, found, err := s.ConversationByMessageID(ctx, []string{"unknown-ref@example.com"})
	put("by reference", [2]any{conv, found}, err)
	for _, v := range views() {
		entries, next, err := s.Entries(ctx, v)
		put(fmt.Sprintf("entries %+v", v), [2]any{entries, next}, err)
		uv, err := s.UIDValidity(ctx, v)
		put(fmt.Sprintf("uidvalidity %+v", v), uv, err)
	}
	boxes, err := s.PrivateMailboxes(ctx, alice)
	put("private mailboxes", boxes, err)
	for _, b := range boxes {
		box, entries, err := s.PrivateEntries(ctx, alice, b.Name)
		put("private "+b.Name, [2]any{box, entries}, err)
		for _, e := range entries {
			r, err := s.PrivateRaw(ctx, alice, b.Name, e.UID)
			if errors.Is(err, store.ErrNotFound) && e.Message != 0 {
				continue // a copy of a shared message: its bytes are the message's
			}
			put(fmt.Sprint("private raw ", b.Name, e.UID), r, err)
		}
	}
	subs, err := s.Subscriptions(ctx, alice)
	put("subscriptions", subs, err)
	q, err := s.QueuePage(ctx, store.QueuePageQuery{Limit: 1000})
	put("queue", q, err)
	counts, err := s.QueueCounts(ctx)
	put("queue counts", counts, err)
	next, found, err := s.NextAttempt(ctx)
	put("next attempt", [2]any{next, found}, err)
	notices, err := s.PendingNotices(ctx)
	put("notices", notices, err)
	sent, err := s.AutoAcksSent(ctx, inboxA, "customer@example.com", at(200))
	put("autoacks sent", sent, err)
	return out
}

// views are the mailboxes compared.
func views() []store.MailboxView {
	both := []string{inboxA, inboxB}
	return []store.MailboxView{
		{Agent: alice, Folder: store.FolderInbox, Inboxes: both},
		{Agent: alice, Folder: store.FolderMine, Inboxes: both},
		{Agent: alice, Folder: store.FolderUnassigned, Inboxes: both},
		{Agent: alice, Folder: store.FolderClosed, Inboxes: both},
		{Agent: alice, Folder: store.FolderSpam, Inboxes: both},
		{Agent: bob, Folder: store.FolderInbox, Inboxes: []string{inboxA}, Name: "Inboxes/" + inboxA},
	}
}

// afterwards writes the same things into a store after the migration: new
// numbers must continue alike.
func afterwards(t *testing.T, s store.Store) {
	ctx := t.Context()
	rr := inbound(inboxA, "after-rr@example.com", 300)
	rr.AssignInTurn = &store.RoundRobin{Agents: []string{alice, bob}}
	res, err := s.AddInbound(ctx, rr)
	if err != nil {
		t.Fatal(err)
	}
	if res.Assignee != bob { // alice had the last turn before
		t.Errorf("round-robin after the migration: %q, want %q", res.Assignee, bob)
	}
	if _, err := s.AddInbound(ctx, inbound(inboxB, "a1@example.com", 301)); err != nil { // a duplicate
		t.Fatal(err)
	}
	if err := s.CreateMailbox(ctx, alice, "Later"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddPrivate(ctx, alice, "Archive", []store.PrivateMessage{{Raw: raw("p3"), Received: at(302)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSeen(ctx, alice, []int64{res.Message}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddEvent(ctx, store.Event{Conversation: res.Conversation, Type: "test", Text: "later", At: at(303)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.QueueAutoAck(ctx, store.AutoAck{Inbox: inboxA, Recipient: "customer@example.com", Limit: 5,
		Outbound: store.Outbound{Message: reserveNumber(t, s), Conversation: res.Conversation, Kind: store.KindReply,
			MessageIDHeader: "ack2@support.example.com", Raw: raw("ack2"), Received: at(304), MailFrom: "b@support.example.com",
			Recipients: []string{"customer@example.com"}}}); err != nil {
		t.Fatal(err)
	}
	n, err := s.NextConversationNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddOutbound(ctx, store.Outbound{Message: reserveNumber(t, s), Conversation: n, Kind: store.KindReply,
		NewConversation: &store.NewConversation{Inbox: inboxA, Owner: "x@example.com", Subject: "x"}, Agent: alice,
		MessageIDHeader: "after@support.example.com", Raw: raw("after"), Received: at(305), MailFrom: "b@support.example.com",
		Recipients: []string{"x@example.com"}}); err != nil {
		t.Fatal(err)
	}
}

func reserveNumber(t *testing.T, s store.Store) int64 {
	t.Helper()
	n, err := s.NextMessageNumber(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSQLiteToPostgres: a store made by this release through the contract
// shows the same after the migration, on PostgreSQL, and continues alike.
func TestSQLiteToPostgres(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	lite, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	fill(t, lite)
	want := snapshot(t, lite)

	dsn := pg.DSN(t)
	key := []byte("0123456789abcdef0123456789abcdef")
	rep, err := SQLiteToPostgres(ctx, dir, dsn, map[string][]byte{"token.key": key})
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int64{}
	for _, c := range rep.Tables {
		rows[c.Table] = c.Rows
	}
	for _, table := range Copied {
		if rows[table] == 0 && table != "rewrite_log" {
			t.Errorf("no rows of %s copied: the test's store should have some", table)
		}
	}

	pgs, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pgs.Close()
	got := snapshot(t, pgs)
	compare(t, "after the migration", got, want)
	// SEARCH finds the copied messages (indexed by PostgreSQL's backfill,
	// or read unindexed until then): every message whose body holds the
	// string is a candidate.
	k := searchtext.Key{Field: searchtext.Body, Value: "out 1"}
	pc, found, err := pgs.SearchCandidates(ctx, []searchtext.Key{k})
	if err != nil || !found {
		t.Fatalf("SearchCandidates(%+v) on PostgreSQL: %v %v %v", k, pc, found, err)
	}
	matches := 0
	for name, v := range want {
		var id int64
		if b, ok := v.([]byte); ok && bytes.Contains(b, []byte(k.Value)) {
			if _, err := fmt.Sscanf(name, "raw %d", &id); err == nil {
				matches++
				if !slices.Contains(pc, id) {
					t.Errorf("SearchCandidates(%+v) on PostgreSQL after the migration: %v lacks message %d", k, pc, id)
				}
			}
		}
	}
	if matches == 0 {
		t.Fatalf("no message holds %q: the test's store should have some", k.Value)
	}
	if secret, err := pgs.SharedSecret(ctx, "token.key", []byte("another key, not taken")); err != nil || string(secret) != string(key) {
		t.Errorf("the token key: %q, %v", secret, err)
	}

	pgs.SetMetaFunc(meta)
	afterwards(t, lite)
	afterwards(t, pgs)
	compare(t, "after the same writes on both", snapshot(t, pgs), snapshot(t, lite))

	// A second run refuses: the target is no longer empty.
	if _, err := SQLiteToPostgres(ctx, dir, dsn, nil); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("a second migration: %v, want ErrNotEmpty", err)
	}
}

func compare(t *testing.T, when string, got, want map[string]any) {
	t.Helper()
	for k, w := range want {
		if g := got[k]; !reflect.DeepEqual(g, w) {
			t.Errorf("%s, %s:\n got %+v\nwant %+v", when, k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %s only on PostgreSQL", when, k)
		}
	}
}

// TestFailedMigrationLeavesNothing: a copy that fails after the tables
// were copied (a sequence this release does not know) writes nothing, so
// it can be run again once the cause is fixed.
func TestFailedMigrationLeavesNothing(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	lite, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lite.AddInbound(ctx, inbound(inboxA, "one@example.com", 1)); err != nil {
		t.Fatal(err)
	}
	lite.Close()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, sqlite.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO sequences (name, value) VALUES ('from-the-future', 7)`); err != nil {
		t.Fatal(err)
	}
	dsn := pg.DSN(t)
	if _, err := SQLiteToPostgres(ctx, dir, dsn, nil); err == nil || !strings.Contains(err.Error(), "from-the-future") {
		t.Fatalf("a migration with an unknown sequence: %v", err)
	}
	if _, err := db.Exec(`DELETE FROM sequences WHERE name = 'from-the-future'`); err != nil {
		t.Fatal(err)
	}
	rep, err := SQLiteToPostgres(ctx, dir, dsn, nil)
	if err != nil {
		t.Fatalf("the migration run again: %v", err)
	}
	if rep.Tables[0].Table != "conversations" || rep.Tables[0].Rows != 1 {
		t.Errorf("copied %+v, want one conversation", rep.Tables[0])
	}
}
