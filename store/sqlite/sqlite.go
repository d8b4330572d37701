// Package sqlite is the Store on one SQLite database (DESIGN.md §12, §13):
// one node, WAL mode, synchronous=FULL, one writer goroutine that commits
// the waiting requests together (group commit, groupcommit.go) and a pool
// of readers beside it.
//
// It owns the SQL schema and its migrations, group commit, and what its
// own tests check (WAL and durability, migrations re-run, kill -9);
// everything engine-neutral is checked by store/storetest
// (conformance_test.go). It imports store and domain; only the daemon's
// wiring (cmd/supportgate), the admin tools and tests import it.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // the SQLite driver, registered as "sqlite3" (the read pool's)
	"github.com/supportgate/supportgate/store"
)

// DatabaseFile is the name of the SQLite database inside the data directory.
const DatabaseFile = "supportgate.db"

// Store is the store.Store on one SQLite database in WAL mode.
//
// Writes go through one connection (SQLite has one writer anyway), with
// synchronous=FULL so that a commit is on disk when it returns; concurrent
// writes share a commit (see inTx). Reads use a separate pool, which WAL lets
// run beside the writer.
type Store struct {
	write *sql.DB
	read  *sql.DB
	hub   *store.Hub
	w     *writer // runs every write transaction (group commit)
	// meta computes the FETCH metadata of a message being stored
	// (sqlite_fetchmeta.go); nil: none, it is computed at the first FETCH.
	meta atomic.Pointer[store.MetaFunc]
	// rates are the per-sender quotas' counts (rates.go).
	rates store.MemoryRates
	// sample counts the SEARCH tokens of the newest messages, read at the
	// first SEARCH (search.go), not at Open: most opens (the CLI, a
	// restart) never search.
	sample struct {
		mu     sync.Mutex
		counts map[string]int // nil until read
	}
	// indexer moves queued SEARCH documents into the index
	// (searchpending.go).
	indexer indexer
	// whole is how a whole folder is read (wholefolder.go): in two halves
	// from splitAbove entries (0: splitReadAbove); beforeUpper, when set,
	// runs before the upper half's transaction begins (tests).
	whole struct {
		splitAbove  int
		beforeUpper func()
	}
}

var _ store.Store = (*Store)(nil)

// readConns is how many read connections the store opens at most.
const readConns = 8

// OpenSQLite opens (creating if needed) the database in dataDir and runs the
// schema migrations.
func Open(ctx context.Context, dataDir string) (*Store, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("store: creating data directory: %w", err)
	}
	path := filepath.Join(dataDir, DatabaseFile)
	dsn := func(extra string) string {
		v := url.Values{}
		v.Set("_journal_mode", "WAL")
		v.Set("_synchronous", "FULL")
		v.Set("_busy_timeout", "10000")
		v.Set("_foreign_keys", "on")
		// Keep prepared statements per connection: preparing the same SQL
		// again for every message was a sixth of the MX's CPU (bench/run
		// profile, issue 8).
		v.Set("_stmt_cache_size", "256")
		// The path is escaped: SQLite decodes %XX in a URI filename and ends
		// it at '?' or '#', so an unescaped data directory containing one of
		// those would silently open another file, without these parameters.
		return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + v.Encode() + extra
	}
	write := sql.OpenDB(newWriteConnector(dsn("&_txlock=immediate"))) // connect.go
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	read, err := sql.Open("sqlite3", dsn("&_query_only=true"))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	// As many kept idle as may be open: database/sql keeps 2 by default,
	// and under parallel reads the others were closed after each query
	// and opened again for the next, each time without its prepared
	// statements and page cache (a fifth of the submission's CPU in the
	// outbound benchmark, issue 18).
	read.SetMaxOpenConns(readConns)
	read.SetMaxIdleConns(readConns)
	hub := store.NewHub()
	s := &Store{write: write, read: read, hub: hub, w: newWriter(write, hub.Publish)}
	s.indexer.wake = make(chan struct{}, 1)
	s.indexer.linger.Store(int64(indexLinger))
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.backfillSearch(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.startIndexer()
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stopIndexer()
	s.w.close()
	return errors.Join(s.read.Close(), s.write.Close())
}

