// Package postgres is the Store on PostgreSQL, for any number of
// supportgate nodes sharing one database (DESIGN.md §15). Its semantics
// are store/sqlite's; what differs is how they hold with many writers on
// several nodes at once.
//
// Transactions. Every write runs in one READ COMMITTED transaction that
// takes explicit row locks where it reads before it writes, and returns
// only after COMMIT (with PostgreSQL's own durability: fsync and
// synchronous_commit as the operator configured them). A transaction that
// PostgreSQL aborts as a deadlock (40P01) or serialization failure
// (40001) is run again from the start, so the functions given to inTx may
// run more than once and keep no state across runs. The locks, in the
// order a transaction takes them:
//
//   - a conversation's row (FOR NO KEY UPDATE, lockConversation) by every
//     write that changes the conversation: its messages, participants
//     (the cap is counted under it: issue 13), status, assignee, keywords;
//   - a transaction-scoped advisory lock per Message-ID while an inbound
//     message is checked for a duplicate and stored, and per inbox and
//     recipient while an automatic acknowledgement is counted;
//   - the counter rows (counters), last: see "UIDs" below. Every inbound
//     write waits for them, so they are taken as late as possible: an
//     inbound message's folder entries are its transaction's last write,
//     in one pipelined round trip (changes.last, enterFolders), and a
//     change of conversations writes them after all of its own rows
//     (batchTx, batchend.go).
//
// Reads that must see several tables at one instant (a folder's entries
// with its counters) run in a REPEATABLE READ READ ONLY transaction: one
// snapshot.
//
// UIDs (DESIGN.md §13, "UIDs across nodes"): a PostgreSQL sequence is not
// commit-ordered, so the numbers a reader compares with what it saw (a
// folder's UIDs, the rewrites counter of FolderCursor, mod-sequences) come
// from a row per counter that the inserting transaction updates (UPDATE
// counters ... RETURNING). The row stays locked until that transaction
// ends, so the next writer gets the next number only after the previous
// one committed: numbers are committed in order, and a snapshot that sees
// a counter at n sees every entry numbered up to n. Numbers that are only
// identities (messages, conversations, queue entries) come from sequences.
// UIDVALIDITY and everything else is in the database, so every node agrees.
//
// Changes (DESIGN.md §13, "Change fan-out"; feed.go): a write that
// changes what a session or the queue shows sends what it changed
// (store.Change, store.EncodeChanges) by NOTIFY supportgate_changes in its
// transaction, delivered at COMMIT, and publishes it to this node's Hub
// after COMMIT; a LISTEN connection publishes the other nodes' changes to
// the Hub, and everything (an All change) when it had to connect again.
package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/supportgate/supportgate/store"
)

// Store is the Store on one PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
	hub  *store.Hub
	// node names this Store in its notifications, so that its listener
	// skips its own (published already, after commit).
	node string
	// meta computes the FETCH metadata of a message being stored
	// (fetchmeta.go); nil: none.
	meta atomic.Pointer[store.MetaFunc]
	// observe receives each write transaction's duration (ObserveCommits).
	observe atomic.Pointer[func(time.Duration)]
	// retried counts the transactions run again after a deadlock or a
	// serialization failure (tests read it).
	retried atomic.Int64

	stopListen context.CancelFunc
	listening  chan struct{} // closed when the listener ended
	closeOnce  sync.Once
}

var (
	_ store.Store              = (*Store)(nil)
	_ store.IncrementalEntries = (*Store)(nil)
)

// DefaultMaxConns is how many connections a node keeps to the database
// at most unless the DSN says (pool_max_conns): PostgreSQL's default
// max_connections of 100 leaves room for three nodes and the operator.
const DefaultMaxConns = 30

// changesChannel is the NOTIFY channel of store changes.
const changesChannel = "supportgate_changes"

// Open connects to the database named by dsn (a PostgreSQL connection
// string or URL), runs the schema migrations and starts listening to the
// other nodes' changes.
func Open(ctx context.Context, dsn string) (*Store, error) { return openWith(ctx, dsn, nil) }

