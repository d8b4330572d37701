package store

import "context"

// QueueStore is the outbound queue's part of the store (DESIGN.md §9).
type QueueStore interface {
	// PendingDeliveries returns up to limit queued messages whose recipients
	// are not all done, oldest first.
	PendingDeliveries(ctx context.Context, limit int) ([]Delivery, error)
	// MarkDelivered marks every recipient of a queued message delivered.
	MarkDelivered(ctx context.Context, queueID int64) error
}