// migrations are applied in order, each once, each in its own transaction.
// Never edit one that has shipped: add a new one.
var migrations = []string{
	// 1: the first schema.
	`CREATE TABLE sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
	CREATE TABLE conversations (
		id INTEGER PRIMARY KEY,
		inbox TEXT NOT NULL,
		owner TEXT NOT NULL,
		subject TEXT NOT NULL,
		status TEXT NOT NULL,
		created INTEGER NOT NULL,
		updated INTEGER NOT NULL
	);
	CREATE TABLE participants (
		conversation_id INTEGER NOT NULL REFERENCES conversations(id),
		address TEXT NOT NULL,
		position INTEGER NOT NULL,
		PRIMARY KEY (conversation_id, address)
	);
	CREATE TABLE messages (
		id INTEGER PRIMARY KEY,
		conversation_id INTEGER NOT NULL REFERENCES conversations(id),
		kind TEXT NOT NULL,
		sender TEXT NOT NULL,
		message_id_header TEXT NOT NULL,
		received INTEGER NOT NULL,
		size INTEGER NOT NULL,
		hidden_bcc TEXT NOT NULL,
		raw BLOB NOT NULL
	);
	CREATE INDEX messages_conversation ON messages(conversation_id);
	CREATE TABLE message_ids (
		message_id_header TEXT PRIMARY KEY,
		conversation_id INTEGER NOT NULL REFERENCES conversations(id),
		message_id INTEGER REFERENCES messages(id)
	);
	CREATE TABLE folder_entries (
		folder TEXT NOT NULL,
		uid INTEGER NOT NULL,
		message_id INTEGER NOT NULL REFERENCES messages(id),
		inbox TEXT NOT NULL,
		PRIMARY KEY (folder, uid)
	);
	CREATE INDEX folder_entries_inbox ON folder_entries(folder, inbox, uid);
	CREATE TABLE mailbox_state (
		agent TEXT NOT NULL,
		folder TEXT NOT NULL,
		uidvalidity INTEGER NOT NULL,
		scope TEXT NOT NULL,
		PRIMARY KEY (agent, folder)
	);
	CREATE TABLE seen (
		agent TEXT NOT NULL,
		message_id INTEGER NOT NULL REFERENCES messages(id),
		PRIMARY KEY (agent, message_id)
	);
	CREATE TABLE outbound_messages (
		id INTEGER PRIMARY KEY,
		message_id INTEGER NOT NULL REFERENCES messages(id),
		mail_from TEXT NOT NULL,
		created INTEGER NOT NULL
	);
	CREATE TABLE outbound_recipients (
		outbound_id INTEGER NOT NULL REFERENCES outbound_messages(id),
		recipient TEXT NOT NULL,
		state TEXT NOT NULL,
		attempts INTEGER NOT NULL,
		next_attempt INTEGER NOT NULL,
		last_error TEXT NOT NULL,
		PRIMARY KEY (outbound_id, recipient)
	);
	CREATE INDEX outbound_recipients_state ON outbound_recipients(state, next_attempt);`,

	// 2: threading (issue 3): the normalized subject for continuity, and
	// what the sender was to the conversation when the message arrived.
	`ALTER TABLE conversations ADD COLUMN norm_subject TEXT NOT NULL DEFAULT '';
	CREATE INDEX conversations_continuity ON conversations(inbox, owner, status, norm_subject, updated);
	ALTER TABLE messages ADD COLUMN sender_role TEXT NOT NULL DEFAULT '';`,

	// 3: the durable outbound queue (issue 6), in sqlite_queue.go.
	queueSchema,
	// 4: the agents' IMAP workspace (issue 5), in sqlite_workspace.go.
	workspaceSchema,
	// 5: participants, followers, events and policies (issue 4), in
	// sqlite_conversation.go.
	conversationSchema,
	// 6: automatic acknowledgements sent, for their daily limit (issue 7),
	// in sqlite_autoack.go.
	autoAckSchema,
	// 7: FETCH metadata (ENVELOPE, BODYSTRUCTURE) of every message (issue
	// 8), in sqlite_fetchmeta.go.
	metaSchema,
	// 8: the conversation each automatic acknowledgement answered, so that
	// a retried copy of the message is not acknowledged twice, in
	// sqlite_autoack.go.
	autoAckConversationsSchema,
	// 9: the conversations each rewrite of folder entries changed, so that
	// readers re-read only theirs, in sqlite_cursor.go.
	rewriteLogSchema,
	// 10: whose turn it is in each round-robin inbox, in sqlite_triage.go.
	roundRobinSchema,
	// 11: what each follower was told of each conversation they follow,
	// in sqlite_notices.go.
	noticesSchema,
	// 12: the agents' IMAP subscriptions (issue 12), in
	// sqlite_subscriptions.go.
	subscriptionsSchema,
	// 13: what clients do by themselves stays the agent's (issue 12), in
	// sqlite_agentstate.go.
	agentStateSchema,
	// 14: CONDSTORE mod-sequences (issue 12), in sqlite_modseq.go.
	modSeqSchema,
	// 15: side conversations (issue 17), in side.go.
	sideSchema,
	// 16: merged conversations (issue 17), in merge.go.
	mergeSchema,
	// 17: the SEARCH index (issue 18), in search.go.
	searchSchema,
	// 18: what a folder read needs of each message, apart from its bytes
	// (issue 18), in mailbox.go.
	messageSummarySchema,
	// 19: messages' SEARCH tokens waiting for the index (issue 18), in
	// searchpending.go.
	searchPendingSchema,
	// 20: what the collision hold reads (issue 18), in collision.go.
	collisionSchema,
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	var have int
	if err := s.write.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("store: the database has schema version %d, newer than this program's %d; run a newer supportgate", have, len(migrations))
	}
	for v := have + 1; v <= len(migrations); v++ {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			for _, stmt := range strings.Split(migrations[v-1], ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil && !addsExistingColumn(stmt, err) {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES (?)`, v)
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migration %d: %w", v, err)
		}
	}
	return nil
}

// inTx runs f in a write transaction and returns once that transaction is
// committed with fsync (a nil return is on disk) or f's changes are undone.
//
// The work is done by the writer goroutine (writer.go), which runs the
// requests of concurrent callers in one transaction, each in its own
// savepoint, and commits them together: one fsync for the batch (group
// commit). A request whose f fails is rolled back to its savepoint only and
// does not affect its neighbours. f runs at most once and must not call inTx.
//
// It publishes nothing: a write that changes what an IMAP session or the
// queue shows runs through commit (feed.go) and says what it changed.
func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	return s.w.do(ctx, func(tx *sql.Tx, _ *changes) error { return f(tx) })
}

// nextval advances a named sequence and returns the new value.
func nextval(ctx context.Context, tx *sql.Tx, name string) (int64, error) {
	if _, err := tx.ExecContext(ctx, `INSERT INTO sequences (name, value) VALUES (?, 1)
		ON CONFLICT (name) DO UPDATE SET value = value + 1`, name); err != nil {
		return 0, err
	}
	var v int64
	err := tx.QueryRowContext(ctx, `SELECT value FROM sequences WHERE name = ?`, name).Scan(&v)
	return v, err
}

func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms) }

// joinList and splitList keep short address lists in one column.
func joinList(l []string) string { return strings.Join(l, "\n") }

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
