package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/threading"
)

// Defaults of the Worker's limits.
const (
	DefaultMaxConnections = 20               // connections open at once, all routes together
	DefaultMaxPerRoute    = 10               // connections open at once to one domain (or the relay)
	DefaultShutdownGrace  = 10 * time.Second // how long deliveries in flight may finish after Run's ctx ends
	perConnection         = 50               // recipients one connection carries before it is closed
	// recordsInFlight bounds the outcomes of one connection being written
	// while it already sends the next message (see deliverBatch).
	recordsInFlight = 4
	pollInterval    = 5 * time.Second // the queue is read at least this often (the CLI writes from another process)
	dueBatch        = 500
	// blockedRecheck is how often the due queue is read while recipients
	// wait for a connection slot (see Run).
	blockedRecheck = 100 * time.Millisecond
)

// Worker delivers queued replies over SMTP, to the recipients' MX hosts or
// to a relay (DESIGN.md §9). See the package documentation for the design.
type Worker struct {
	Store     store.Store
	Transport Transport
	Keys      threading.Keys // for the per-recipient VERP return path
	// Retry is the delay after each failed attempt (the last one repeats);
	// GiveUpAfter ends the delivery period of a recipient.
	Retry       []time.Duration
	GiveUpAfter time.Duration
	// MaxConnections and MaxPerRoute limit concurrency; zero takes the
	// defaults.
	MaxConnections, MaxPerRoute int
	// ShutdownGrace bounds how long deliveries in flight may finish after
	// Run's context ends; zero takes DefaultShutdownGrace.
	ShutdownGrace time.Duration
	Log           *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time

	counters Counters
	mu       sync.Mutex
	inFlight map[store.RecipientKey]bool
	routes   map[string]int // open connections per route
	open     int            // open connections in all
}

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// Stats implements Metrics.
func (w *Worker) Stats(ctx context.Context) (Stats, error) {
	return w.counters.stats(ctx, w.Store)
}

// Run delivers until ctx ends; then it starts no new attempt, lets those in
// flight finish within ShutdownGrace, cuts the others (they stay queued and
// are due again at once) and returns.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	w.inFlight, w.routes = map[store.RecipientKey]bool{}, map[string]int{}
	w.mu.Unlock()
	grace := w.ShutdownGrace
	if grace == 0 {
		grace = DefaultShutdownGrace
	}
	// Attempts run under their own context, cut only when the grace ends.
	attemptCtx, cut := context.WithCancel(context.WithoutCancel(ctx))
	defer cut()
	var wg sync.WaitGroup
	finished := make(chan struct{}, 1)
	// Only the queue's changes wake it (DESIGN.md §13): recipients queued
	// or made due again; not every message stored or flag set.
	queued := w.Store.Subscribe(store.Filter{Queue: true})
	defer queued.Close()
	for {
		changed := queued.Changed()
		wait, blocked := w.dispatch(ctx, attemptCtx, &wg, finished)
		if blocked {
			// Due recipients wait for a connection slot: only a finished
			// connection frees one, and their next attempt, being past,
			// would have the queue read again every 10 ms. An enqueue (a
			// Queue change of the store's feed) may bring a recipient of
			// another route with a free slot, so the queue is still read
			// every blockedRecheck, but not at every enqueue:
			// reading the due queue at each enqueue and every 10 ms while
			// the relay's connections were all busy was a fifth of the
			// daemon's CPU in the outbound benchmark (issue 8).
			changed = nil
			wait = max(wait, blockedRecheck)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-changed:
		case <-finished:
		case <-timer.C:
		}
		timer.Stop()
		if ctx.Err() != nil {
			break
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		w.Log.Warn("deliveries still in flight at the end of the shutdown grace are cut; they stay queued", "grace", grace)
		cut()
		<-done
	}
	return nil
}

