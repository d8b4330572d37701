package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/supportgate/supportgate/store/searchtext"
)

// Queued SEARCH documents.
//
// A message's trigram tokens are written in its own transaction, as
// DESIGN.md §13 asks, but into message_search_pending, one row, rather than
// into the FTS4 table: an FTS4 insert writes a segment per transaction
// and merges them later, so one message at a time cost 290 µs of the
// single writer's time, and the MX's inbound rate fell to 0.4 of what it
// was without the index (BenchmarkAddInboundSearchable: 0.84 ms a
// message against 0.33). In batches of indexBatch the same inserts cost
// under 40 µs a message. The indexer moves queued documents into the FTS4
// table a batch a transaction, each moved in the same transaction that
// deletes it from the queue; SEARCH reads both, the queue here
// (pendingCandidates), so every committed message is found, whether or not
// it was moved yet. An import (ImportInbound: thousands of messages a
// transaction, one FTS4 segment anyway) indexes at once: its messages
// outpaced the queue's batches, which share the writer with it.
const searchPendingSchema = `CREATE TABLE IF NOT EXISTS message_search_pending (
	message_id INTEGER PRIMARY KEY,
	doc TEXT NOT NULL
)`

// indexBatch is how many queued documents one transaction moves.
const indexBatch = 500

// indexPoll is how often the indexer looks at the queue when nothing
// woke it (a write of another process, a batch that failed).
const indexPoll = 2 * time.Second

// indexLinger is how long the indexer lets documents gather after the
// first is queued before it moves fewer than indexBatch: moving each
// commit's one or two documents at once (as it first did) added a write
// request and an FTS4 segment to nearly every commit of the writer under
// outbound load (issue 18, BenchmarkOutbound). A queue of indexBatch
// documents costs SEARCH well under a millisecond to read.
const indexLinger = time.Second

// indexer is the goroutine that empties the queue.
type indexer struct {
	wake   chan struct{} // a document was queued
	queued atomic.Int64  // documents queued since the last move began (an estimate: a rolled-back one counts)
	linger atomic.Int64  // indexLinger in nanoseconds, or a test's
	moves  atomic.Int64  // transactions that moved documents (tests)
	stop   context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// queueSearch queues a message's tokens (searchtext.Doc, computed before
// the transaction: computeMeta) for the SEARCH index, in its transaction;
// a message with too many tokens is listed as unindexed (always a
// candidate).
func (s *Store) queueSearch(ctx context.Context, tx *sql.Tx, message int64, tokens []string, ok bool) error {
	if !ok || len(tokens) == 0 {
		return indexSearch(ctx, tx, message, tokens, ok) // unindexed, or nothing to index
	}
	// Between spaces, each token: pendingCandidates finds " token ".
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO message_search_pending (message_id, doc) VALUES (?, ?)`,
		message, " "+strings.Join(tokens, " ")+" "); err != nil {
		return err
	}
	// Before the commit: the indexer's batch is a later transaction of the
	// same writer, so it sees this one's rows (or, if it rolled back, none).
	s.indexer.queued.Add(1)
	select {
	case s.indexer.wake <- struct{}{}:
	default:
	}
	return nil
}

// startIndexer starts the goroutine that moves queued documents into the
// index; stopIndexer stops it.
func (s *Store) startIndexer() {
	ctx, stop := context.WithCancel(context.Background())
	s.indexer.stop = stop
	s.indexer.done = make(chan struct{})
	go func() {
		defer close(s.indexer.done)
		tick := time.NewTicker(indexPoll)
		defer tick.Stop()
		for {
			s.indexer.queued.Store(0) // what is queued from now on is the next move's
			moved, err := s.indexPending(ctx, indexBatch)
			if err != nil && ctx.Err() == nil {
				slog.Warn("store: moving queued messages into the SEARCH index failed; SEARCH still finds them, and the move is tried again", "err", err)
			}
			if moved > 0 {
				s.indexer.moves.Add(1)
			}
			if err == nil && moved == indexBatch {
				continue // more may be queued
			}
			select {
			case <-ctx.Done():
				return
			case <-s.indexer.wake:
			case <-tick.C:
			}
			if !s.linger(ctx) {
				return
			}
		}
	}()
}

// linger waits until indexBatch documents are queued or indexLinger has
// passed, and reports false when the indexer is stopped meanwhile.
func (s *Store) linger(ctx context.Context) bool {
	timer := time.NewTimer(time.Duration(s.indexer.linger.Load()))
	defer timer.Stop()
	for s.indexer.queued.Load() < indexBatch {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		case <-s.indexer.wake:
		}
	}
	return true
}

func (s *Store) stopIndexer() {
	s.indexer.once.Do(func() {
		if s.indexer.stop == nil {
			return // Open failed before it started
		}
		s.indexer.stop()
		<-s.indexer.done
	})
}

// indexPending moves up to n queued documents, the oldest first, into the
// FTS4 table in one transaction, and returns how many it moved.
func (s *Store) indexPending(ctx context.Context, n int) (int, error) {
	moved := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO message_search (docid, doc)
			SELECT message_id, doc FROM message_search_pending ORDER BY message_id LIMIT ?`, n); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM message_search_pending WHERE message_id IN
			(SELECT message_id FROM message_search_pending ORDER BY message_id LIMIT ?)`, n)
		if err != nil {
			return err
		}
		k, err := res.RowsAffected()
		moved = int(k)
		return err
	})
	return moved, err
}

// pendingCandidates adds to ids the queued documents that satisfy q, read
// in tx. SQLite tests each document (instr over its text, every token
// between spaces): a queue left long by a burst is read at a few
// microseconds a document, where parsing each in Go took 20.
func pendingCandidates(ctx context.Context, tx *sql.Tx, q searchtext.Query, ids []int64) ([]int64, error) {
	var where []string
	var args []any
	for _, alts := range q {
		var any []string
		for _, ts := range alts {
			var all []string
			for _, t := range ts {
				all = append(all, `instr(doc, ?) > 0`)
				args = append(args, " "+t+" ")
			}
			any = append(any, "("+strings.Join(all, " AND ")+")")
		}
		where = append(where, "("+strings.Join(any, " OR ")+")")
	}
	queued, err := int64s(ctx, tx, `SELECT message_id FROM message_search_pending WHERE `+strings.Join(where, " AND "), args...)
	return append(ids, queued...), err
}
