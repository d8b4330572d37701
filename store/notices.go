package store

import (
	"context"
	"time"

	"github.com/supportgate/supportgate/domain"
)

// Follower notifications (DESIGN.md §7): a follower of a conversation is
// told of its updates (inbound mail, replies, notes) by a notification
// mail, batched. The store keeps, per follower and conversation, how far
// they were told and when; the schedule is policy.NoticeDue's, the mail
// policy.Notification's, the loop gateway/notify.go's.

// KindNotification is a notification mail to a follower: domain.KindNotification.
const KindNotification = domain.KindNotification

// IsUpdate reports whether a message of kind k is an update followers are
// told of (when a person wrote it: sqlite_notices.go, updateOf); it is
// domain.IsUpdate.
func IsUpdate(k Kind) bool { return domain.IsUpdate(k) }

// Notice is a follower's notification state in one conversation.
type Notice struct {
	Conversation int64
	Follower     string
	// Since is the conversation's last message when they began to follow:
	// nothing before it is news to them.
	Since int64
	// NotifiedThrough: updates up to this message were notified, or read
	// before a notification was due.
	NotifiedThrough int64
	// PendingSince is when the first update after NotifiedThrough arrived;
	// zero when none is waiting.
	PendingSince time.Time
	LastSent     time.Time   // the last notification; zero: never
	SentTimes    []time.Time // notifications of the last 24 hours, oldest first
}

// NoticeUpdate is one update a follower may be told of.
type NoticeUpdate struct {
	Message
	Seen bool // the follower, an agent, has \Seen on it
}

// Notification is a notification mail to queue, with the state it settles.
type Notification struct {
	Conversation int64
	Follower     string
	// Through is the last update it tells of: NotifiedThrough afterwards.
	Through  int64
	Outbound Outbound // kind KindNotification, one recipient: the follower
}

// NoticeStore is the notification part of the store.
type NoticeStore interface {
	// PendingNotices returns the notices with updates waiting.
	PendingNotices(ctx context.Context) ([]Notice, error)
	// NoticeUpdates returns conv's updates after message after that the
	// follower did not write, oldest first, and the follower's last
	// message in conv (0: none).
	NoticeUpdates(ctx context.Context, conv int64, follower string, after int64) (updates []NoticeUpdate, lastWrote int64, err error)
	// SettleNotice marks the updates through message through as needing
	// no notification (the follower read them). ErrNotFound when they no
	// longer follow.
	SettleNotice(ctx context.Context, conv int64, follower string, through int64) error
	// QueueNotification records and queues a notification and settles the
	// notice in one transaction. ErrNotFound when they no longer follow.
	QueueNotification(ctx context.Context, n Notification) error
}
