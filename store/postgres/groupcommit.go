package postgres

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/supportgate/supportgate/store"
)

// Group commit of inbound messages (DESIGN.md §13, "One writer, many
// readers", as store/sqlite/groupcommit.go does for SQLite).
//
// Inbound writes are serialised across nodes by the counter rows (the
// package comment, "UIDs"): a writer holds the mod-sequence and folder
// UID rows from the moment it takes its numbers until its COMMIT has
// returned, WAL flush included. One message per transaction thus costs
// one flush each, one after the other, whatever the number of callers.
// AddInbound therefore hands its message to this node's inbound writer,
// which stores whatever messages are waiting in one transaction: one
// savepoint per message (a failing one is rolled back to it and answered
// with its error, its neighbours go on), one COMMIT, one flush, one
// NOTIFY. No caller is answered before that COMMIT returned, so a nil
// answer is committed as before; under no load a batch is one message
// and costs what a transaction of its own did.
//
// The order of the locks (the package comment) holds for the whole batch:
// before the first message runs, the batch takes every Message-ID's
// advisory lock (in the order of their hash), every existing
// conversation's row it writes to (by id), the round-robin rows of the
// inboxes that assign in turn, and the rewrites counter when a message
// reopens a conversation; the counter rows come last, with the first
// message's numbers. A later message of the batch thus never waits for a
// lock another transaction holds while that one waits for a counter the
// batch holds, except at the unique index of a Message-ID that two
// transactions insert at once (two replies citing the same message on two
// nodes); PostgreSQL reports that deadlock, the message's savepoint is
// rolled back, and it is stored again by a transaction of its own.
//
// UIDs stay committed in order: the batch's messages take their numbers
// one after the other under the counter rows and commit together.

// maxInboundBatch bounds how many messages share a commit, so that a
// batch's latency and its NOTIFY payload stay small.
const maxInboundBatch = 32

// inboundWriters is how many inbound transactions a node runs at once:
// while one holds the counter rows, the others do the work before them
// (and under little load each message has a transaction of its own, as
// without group commit).
const inboundWriters = 4

// inboundRequest is one AddInbound waiting for the writer.
type inboundRequest struct {
	ctx  context.Context
	in   store.Inbound
	meta []byte
	res  store.InboundResult
	err  error
	// alone: run again by a transaction of its own (a deadlock in the
	// batch).
	alone bool
	done  chan struct{}
}

// addInboundBatched queues in for the inbound writer and waits for its
// answer.
func (s *Store) addInboundBatched(ctx context.Context, in store.Inbound, meta []byte) (store.InboundResult, error) {
	r := &inboundRequest{ctx: ctx, in: in, meta: meta, done: make(chan struct{})}
	select {
	case s.inbound <- r:
	case <-ctx.Done():
		return store.InboundResult{}, ctx.Err()
	case <-s.writerCtx.Done():
		return store.InboundResult{}, errors.New("store: closed")
	}
	<-r.done // answered after its batch's COMMIT, or at Close
	return r.res, r.err
}

// inboundWriter takes the waiting AddInbound requests, up to
// maxInboundBatch at a time, and stores each lot in one transaction,
// until ctx ends; done is called when it returns.
func (s *Store) inboundWriter(ctx context.Context, done func()) {
	defer done()
	for {
		var batch []*inboundRequest
		select {
		case <-ctx.Done():
			return
		case r := <-s.inbound:
			batch = append(batch, r)
		}
	more:
		for len(batch) < maxInboundBatch {
			select {
			case r := <-s.inbound:
				batch = append(batch, r)
			default:
				break more
			}
		}
		s.storeBatch(ctx, batch)
		for _, r := range batch {
			close(r.done)
		}
	}
}