// openWith is Open with adjust applied to the pool's configuration last
// (tests trace the statements).
func openWith(ctx context.Context, dsn string, adjust func(*pgxpool.Config)) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: the PostgreSQL DSN: %w", err)
	}
	// No JIT compilation: a folder read's estimated cost is high enough for
	// PostgreSQL to compile it, and compiling took 4.2 s of a 3.2 s read of
	// 238,000 entries (1.3 s without; EXPLAIN ANALYZE, issue 18). Our
	// queries are many and short; JIT pays only for long analytic ones. A
	// DSN that sets jit itself keeps its own.
	if _, set := cfg.ConnConfig.RuntimeParams["jit"]; !set {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	// pgxpool's default is max(4, cores) connections: on 2 cores, ten IMAP
	// sessions waited for one of four connections for most of their time
	// (imaptest's stress on the shared INBOX: 96 of the sessions'
	// goroutines were in the pool's Acquire, STORE took 1.5 s). A DSN's
	// pool_max_conns is kept.
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	if adjust != nil {
		adjust(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connecting to PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connecting to PostgreSQL: %w", err)
	}
	var id [8]byte
	rand.Read(id[:])
	s := &Store{pool: pool, hub: store.NewHub(), node: hex.EncodeToString(id[:])}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := s.backfillSearch(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	// Listening before Open returns: a change committed after it is
	// never missed by a session that takes Changes() then reads.
	conn, err := s.listenConn(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.stopListen, s.listening = cancel, make(chan struct{})
	go s.listen(lctx, conn)
	return s, nil
}

// Close stops listening and closes the connections.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopListen()
		<-s.listening
		s.pool.Close()
	})
	return nil
}

// ObserveCommits makes f receive the duration of every write transaction
// that committed, from BEGIN to the end of COMMIT; nil stops it.
func (s *Store) ObserveCommits(f func(time.Duration)) {
	if f == nil {
		s.observe.Store(nil)
		return
	}
	s.observe.Store(&f)
}

// listenConn opens the connection that listens to changes: its own, not
// the pool's, since it waits forever.
func (s *Store) listenConn(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("store: connecting to PostgreSQL to listen: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+changesChannel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("store: LISTEN %s: %w", changesChannel, err)
	}
	return conn, nil
}

// listen publishes the other nodes' changes to the Hub until ctx ends. A
// lost connection is made again; since changes may have been missed
// meanwhile, every session is woken to read again.
func (s *Store) listen(ctx context.Context, conn *pgx.Conn) {
	defer close(s.listening)
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	retry := time.NewTimer(0)
	<-retry.C
	for {
		if conn == nil {
			var err error
			if conn, err = s.listenConn(ctx); err != nil {
				retry.Reset(time.Second)
				select {
				case <-ctx.Done():
					return
				case <-retry.C:
				}
				continue
			}
			s.hub.PublishAll() // changes may have been missed meanwhile
		}
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			conn.Close(context.Background())
			conn = nil
			continue
		}
		s.received(n.Payload) // feed.go
	}
}

// maxAttempts bounds how often a transaction aborted by a deadlock or a
// serialization failure is run again.
const maxAttempts = 20

// errRetry makes inTx run the transaction again (a concurrent insert of
// the same Message-ID, found only at the index).
var errRetry = errors.New("store: a concurrent write; run again")

// retryable reports whether err aborted a transaction that may succeed
// when run again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	return errors.Is(err, errRetry)
}

// inTx runs f in a READ COMMITTED transaction and commits it; a nil
// return is committed. f may run again when the transaction was aborted by
// a deadlock or a serialization failure.
func (s *Store) inTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	var err error
	for range maxAttempts {
		began := time.Now()
		err = pgx.BeginFunc(ctx, s.pool, f)
		if err == nil {
			if o := s.observe.Load(); o != nil {
				(*o)(time.Since(began))
			}
			return nil
		}
		if !retryable(err) || ctx.Err() != nil {
			return err
		}
		s.retried.Add(1)
	}
	return err
}

// readTx runs f in one REPEATABLE READ READ ONLY transaction: every query
// of f sees the same snapshot.
func (s *Store) readTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, f)
}

// querier is the pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// nextval advances an identity sequence (messages, conversations, queue
// entries): unique numbers, not commit-ordered.
func nextval(ctx context.Context, q querier, sequence string) (int64, error) {
	var v int64
	err := q.QueryRow(ctx, `SELECT nextval($1::regclass)`, sequence).Scan(&v)
	return v, err
}

// bump advances a counter row in tx and returns its new value; the row
// stays locked until tx ends, so the values are committed in order (see
// the package comment).
func bump(ctx context.Context, tx pgx.Tx, counter string) (int64, error) {
	var v int64
	err := tx.QueryRow(ctx, `UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value`, counter).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("store: no counter %q", counter)
	}
	return v, err
}

// lockConversation locks a conversation's row until tx ends (see the
// package comment); ErrNotFound when there is none.
func lockConversation(ctx context.Context, tx pgx.Tx, conv int64) error {
	if b := batchOf(tx); b != nil && b.locked[conv] {
		return nil // locked at the batch's start
	}
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM conversations WHERE id = $1 FOR NO KEY UPDATE`, conv).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// int64s runs a query of one integer column and returns its values.
func int64s(ctx context.Context, q querier, sql string, args ...any) ([]int64, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
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