// dispatch claims due recipients and starts a connection per route and
// batch, within the limits; it returns how long to sleep at most, and
// whether due recipients were left waiting for a connection slot.
func (w *Worker) dispatch(ctx, attemptCtx context.Context, wg *sync.WaitGroup, finished chan<- struct{}) (wait time.Duration, blocked bool) {
	now := w.now()
	due, err := w.Store.DueRecipients(ctx, now, dueBatch)
	if err != nil {
		if ctx.Err() == nil {
			w.Log.Error("reading the outbound queue failed; will retry", "err", err)
		}
		return pollInterval, false
	}
	maxOpen, maxRoute := w.MaxConnections, w.MaxPerRoute
	if maxOpen <= 0 {
		maxOpen = DefaultMaxConnections
	}
	if maxRoute <= 0 {
		maxRoute = DefaultMaxPerRoute
	}
	// Group by route, keeping the order of due.
	var order []string
	byRoute := map[string][]store.QueuedRecipient{}
	w.mu.Lock()
	for _, r := range due {
		if w.inFlight[r.Key()] {
			continue
		}
		route := w.Transport.Route(domainOf(r.Recipient))
		if _, ok := byRoute[route]; !ok {
			order = append(order, route)
		}
		byRoute[route] = append(byRoute[route], r)
	}
	w.mu.Unlock()
	for _, route := range order {
		rs := byRoute[route]
		for len(rs) > 0 {
			w.mu.Lock()
			full := w.open >= maxOpen || w.routes[route] >= maxRoute
			if !full {
				w.open++
				w.routes[route]++
			}
			w.mu.Unlock()
			if full {
				blocked = true
				break // the rest waits for a connection to finish
			}
			n := min(len(rs), perConnection)
			batch := w.claim(ctx, now, rs[:n])
			rs = rs[n:]
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.deliverBatch(attemptCtx, route, batch)
				w.mu.Lock()
				w.open--
				w.routes[route]--
				for _, r := range batch {
					delete(w.inFlight, r.Key())
				}
				w.mu.Unlock()
				select {
				case finished <- struct{}{}:
				default:
				}
			}()
		}
	}
	wait = pollInterval
	if next, ok, err := w.Store.NextAttempt(ctx); err == nil && ok {
		wait = min(wait, max(next.Sub(w.now()), 10*time.Millisecond))
	}
	return wait, blocked
}

// claim writes each recipient's next attempt before the attempt is made
// (RFC 5321 4.5.4.1), so that a crash during it leaves the recipient queued
// for a later retry, and returns those claimed. The batch is claimed in one
// commit.
func (w *Worker) claim(ctx context.Context, now time.Time, rs []store.QueuedRecipient) []store.QueuedRecipient {
	claims := make([]store.Claim, len(rs))
	for i, r := range rs {
		claims[i] = store.Claim{Key: r.Key(), RetryAt: now.Add(w.backoff(r.Attempts))}
	}
	ok, err := w.Store.BeginAttempts(ctx, claims, now)
	if err != nil {
		w.Log.Error("claiming queued recipients failed; they are tried at the next pass", "recipients", len(rs), "err", err)
		return nil
	}
	var claimed []store.QueuedRecipient
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, r := range rs {
		if ok[i] {
			w.inFlight[r.Key()] = true
			r.Attempts++
			r.NextAttempt = claims[i].RetryAt // where a deferral leaves it
			claimed = append(claimed, r)
		}
	}
	return claimed
}

// backoff is the delay after attempt number attempts+1 fails: the
// configured schedule, its last step repeating, plus up to 10% jitter so
// that a recovering host is not hit by every message at once.
func (w *Worker) backoff(attempts int) time.Duration {
	if len(w.Retry) == 0 {
		return 5 * time.Minute
	}
	d := w.Retry[min(attempts, len(w.Retry)-1)]
	if j := int64(d / 10); j > 0 {
		d += time.Duration(rand.Int64N(j))
	}
	return d
}

