package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/supportgate/supportgate/store"
)

// statementLog records the statements a store sends, batches' included.
type statementLog struct {
	mu   sync.Mutex
	sqls []string
	// trips counts round trips: a statement alone or a pipeline.
	trips int
}

func (l *statementLog) add(sql string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sqls = append(l.sqls, strings.Join(strings.Fields(sql), " "))
}

func (l *statementLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	l.add(d.SQL)
	l.mu.Lock()
	l.trips++
	l.mu.Unlock()
	return ctx
}
func (*statementLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (l *statementLog) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	l.mu.Lock()
	l.trips++
	l.mu.Unlock()
	return ctx
}
func (l *statementLog) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	l.add(d.SQL)
}
func (*statementLog) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// taken returns the statements and round trips recorded since the last
// reset.
func (l *statementLog) taken() ([]string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sqls, l.trips
}

// openTraced opens a store whose statements are recorded.
func openTraced(t *testing.T) (*Store, *statementLog) {
	t.Helper()
	log := &statementLog{}
	s, err := openWith(t.Context(), pg.DSN(t), func(c *pgxpool.Config) { c.ConnConfig.Tracer = log })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, log
}

// ownRowsFirst fails t for each statement among sqls, from the first that
// writes a shared counter row on, that writes one of the tables own.
func ownRowsFirst(t *testing.T, sqls []string, own ...string) {
	t.Helper()
	first := slices.IndexFunc(sqls, func(q string) bool { return strings.Contains(q, "UPDATE counters") })
	for _, q := range sqls[max(first, 0):] {
		for _, table := range own {
			if strings.Contains(q, table) {
				t.Errorf("after the first shared counter, the batch wrote its own rows: %s", q)
			}
		}
	}
}

func (l *statementLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sqls, l.trips = nil, 0
}

// tracedUpdate runs UpdateConversations(us) with the statement log emptied
// before it, and returns how many entries view had before, and the
// statements and round trips of the update.
func tracedUpdate(t *testing.T, s *Store, log *statementLog, view store.MailboxView, us []store.ConversationUpdate) (before int, sqls []string, trips int) {
	t.Helper()
	entries, _ := mustEntries(t, s, view)
	log.reset()
	if err := s.UpdateConversations(t.Context(), us); err != nil {
		t.Fatal(err)
	}
	sqls, trips = log.taken()
	return len(entries), sqls, trips
}

// TestBatchTakesSharedCountersLast: a change of several conversations
// (keywords and an event each, as an IMAP STORE over a range makes) writes
// every conversation's rows before it takes a counter row that all writers
// share (batchend.go), and takes each of those once: while it holds them,
// every other write on every node waits.
func TestBatchTakesSharedCountersLast(t *testing.T) {
	s, log := openTraced(t)
	var us []store.ConversationUpdate
	for c := range 4 {
		res := mustInbound(t, s, newInbound(inboxA, fmt.Sprintf("last%d@example.com", c), c))
		us = append(us, store.ConversationUpdate{Conversation: res.Conversation, AddTags: []string{"urgent"},
			Events: []store.Event{{Type: "tags-changed", Text: "alice added urgent", At: time.Now()}}})
	}
	// One of them also moves, as a MOVE to Closed does.
	closed := store.StatusClosed
	us[2].Status = &closed
	view := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}}
	before, sqls, _ := tracedUpdate(t, s, log, view, us)
	first, counters := -1, 0
	for i, q := range sqls {
		if strings.Contains(q, "UPDATE counters") {
			counters++
			if first < 0 {
				first = i
			}
		}
	}
	if first < 0 {
		t.Fatal("the batch took no counter")
	}
	ownRowsFirst(t, sqls, "conversation_keywords", "INSERT INTO messages", "INSERT INTO events", "DELETE FROM folder_entries")
	// Each once: the rewrite log's sequence, modseq for the keywords,
	// modseq for the entries, then a UID per entry (the events of the three
	// open conversations in INBOX and Unassigned, the closed one's message
	// and event in Closed); a pruning of the rewrite log may add one.
	if want := 3 + 3*2 + 2; counters != want && counters != want+1 {
		t.Errorf("the batch wrote a counter row %d times, want %d:\n%s", counters, want, strings.Join(sqls[first:], "\n"))
	}

	// What the batch did is what it did before: the events are in INBOX,
	// the closed conversation's messages left it for Closed, once each.
	after, _ := mustEntries(t, s, view)
	if want := before - 1 + 3; len(after) != want {
		t.Errorf("INBOX has %d entries after the batch, want %d", len(after), want)
	}
	closedView := store.MailboxView{Agent: agent, Folder: store.FolderClosed, Inboxes: []string{inboxA}}
	if got, _ := mustEntries(t, s, closedView); len(got) != 2 {
		t.Errorf("Closed has %d entries, want 2 (the message and its event)", len(got))
	}
	for _, e := range after {
		if e.Conversation == us[2].Conversation {
			t.Errorf("the closed conversation's message %d is still in INBOX", e.Message)
		}
	}
}