// storeBatch stores batch in one transaction and sets each request's
// answer.
func (s *Store) storeBatch(ctx context.Context, batch []*inboundRequest) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err // its caller gave up before it was stored
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	if len(live) == 1 {
		// A transaction of its own: no savepoint, no locks in advance.
		live[0].res, live[0].err = s.addInboundAlone(live[0].ctx, live[0].in, live[0].meta)
		if live[0].err == nil {
			s.batches.Add(1)
			s.batched.Add(1)
		}
		return
	}
	var published []store.Change
	var err error
	for range maxAttempts {
		began := time.Now()
		published, err = s.runBatch(ctx, live)
		if err == nil {
			s.batches.Add(1)
			s.batched.Add(int64(len(live)))
			if o := s.observe.Load(); o != nil {
				(*o)(time.Since(began))
			}
			break
		}
		if !retryable(err) || ctx.Err() != nil {
			break
		}
		s.retried.Add(1)
	}
	if err != nil {
		// Nothing of the batch was stored: each message by a transaction
		// of its own, which answers with its own outcome.
		for _, r := range live {
			r.alone = true
		}
	} else if len(published) > 0 {
		s.hub.Publish(published)
	}
	for _, r := range live {
		if r.alone {
			r.res, r.err = s.addInboundAlone(r.ctx, r.in, r.meta)
		}
	}
}

// runBatch is one attempt at storing batch in one transaction; it returns
// the changes to publish once committed.
func (s *Store) runBatch(ctx context.Context, batch []*inboundRequest) ([]store.Change, error) {
	var published []store.Change
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		published = nil
		if err := lockBatch(ctx, tx, batch); err != nil {
			return err
		}
		var all changes
		for _, r := range batch {
			r.res, r.err, r.alone = store.InboundResult{}, nil, false
			sp, err := tx.Begin(ctx) // SAVEPOINT
			if err != nil {
				return err
			}
			var ch changes
			res, err := s.addInbound(ctx, sp, &ch, r.in, r.meta)
			if err != nil {
				if rerr := sp.Rollback(ctx); rerr != nil {
					return rerr
				}
				if retryable(err) {
					r.alone = true
				} else {
					r.err = err
				}
				continue
			}
			if err := sp.Commit(ctx); err != nil { // RELEASE SAVEPOINT
				return err
			}
			r.res = res
			all.list = append(all.list, ch.list...)
			all.convs = append(all.convs, ch.convs...)
		}
		cs, err := resolve(ctx, tx, &all)
		if err != nil {
			return err
		}
		if published = store.Coalesce(cs); len(published) == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, changesChannel, s.payload(published))
		return err
	})
	return published, err
}

// lockBatch takes, before any message of batch runs, the locks its
// messages would take before the counter rows (see the comment at the top).
func lockBatch(ctx context.Context, tx pgx.Tx, batch []*inboundRequest) error {
	var ids, inboxes []string
	var convs []int64
	reopens := false
	for _, r := range batch {
		if r.in.MessageIDHeader != "" {
			ids = append(ids, r.in.MessageIDHeader)
		}
		if r.in.Conversation > 0 {
			convs = append(convs, r.in.Conversation)
		}
		if r.in.Conversation == 0 && r.in.NewAssignee == "" && r.in.AssignInTurn != nil && len(r.in.AssignInTurn.Agents) > 0 {
			inboxes = append(inboxes, r.in.Inbox)
		}
		reopens = reopens || r.in.Reopen
	}
	if len(ids) > 1 {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, h)
			FROM (SELECT DISTINCT hashtext(id) AS h FROM unnest($2::text[]) AS id ORDER BY h) AS l`, lockMessageID, ids); err != nil {
			return err
		}
	}
	if len(convs) > 1 {
		if _, err := tx.Exec(ctx, `SELECT id FROM conversations WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, convs); err != nil {
			return err
		}
	}
	slices.Sort(inboxes)
	for _, inbox := range slices.Compact(inboxes) {
		if _, err := tx.Exec(ctx, `INSERT INTO round_robin (inbox, last_agent) VALUES ($1, '') ON CONFLICT DO NOTHING`, inbox); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT 1 FROM round_robin WHERE inbox = $1 FOR UPDATE`, inbox); err != nil {
			return err
		}
	}
	if reopens && len(batch) > 1 {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM counters WHERE name = 'rewrites' FOR UPDATE`); err != nil {
			return err
		}
	}
	return nil
}

// addInboundAlone stores one inbound message in a transaction of its own.
func (s *Store) addInboundAlone(ctx context.Context, in store.Inbound, meta []byte) (store.InboundResult, error) {
	var res store.InboundResult
	err := s.commit(ctx, func(tx pgx.Tx, ch *changes) (err error) {
		res, err = s.addInbound(ctx, tx, ch, in, meta)
		return err
	})
	return res, err
}