// deliverBatch sends each recipient its own transaction (each has its own
// VERP return path) over as few connections as it takes.
//
// An outcome is written while the connection already carries the next
// transaction, up to recordsInFlight at once (they share the store's group
// commits): writing each before the next send made a connection wait for
// the store after every message, and the queue fell behind submission in
// the outbound benchmark (issue 8). It changes nothing of what a crash can
// do: a recipient whose 250 came but whose outcome was not yet written is
// sent again after a restart, as when the crash falls between the 250 and
// a synchronous write (SMTP's at-least-once, RFC 5321 6.1); only up to
// recordsInFlight recipients per connection can be in that state at once.
// deliverBatch returns when every outcome is written.
func (w *Worker) deliverBatch(ctx context.Context, route string, batch []store.QueuedRecipient) {
	var conn Conn
	var openErr error
	sent := 0 // transactions the open connection carried
	raws := map[int64][]byte{}
	var records sync.WaitGroup
	slots := make(chan struct{}, recordsInFlight)
	defer func() {
		if conn != nil {
			conn.Close()
		}
		records.Wait()
	}()
	for _, r := range batch {
		log := w.Log.With("queue_id", r.QueueID, "message", r.Message, "conversation", r.Conversation, "recipient", r.Recipient, "attempt", r.Attempts)
		if ctx.Err() != nil {
			w.interrupted(r, log)
			continue
		}
		raw, ok := raws[r.Message]
		if !ok {
			var err error
			if raw, err = w.Store.MessageRaw(ctx, r.Message); err != nil {
				log.Error("reading a queued message failed; will retry", "err", err)
				continue
			}
			raws[r.Message] = raw
		}
		err := openErr
		remote, reply := "", "" // the server that answered, and its answer to the data
		for try := 0; try < 2 && openErr == nil; try++ {
			if conn == nil {
				conn, openErr = w.Transport.Open(ctx, domainOf(r.Recipient))
				if openErr != nil {
					log.Info("connecting failed", "route", route, "err", openErr)
					err = openErr
					break
				}
				sent = 0
			}
			err = conn.Send(ctx, w.returnPath(r), r.Recipient, raw)
			remote, reply = describe(conn)
			var lost *ConnLostError
			var se *smtp.SMTPError
			if err == nil || errors.As(err, &se) && !errors.As(err, &lost) {
				sent++
				break
			}
			// The connection is broken (or closing, 421); the next
			// transaction opens another.
			conn.Close()
			conn = nil
			// A connection that carried transactions and then failed at
			// MAIL FROM was closed by the server in between (an idle or
			// per-connection limit, RFC 5321 4.5.3.2 and 3.8): nothing of
			// this message reached it, so it goes at once on a new
			// connection rather than waiting for the retry schedule.
			if !errors.As(err, &lost) || !lost.AtMail || sent == 0 || ctx.Err() != nil {
				break
			}
			log.Info("the connection was closed between transactions; sending again on a new one", "err", err)
		}
		if ctx.Err() != nil && err != nil {
			w.interrupted(r, log)
			continue
		}
		// One line per attempt (record): where it went and what the
		// server answered.
		if remote != "" {
			log = log.With("remote", remote)
		} else {
			log = log.With("route", route)
		}
		if reply != "" {
			log = log.With("reply", reply)
		}
		slots <- struct{}{}
		records.Add(1)
		go func() {
			defer func() { <-slots; records.Done() }()
			w.record(r, err, log)
		}()
	}
}

// returnPath is the recipient's VERP address, bounces+<token>@<domain of the
// message's return path>: a bounce then names the message and the recipient.
func (w *Worker) returnPath(r store.QueuedRecipient) string {
	_, domain, ok := strings.Cut(r.MailFrom, "@")
	if !ok {
		return r.MailFrom
	}
	return "bounces+" + w.Keys.RecipientBounceToken(r.Message, r.Number) + "@" + domain
}

// interrupted leaves a recipient whose attempt the shutdown cut due again
// at once, so that the next start retries it.
func (w *Worker) interrupted(r store.QueuedRecipient, log *slog.Logger) {
	_, err := w.Store.FinishAttempt(context.Background(), r.Key(), store.AttemptResult{
		State: store.RecipientQueued, NextAttempt: w.now(), LastError: "interrupted by a shutdown", At: w.now(),
		DelayNotified: r.DelayNotified})
	if err != nil {
		log.Error("recording an interrupted attempt failed; it is retried at its next attempt", "err", err)
	}
}