// TestReplyRoundTrips: recording a reply (its message, index rows, Sent
// copy, folder entries, submission and queue rows) is a bounded number of
// round trips. Every bench reply of a conversation waits for the one before
// it under the conversation's lock, so each round trip is paid in turn:
// they were 29 (one a statement), and the writes that need no answer now
// go in pipelines.
func TestReplyRoundTrips(t *testing.T) {
	s, log := openTraced(t)
	first := mustInbound(t, s, newInbound(inboxA, "first@example.com", 0))
	for i := range 3 { // the first reply also creates the agent's mailboxes
		msg := mustReserve(t, s)
		log.reset()
		out := reply(msg, first.Conversation, agent, "customer@example.com")
		out.ClientMessageID = fmt.Sprintf("c%d@agent.example", i)
		out.Hold = &store.Hold{After: first.Message}
		mustOutbound(t, s, out)
	}
	sqls, trips := log.taken()
	const most = 17
	if trips > most {
		t.Errorf("a reply took %d round trips, want at most %d:\n%s", trips, most, strings.Join(sqls, "\n"))
	}
	t.Logf("%d round trips", trips)
}

// TestKeywordBatch: a STORE of a keyword over a range (keywordbatch.go)
// changes every conversation in a number of round trips that does not grow
// with them, takes the shared counters last, and leaves what the general
// path leaves: the keywords, an event and its message each, entries for the
// events.
func TestKeywordBatch(t *testing.T) {
	ctx := t.Context()
	s, log := openTraced(t)
	var us []store.ConversationUpdate
	for c := range 10 {
		res := mustInbound(t, s, newInbound(inboxA, fmt.Sprintf("kw%d@example.com", c), c))
		us = append(us, store.ConversationUpdate{Conversation: res.Conversation, AddTags: []string{`\Flagged`, "urgent"},
			Events: []store.Event{{Type: "tags-changed", Text: "alice added urgent", At: time.Now(), Quiet: c%3 == 0}}})
	}
	us[4].RemoveTags = []string{"URGENT"} // added, then removed, as a SetKeywords may
	view := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}}
	before, sqls, trips := tracedUpdate(t, s, log, view, us)
	if trips > 12 {
		t.Errorf("10 conversations took %d round trips, want at most 12:\n%s", trips, strings.Join(sqls, "\n"))
	}
	ownRowsFirst(t, sqls, "conversation_keywords", "INSERT INTO messages", "INSERT INTO events")
	for i, u := range us {
		c, err := s.Conversation(ctx, u.Conversation)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"urgent"} // Tags: \Flagged is not a tag
		if i == 4 {
			want = nil
		}
		if !slices.Equal(c.Tags, want) {
			t.Errorf("conversation %d has keywords %v, want %v", i, c.Tags, want)
		}
		evs, err := s.Events(ctx, u.Conversation)
		if err != nil || len(evs) != 1 || evs[0].Type != "tags-changed" || evs[0].Quiet != (i%3 == 0) {
			t.Errorf("conversation %d has events %+v (%v)", i, evs, err)
		}
	}
	after, _ := mustEntries(t, s, view)
	if want := before + 6; len(after) != want { // the 6 events that are messages
		t.Errorf("INBOX has %d entries, want %d", len(after), want)
	}
}
