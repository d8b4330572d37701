package queue

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/supportgate/supportgate/store"
)

// LifecycleStore is what Lifecycle needs of the store: the queue's writes
// that carry the team's events, and AddEvent for a notice that changes no
// row.
type LifecycleStore interface {
	MarkBounced(ctx context.Context, r store.RecipientKey, lastError string, now time.Time, ev store.Event) (bool, error)
	RetryNow(ctx context.Context, queueID int64, now time.Time) (int, error)
	Drop(ctx context.Context, queueID int64, reason string, now time.Time, event func(store.QueuedRecipient) store.Event) ([]store.QueuedRecipient, error)
	AddEvent(ctx context.Context, ev store.Event) (int64, error)
}

// Lifecycle changes queued recipients from outside the worker: a bounce or
// a delay notice the MX received (gateway/bounce.go parses it), an admin's
// retry and drop (the CLI). Each method is one store write, the state and
// the team's events together (DESIGN.md §9: the team hears of every
// failure), so that no failure between two writes can leave a failed or
// dropped recipient the team never heard of.
type Lifecycle struct {
	Store LifecycleStore
}

// Report is what a remote report (a DSN, RFC 3464, or a plain bounce) says
// of one recipient.
type Report struct {
	// Answer is the remote answer in one line (status and diagnostic);
	// "" for a report that gives none.
	Answer string
	// Detail is the body of the team's event: the report's fields and text.
	Detail string
}

func (r Report) answer() string {
	return cmp.Or(r.Answer, "a bounce without a status")
}

// Bounced marks target failed because of a bounce, whatever its state but
// dropped, with a "delivery-failed" event (issue 13). It returns false when
// nothing changed: a repeated bounce records nothing.
func (l Lifecycle) Bounced(ctx context.Context, target store.QueuedRecipient, rep Report, now time.Time) (bool, error) {
	answer := rep.answer()
	return l.Store.MarkBounced(ctx, target.Key(), "bounced: "+answer, now, store.Event{
		Conversation: target.Conversation, Type: "delivery-failed",
		Text: "Delivery to " + target.Recipient + " failed (" + answer + ")", Detail: rep.Detail, At: now})
}

// Delayed records a remote delay notice of target as a "delivery-delayed"
// event. The recipient's row does not change: the remote took the message,
// and only a later bounce can still fail it.
func (l Lifecycle) Delayed(ctx context.Context, target store.QueuedRecipient, rep Report, now time.Time) error {
	_, err := l.Store.AddEvent(ctx, store.Event{Conversation: target.Conversation, Type: "delivery-delayed",
		Text: "Delivery to " + target.Recipient + " is delayed (" + rep.answer() + ")", Detail: rep.Detail, At: now})
	return err
}

// RetryNow makes the recipients of queue entry queueID that are not
// delivered due at now, failed and dropped ones included, with a new
// give-up period (DESIGN.md §11, `supportgate queue retry`); it returns how
// many.
func (l Lifecycle) RetryNow(ctx context.Context, queueID int64, now time.Time) (int, error) {
	return l.Store.RetryNow(ctx, queueID, now)
}

// Drop is an admin's drop of queue entry queueID (`supportgate queue
// drop`): its queued recipients end dropped with reason, and each one's
// conversation gets a "delivery-dropped" event naming the recipient, its
// attempts and its last remote answer, in the same transaction. It returns
// the dropped recipients with that last answer.
func (l Lifecycle) Drop(ctx context.Context, queueID int64, reason string, now time.Time) ([]store.QueuedRecipient, error) {
	return l.Store.Drop(ctx, queueID, reason, now, func(r store.QueuedRecipient) store.Event {
		return store.Event{Conversation: r.Conversation, Type: "delivery-dropped",
			Text: "Delivery to " + r.Recipient + " was dropped by an admin; it will not be sent",
			Detail: fmt.Sprintf("Recipient: %s\nAttempts: %d\nLast remote answer: %s", r.Recipient, r.Attempts,
				cmp.Or(r.LastError, "none (never attempted)")), At: now}
	})
}
