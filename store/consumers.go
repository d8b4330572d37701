package store

import (
	"context"
	"time"
)

// What each consumer needs of the store (DESIGN.md §12: small interfaces,
// one per consumer). A consumer takes its own interface, never the whole
// Store, so that what it may do is read in one place and a test double
// implements only that. Every engine implements all of them through Store;
// the methods' contracts are documented where Store's groups declare them.

// Deliveries is what the outbound queue's workers need (package queue):
// claims and outcomes, the message bytes, and the queue's changes.
type Deliveries interface {
	DueRecipients(ctx context.Context, now time.Time, limit int) ([]QueuedRecipient, error)
	NextAttempt(ctx context.Context) (next time.Time, found bool, err error)
	BeginAttempts(ctx context.Context, claims []Claim, now time.Time) (claimed []bool, err error)
	FinishAttempt(ctx context.Context, r RecipientKey, res AttemptResult) (bool, error)
	PendingDeliveries(ctx context.Context, limit int) ([]Delivery, error)
	MarkDelivered(ctx context.Context, queueID int64) error
	QueueCounts(ctx context.Context) (map[RecipientState]int64, error)
	MessageRaw(ctx context.Context, id int64) ([]byte, error)
	Feed
}

// QueueAdmin is what changes the queue from outside its workers
// (queue.Lifecycle): a bounce or delay notice the MX received, an admin's
// retry and drop, each one transaction with its events.
type QueueAdmin interface {
	MarkBounced(ctx context.Context, r RecipientKey, lastError string, now time.Time, ev Event) (bool, error)
	RetryNow(ctx context.Context, queueID int64, now time.Time) (int, error)
	Drop(ctx context.Context, queueID int64, reason string, now time.Time, event func(QueuedRecipient) Event) ([]QueuedRecipient, error)
	AddEvent(ctx context.Context, ev Event) (message int64, err error)
}

// Desk is what the helpdesk's use cases need (package desk): a
// conversation, and its change in one transaction with its events.
type Desk interface {
	Conversation(ctx context.Context, id int64) (Conversation, error)
	UpdateConversation(ctx context.Context, u ConversationUpdate) error
	UpdateConversations(ctx context.Context, us []ConversationUpdate) error
	MergeConversation(ctx context.Context, m Merge) error
}

// Reports is what the command line reads (internal/cli): conversations and
// the queue, in pages.
type Reports interface {
	ListConversations(ctx context.Context, status Status, before int64, limit int) (list []Conversation, next int64, err error)
	Conversation(ctx context.Context, id int64) (Conversation, error)
	ConversationMessages(ctx context.Context, conv int64) ([]Message, error)
	Sides(ctx context.Context, conv int64) ([]Side, error)
	Events(ctx context.Context, conv int64) ([]Event, error)
	QueuePage(ctx context.Context, q QueuePageQuery) ([]QueuedRecipient, error)
}

// Counts is what /metrics reads (internal/metrics).
type Counts interface {
	QueueCounts(ctx context.Context) (map[RecipientState]int64, error)
	ConversationCounts(ctx context.Context) (map[Status]int64, error)
}

// Workspace is what the agents' IMAP sessions need (gateway/imapgw): views
// of the shared folders read in full or incrementally, an agent's own state
// of them, private mailboxes, message bytes and FETCH metadata, and the
// changes of what a session shows. The changes of conversations a folder
// move or a flag means go through Desk.
type Workspace interface {
	WorkspaceStore
	IncrementalEntries
	TextSearch
	Feed
	UIDValidity(ctx context.Context, view MailboxView) (uint32, error)
	Entries(ctx context.Context, view MailboxView) (entries []MailboxEntry, uidNext uint32, err error)
	SetSeen(ctx context.Context, agent string, messages []int64, seen bool) error
	Conversation(ctx context.Context, id int64) (Conversation, error)
	MessageRaw(ctx context.Context, id int64) ([]byte, error)
}

// Mail is what the MX and submission need (package gateway): threading's
// lookups (threading.Index), storing inbound and outbound messages,
// automatic acknowledgements and the followers' notices.
type Mail interface {
	NoticeStore
	ConversationByMessageID(ctx context.Context, ids []string) (conv int64, found bool, err error)
	ContinuityCandidate(ctx context.Context, inbox, owner, normSubject string, since time.Time) (conv int64, found bool, err error)
	Conversation(ctx context.Context, id int64) (Conversation, error)
	Message(ctx context.Context, id int64) (Message, error)
	MessageByHeaderID(ctx context.Context, id string) (Message, error)
	MessageRaw(ctx context.Context, id int64) ([]byte, error)
	MessageRecipients(ctx context.Context, message int64) ([]QueuedRecipient, error)
	// Collisions: what was written since the message a held reply
	// answered (DESIGN.md §5 item 10).
	Collisions(ctx context.Context, conv int64, hold Hold, agent string, limit int) ([]Message, error)
	// Sides: the side conversations a side message goes on in (§14).
	Sides(ctx context.Context, conv int64) ([]Side, error)
	Submitted(ctx context.Context, agent, clientMessageID string) (Message, bool, error)
	AddInbound(ctx context.Context, in Inbound) (InboundResult, error)
	NextMessageNumber(ctx context.Context) (int64, error)
	NextConversationNumber(ctx context.Context) (int64, error)
	AddOutbound(ctx context.Context, out Outbound) error
	QueueAutoAck(ctx context.Context, ack AutoAck) (AutoAckOutcome, error)
	AutoAcksSent(ctx context.Context, inbox, recipient string, now time.Time) (int, error)
	AutoAckOf(ctx context.Context, conv int64) (message int64, found bool, err error)
	OpenedConversation(ctx context.Context, message int64) (bool, error)
}

// Wiring is what only the daemon's wiring calls (cmd/supportgate): the
// FETCH metadata computed when a message is stored, the commit times
// /metrics observes, and closing the engine.
type Wiring interface {
	// SetMetaFunc sets what computes the FETCH metadata of every message
	// stored from now on (MessagesMeta); nil stops it.
	SetMetaFunc(f MetaFunc)
	// ObserveCommits sets a function given the duration of every durable
	// commit (supportgate_store_commit_seconds).
	ObserveCommits(f func(time.Duration))
	Close() error
}

// An engine's Store is every consumer's store.
var (
	_ Deliveries = Store(nil)
	_ QueueAdmin = Store(nil)
	_ Desk       = Store(nil)
	_ Reports    = Store(nil)
	_ Counts     = Store(nil)
	_ Workspace  = Store(nil)
	_ Mail       = Store(nil)
	_ Wiring     = Store(nil)
)