// record writes an attempt's outcome: 250 delivered; a 5xx final (RFC 5321
// 4.2.1); anything else deferred until give_up_after ends the period. The
// team's event is written with the outcome, in one transaction
// (AttemptResult.Events): a crash loses neither alone, and an outcome that
// is not recorded (the recipient was bounced or dropped meanwhile) records
// no event either.
func (w *Worker) record(r store.QueuedRecipient, sendErr error, log *slog.Logger) {
	ctx := context.Background() // an outcome is recorded even during shutdown
	now := w.now()
	res := store.AttemptResult{State: store.RecipientDelivered, At: now, DelayNotified: r.DelayNotified}
	var se *smtp.SMTPError
	switch {
	case sendErr == nil:
	case errors.As(sendErr, &se) && se.Code >= 500 && se.Code < 600:
		res.State, res.LastError = store.RecipientFailed, remoteAnswer(sendErr)
	case w.GiveUpAfter > 0 && now.Sub(r.Since) >= w.GiveUpAfter:
		res.State = store.RecipientFailed
		res.LastError = fmt.Sprintf("gave up after %s of attempts; last answer: %s", w.GiveUpAfter, remoteAnswer(sendErr))
	default:
		res.State, res.LastError = store.RecipientQueued, remoteAnswer(sendErr)
	}
	switch res.State {
	case store.RecipientDelivered:
		log.Info("delivered")
		w.counters.delivered.Add(1)
	case store.RecipientFailed:
		log.Warn("delivery failed for good", "reply", res.LastError)
		w.counters.failed.Add(1)
		res.Events = append(res.Events, w.event(r, "delivery-failed", "Delivery to "+r.Recipient+" failed", res.LastError))
	case store.RecipientQueued:
		log.Info("delivery deferred", "reply", res.LastError, "next_attempt", r.NextAttempt)
		w.counters.deferred.Add(1)
		if !r.DelayNotified {
			res.Events = append(res.Events, w.event(r, "delivery-delayed", "Delivery to "+r.Recipient+" is delayed; retrying",
				res.LastError+"\n\nsupportgate keeps trying until "+r.Since.Add(w.GiveUpAfter).Format(time.RFC1123Z)+"."))
			res.DelayNotified = true
		}
	}
	if ok, err := w.Store.FinishAttempt(ctx, r.Key(), res); err != nil {
		log.Error("recording the outcome failed; the recipient is retried at its next attempt", "err", err)
	} else if !ok {
		log.Info("the recipient left the queue during the attempt (bounced or dropped); outcome not recorded", "outcome", res.State)
	}
}

// event is the team's event about an outcome for r.
func (w *Worker) event(r store.QueuedRecipient, typ, text, detail string) store.Event {
	return store.Event{Conversation: r.Conversation, Type: typ, Text: text,
		Detail: "Recipient: " + r.Recipient + "\nRemote answer: " + detail, At: w.now()}
}

// remoteAnswer is what the team reads: the remote server's reply, or what
// went wrong reaching it.
func remoteAnswer(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		s := fmt.Sprintf("%d", se.Code)
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != (smtp.EnhancedCode{}) {
			s += fmt.Sprintf(" %d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		return s + " " + se.Message
	}
	return err.Error()
}

func domainOf(addr string) string {
	_, d, _ := strings.Cut(addr, "@")
	return strings.ToLower(d)
}

// Stats are the queue's numbers for the metrics endpoint: Queued is how
// many recipients wait now; the others count outcomes since the start.
type Stats struct {
	Queued, Delivered, Deferred, Failed int64
}

// Metrics is what the metrics endpoint publishes.
type Metrics interface {
	Stats(ctx context.Context) (Stats, error)
}

var (
	_ Metrics = (*Worker)(nil)
	_ Metrics = (*DirectoryWorker)(nil)
)

// Counters counts attempt outcomes; safe for concurrent use.
type Counters struct {
	delivered, deferred, failed atomic.Int64
}

func (c *Counters) stats(ctx context.Context, st store.QueueStore) (Stats, error) {
	counts, err := st.QueueCounts(ctx)
	if err != nil {
		return Stats{}, err
	}
	return Stats{Queued: counts[store.RecipientQueued], Delivered: c.delivered.Load(),
		Deferred: c.deferred.Load(), Failed: c.failed.Load()}, nil
}
