package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/supportgate/supportgate/store"
)

// Group commit.
//
// With synchronous=FULL every commit costs an fsync of the WAL, and on
// ordinary disks that fsync, not the SQL, is what bounds how many messages a
// second the MX can accept durably. One writer goroutine takes the write
// requests of all callers; whatever has queued up while the previous batch
// was being committed becomes the next batch: one transaction, one
// savepoint per request, one commit (one fsync) for all of them. Nobody waits
// for a timer: under no load a batch is one request and costs what a plain
// transaction did; under load the batch grows by itself while the disk
// works.
//
// Isolation between the requests of a batch: each runs in SAVEPOINT; a
// failing one is rolled back to it and answered with its error, its
// neighbours go on. Durability: no caller is answered before the batch's
// COMMIT returned, so a nil answer is on disk as before.
//
// One case cannot be confined to a savepoint: SQLite itself rolls back the
// whole transaction on some errors (SQLITE_FULL, SQLITE_IOERR, and an
// interrupt, which is how go-sqlite3 cancels a statement whose context is
// done). Then the requests already run in that batch are answered with
// errBatchLost (nothing of theirs was stored; a caller answers 451 as for any
// store error) rather than run again: a request's function may accumulate
// results outside the transaction (Drop does), so running it twice would be
// wrong.
//
// Changes (feed.go): the writer publishes what the batch's committed
// requests recorded, once, after the COMMIT and before it answers them, so
// that a caller that returns has woken the sessions its write concerns and
// a woken session reads the write. A request rolled back publishes
// nothing.

// maxBatch bounds how many requests share a commit, so that one batch's
// latency stays bounded under a flood.
const maxBatch = 128

var (
	errClosed    = errors.New("store: closed")
	errBatchLost = errors.New("store: the transaction was rolled back by SQLite together with other writes; nothing was stored")
)

// writeRequest is one inTx call waiting for the writer.
type writeRequest struct {
	ctx     context.Context
	f       func(tx *sql.Tx, ch *changes) error
	changes changes    // what f recorded
	done    chan error // buffered: the writer never blocks on an answer
	// panicked carries a panic of f back to the caller's goroutine, where
	// it would have happened without group commit.
	panicked any
}

// writer owns the write connection's transactions.
type writer struct {
	db       *sql.DB
	publish  func([]store.Change) // the committed batch's changes
	requests chan *writeRequest
	quit     chan struct{}
	stopped  chan struct{}
	once     sync.Once
	// commits and batched count committed batches and the requests in
	// them (tests and benchmarks read them to see batching happen).
	commits, batched atomic.Int64
	// observe, when set, receives each committed batch's duration
	// (SQLite.ObserveCommits).
	observe atomic.Pointer[func(time.Duration)]
}

func newWriter(db *sql.DB, publish func([]store.Change)) *writer {
	w := &writer{db: db, publish: publish, requests: make(chan *writeRequest), quit: make(chan struct{}), stopped: make(chan struct{})}
	go w.run()
	return w
}

// close stops the writer after the batch in progress; later calls fail.
func (w *writer) close() {
	w.once.Do(func() { close(w.quit) })
	<-w.stopped
}

// do hands f to the writer and waits for the outcome.
func (w *writer) do(ctx context.Context, f func(tx *sql.Tx, ch *changes) error) error {
	r := &writeRequest{ctx: ctx, f: f, done: make(chan error, 1)}
	select {
	case w.requests <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.quit:
		return errClosed
	}
	// Once taken, a request is always answered, after the commit; waiting
	// is bounded by one batch.
	err := <-r.done
	if r.panicked != nil {
		panic(r.panicked)
	}
	return err
}

func (w *writer) run() {
	defer close(w.stopped)
	batch := make([]*writeRequest, 0, maxBatch)
	for {
		select {
		case r := <-w.requests:
			batch = append(batch[:0], r)
		case <-w.quit:
			return
		}
		// Take whatever else is already waiting, without waiting for more.
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-w.requests:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		w.runBatch(batch)
		clear(batch) // let the requests be collected
	}
}

// runBatch runs the requests in one transaction and answers every one.
func (w *writer) runBatch(batch []*writeRequest) {
	// The transaction's own context is not any caller's: one caller giving
	// up must not roll back the others.
	ctx := context.Background()
	began := time.Now()
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	results := make([]error, len(batch))
	ran := 0 // requests whose changes are in the transaction
	lost := false
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT request`); err != nil {
			results[i], lost = err, true
			break
		}
		err := w.call(r, tx)
		if err == nil {
			if _, err = tx.ExecContext(ctx, `RELEASE request`); err == nil {
				ran++
				continue
			}
		}
		results[i] = err
		// ROLLBACK TO fails when SQLite already rolled back the whole
		// transaction (see the package comment above).
		if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO request`); rerr != nil {
			lost = true
			for j := range i {
				if results[j] == nil {
					results[j] = errBatchLost
				}
			}
			for j := i + 1; j < len(batch); j++ {
				// Not run: they may be retried by their callers at once.
				results[j] = errBatchLost
			}
			break
		}
		if _, err := tx.ExecContext(ctx, `RELEASE request`); err != nil {
			results[i], lost = fmt.Errorf("%w (and releasing its savepoint: %v)", results[i], err), true
			break
		}
	}
	if lost {
		tx.Rollback()
		for i, r := range batch {
			if results[i] == nil {
				results[i] = errBatchLost
			}
			r.done <- results[i]
		}
		return
	}
	// What the requests that stay recorded, completed in the
	// transaction after the last of them (feed.go).
	var recorded []*changes
	for i, r := range batch {
		if results[i] == nil {
			recorded = append(recorded, &r.changes)
		}
	}
	published := resolve(ctx, tx, recorded)
	if err := tx.Commit(); err != nil {
		// Nothing of the batch is durable: everyone gets the error.
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	took := time.Since(began)
	if ran > 0 {
		w.commits.Add(1)
		w.batched.Add(int64(ran))
	}
	if len(published) > 0 {
		w.publish(store.Coalesce(published))
	}
	// The observer is read before the answers, so that a commit a caller
	// saw end before ObserveCommits is never reported to the new observer.
	f := w.observe.Load()
	for i, r := range batch {
		r.done <- results[i]
	}
	if f != nil && ran > 0 {
		(*f)(took) // after the answers: the callers do not wait for it
	}
}

// call runs one request's function, turning a panic into an error for the
// batch and handing the panic to the caller.
func (w *writer) call(r *writeRequest, tx *sql.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.panicked = p
			err = fmt.Errorf("store: panic in a write: %v", p)
		}
	}()
	return r.f(tx, &r.changes)
}
