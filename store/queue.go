package store

import (
	"context"
	"time"
)

// QueueStore is the outbound queue's part of the store (DESIGN.md §9): one
// row per queued message and recipient, with its state, attempts, next
// attempt and last error. Every method that changes a row commits durably
// before it returns, so the queue survives a kill -9 at any instant.
type QueueStore interface {
	// PendingDeliveries returns up to limit queued messages whose recipients
	// are not all done, oldest first (directory mode).
	PendingDeliveries(ctx context.Context, limit int) ([]Delivery, error)
	// MarkDelivered marks every queued recipient of a queued message
	// delivered (directory mode).
	MarkDelivered(ctx context.Context, queueID int64) error

	// DueRecipients returns up to limit queued recipients whose next attempt
	// is at or before now, earliest first.
	DueRecipients(ctx context.Context, now time.Time, limit int) ([]QueuedRecipient, error)
	// NextAttempt returns the earliest next attempt of any queued recipient.
	NextAttempt(ctx context.Context) (next time.Time, found bool, err error)
	// BeginAttempt claims a due recipient for one attempt, before it is
	// made: attempts+1 and the next attempt moved to retryAt. It returns
	// false when the recipient is no longer queued or no longer due at now.
	BeginAttempt(ctx context.Context, r RecipientKey, now, retryAt time.Time) (bool, error)
	// BeginAttempts is BeginAttempt for several recipients in one durable
	// commit; claimed[i] tells whether claims[i] was claimed.
	BeginAttempts(ctx context.Context, claims []Claim, now time.Time) (claimed []bool, err error)
	// FinishAttempt records the outcome of an attempt. It changes nothing
	// when the recipient left the queued state meanwhile (a bounce or an
	// admin's drop wins) and then returns false.
	FinishAttempt(ctx context.Context, r RecipientKey, res AttemptResult) (bool, error)
	// QueueRecipients returns the recipients of one queue entry (queueID >
	// 0) or of all entries (0), by queue id then address; with activeOnly,
	// only those still queued.
	QueueRecipients(ctx context.Context, queueID int64, activeOnly bool) ([]QueuedRecipient, error)
	// QueuePage returns up to q.Limit recipients after q.After in the
	// order (queue id, address), with a state among q.States (every state
	// when empty). The next page starts after the last one returned; a
	// page shorter than q.Limit is the last. A row's key never changes, so
	// paging is stable under concurrent writes: each row is returned at
	// most once, and every row that exists when the first page is read and
	// is in q.States when its page is read is returned.
	QueuePage(ctx context.Context, q QueuePageQuery) ([]QueuedRecipient, error)
	// MessageRecipients returns the queued recipients of a message, by
	// their Number.
	MessageRecipients(ctx context.Context, message int64) ([]QueuedRecipient, error)
	// RetryNow makes the recipients of a queue entry that are not delivered
	// due at now, failed and dropped ones included, with a new
	// give-up period; it returns how many.
	RetryNow(ctx context.Context, queueID int64, now time.Time) (int, error)
	// Drop ends the queued recipients of a queue entry as dropped with
	// reason and returns them, with the last error they had before (the
	// last remote answer). event, when not nil, gives the team's event of
	// each dropped recipient (given as it was before the drop), recorded
	// in the same transaction: the drop and its events commit together or
	// not at all.
	Drop(ctx context.Context, queueID int64, reason string, now time.Time, event func(QueuedRecipient) Event) ([]QueuedRecipient, error)
	// MarkBounced marks a recipient failed because of a bounce, whatever
	// its state but dropped, and records ev (the team's event) in the same
	// transaction; it returns false when nothing changed, and then records
	// nothing (a repeated bounce).
	MarkBounced(ctx context.Context, r RecipientKey, lastError string, now time.Time, ev Event) (bool, error)
	// QueueCounts returns the number of recipients in each state.
	QueueCounts(ctx context.Context) (map[RecipientState]int64, error)
}

// RecipientState is where one recipient of a queued message stands.
type RecipientState string

// Recipient states.
const (
	RecipientQueued    RecipientState = "queued"    // waiting for an attempt, or being attempted
	RecipientDelivered RecipientState = "delivered" // the remote answered 250 to the data
	RecipientFailed    RecipientState = "failed"    // a 5xx, a bounce, or give_up_after
	RecipientDropped   RecipientState = "dropped"   // an admin dropped it
)

// RecipientKey names one row of the queue.
type RecipientKey struct {
	QueueID   int64
	Recipient string
}

// QueuedRecipient is one recipient of a queued message.
type QueuedRecipient struct {
	QueueID      int64
	Message      int64
	Conversation int64
	// Number is the recipient's 1-based position among its message's
	// recipients, ordered by address; it names the recipient in the VERP
	// return path. The set of recipients of a message never changes, so
	// neither do the numbers.
	Number      int
	Recipient   string
	MailFrom    string // the message's return path, as submission recorded it
	State       RecipientState
	Attempts    int
	NextAttempt time.Time
	// Since is when the current delivery period began (the message was
	// queued, or an admin retried it): give_up_after counts from here.
	Since         time.Time
	LastError     string
	DelayNotified bool // the team was told of a delay once
	Updated       time.Time
}

// Key returns the recipient's row key.
func (q QueuedRecipient) Key() RecipientKey {
	return RecipientKey{QueueID: q.QueueID, Recipient: q.Recipient}
}

// QueuePageQuery selects a page of the queue for QueuePage.
type QueuePageQuery struct {
	After  RecipientKey // the zero key starts at the first row
	States []RecipientState
	Limit  int
}

// Claim is one recipient to claim for an attempt, and its retry time
// should the attempt not end.
type Claim struct {
	Key     RecipientKey
	RetryAt time.Time
}

// AttemptResult is the outcome of one delivery attempt.
type AttemptResult struct {
	// State is RecipientQueued for a deferral (the next attempt stays where
	// BeginAttempt put it unless NextAttempt is set), RecipientDelivered or
	// RecipientFailed.
	State         RecipientState
	NextAttempt   time.Time // when non-zero, the next attempt of a deferral
	LastError     string
	DelayNotified bool // set the flag (it is never cleared)
	At            time.Time
	// Events are the team's events about this outcome (a delivery failed
	// or is delayed), recorded in the same transaction as the outcome, and
	// only when it is recorded: a crash leaves both or neither.
	Events []Event
}
