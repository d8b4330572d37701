// Package store is supportgate's engine-neutral durable model (DESIGN.md
// §12): conversations, messages (raw bytes kept exactly as they arrived or
// left), the Message-ID index, participants, per-agent mailbox state, the
// outbound queue, and the typed change feed (feed.go, hub.go) that tells
// IMAP sessions and the queue what was committed.
//
// It owns the contract, not an engine: Store is what an engine implements
// (store/sqlite for one node, store/postgres for several), and
// consumers.go gives each consumer its own small part of it (Mail for the
// MX and submission, Workspace for IMAP, Desk for the helpdesk's use cases,
// Deliveries and QueueAdmin for the queue, Reports for the command line,
// Counts for /metrics, Wiring for the daemon's main). store/storetest is
// the conformance suite every engine passes. Nothing here is
// engine-specific: numbers are int64, times are time.Time, there are no SQL
// fragments. It imports domain and the standard library only; the engines
// import it, never the reverse.
//
// The domain types (Conversation, Message, Kind, Status, SenderRole and
// their constants, ErrNotFound) live in package domain, where threading,
// policy and the engines can all import them without linking an engine.
// The store's names for them (store.Conversation, store.KindReply, ...) are
// type aliases and re-exported constants of the same values.
//
// Durability: every write method returns only after the transaction is
// durably committed (SQLite WAL with synchronous=FULL; PostgreSQL's COMMIT
// with synchronous_commit on), so a caller may answer 250 as soon as it
// returns nil. A change of a conversation is one write with its events
// (UpdateConversation); there are no single-purpose setters.
//
// Mailbox UIDs follow DESIGN.md §13: each shared folder kind has one global
// entry sequence; a message gets the next number whenever it enters the
// folder, together with what decides visibility (its inbox). An agent's view
// of the folder is the entries of the inboxes they may see, in that order, so
// UIDs ascend and are never reused, and the store grows with messages, not
// with agents × messages. Numbers are given in commit order by every engine
// (the conformance suite checks it with concurrent writers), so an
// incremental read (IncrementalEntries) never misses a lower UID committed
// later. UIDVALIDITY is fixed per agent and folder; it changes only when the
// set of inboxes the agent may see changes (otherwise older entries of a
// newly visible inbox would appear below UIDNEXT, which RFC 9051 2.3.1.1
// forbids).
package store

import (
	"context"
	"errors"
	"time"

	"github.com/supportgate/supportgate/domain"
)

// The domain types live in package domain, which the decisions (threading,
// policy) and the engines can all import; these aliases and re-exported
// constants keep the store's consumers compiling until they import domain
// directly.

// ErrNotFound is returned when the named conversation or message does not
// exist; it is domain.ErrNotFound.
var ErrNotFound = domain.ErrNotFound

// Kind is what a message is within a conversation (DESIGN.md §2).
type Kind = domain.Kind

// Message kinds.
const (
	KindInbound = domain.KindInbound
	KindReply   = domain.KindReply
	KindNote    = domain.KindNote
	KindEvent   = domain.KindEvent
	KindSide    = domain.KindSide
)

// Status of a conversation.
type Status = domain.Status

// Conversation statuses.
const (
	StatusOpen   = domain.StatusOpen
	StatusClosed = domain.StatusClosed
	StatusSpam   = domain.StatusSpam
)

// Folder names the shared folder kinds that have a global entry sequence.
type Folder string

// Shared folder kinds; the others are in workspace.go.
const (
	FolderInbox Folder = "INBOX"
)

// SenderRole is what the sender of an inbound message was to its
// conversation when it arrived (DESIGN.md §4).
type SenderRole = domain.SenderRole

// Sender roles.
const (
	SenderOwner       = domain.SenderOwner
	SenderParticipant = domain.SenderParticipant
	SenderAgent       = domain.SenderAgent
	SenderStranger    = domain.SenderStranger
	SenderFollower    = domain.SenderFollower
)

// Conversation is one customer request.
type Conversation = domain.Conversation

// Message is a stored message without its bytes.
type Message = domain.Message

// IsQueued reports whether an outbound message of kind k is queued for its
// recipients: a public reply, a side conversation's message (DESIGN.md §14)
// or a notification; never a note.
func IsQueued(k Kind) bool {
	return k == KindReply || k == KindSide || k == KindNotification
}

// Side is a side conversation (DESIGN.md §14).
type Side = domain.Side

// SideWrite records a message in side conversation Number of its
// conversation (Inbound.Side, Outbound.Side), in the same transaction:
// the side is created when it has no row yet, and Recipients and Hidden
// join its own (those already there are kept once).
type SideWrite struct {
	Number     int
	Recipients []string
	Hidden     []string
}

// Inbound is a message accepted by the MX, ready to be stored.
type Inbound struct {
	Inbox        string
	Conversation int64  // 0 starts a new conversation owned by Owner
	Owner        string // owner of a new conversation
	Subject      string // subject of a new conversation
	NormSubject  string // its normalized subject, for continuity
	Sender       string
	SenderRole   SenderRole
	// Reopen opens the conversation again if it is closed (a customer's
	// message; never an auto-reply).
	Reopen bool
	// NewStatus is the status of the conversation this message opens; ""
	// is open. It applies only when the message opens a new conversation
	// (Conversation 0, not a duplicate) and is ignored otherwise. A mail
	// quarantined by auth_failure (DESIGN.md §8) opens its conversation in
	// Spam in the same transaction that stores it, so that no crash or
	// failed second write leaves it in the agents' INBOX.
	NewStatus Status
	// NewAssignee and NewTags apply, like NewStatus, only to a conversation
	// this message opens: it is created assigned and tagged (inbox rules).
	NewAssignee string
	NewTags     []string
	// AssignInTurn, when set and NewAssignee is "", hands a conversation
	// this message opens to the next of its agents (round-robin), and
	// records the assignment as an event. InboundResult.Assignee says who.
	AssignInTurn *RoundRobin
	// NewParticipants join the conversation with this message, as many
	// as Cap allows counted in the storing transaction; those over it are
	// kept out and an event says so (two messages at once cannot pass it).
	NewParticipants []string
	Cap             ParticipantCap
	// Automatic: an auto-reply or a bounce (threading.IsAutoReply). It is
	// kept like any mail, but on its own it sends followers no
	// notification: an out-of-office answer is nobody's news.
	Automatic bool
	// NewFollowers follow it (agents the customer put in Cc, an inbox
	// rule's followers). When the message opens its conversation and is
	// not Automatic, they are told of it: their notice is pending from it
	// (DESIGN.md §7).
	NewFollowers []string
	// Events are recorded with the message (e.g. participants over the cap).
	Events []Event
	// Side, when set, stores the message as KindSide, an answer in that
	// side conversation (DESIGN.md §14), into Conversation: NewParticipants,
	// NewFollowers, Reopen and the New* fields are the caller's to leave
	// empty.
	Side *SideWrite
	// ServedReplyTo and ServedCut: MailboxEntry.ReplyTo and ReplyToCut (a
	// side conversation's answer is served with Reply-To its recipients,
	// DESIGN.md §6); "" for none.
	ServedReplyTo   string
	ServedCut       int64
	MessageIDHeader string   // without angle brackets; "" if the message has none
	SeenMessageIDs  []string // In-Reply-To and References, indexed for this conversation when unknown
	Raw             []byte
	Received        time.Time
}

// InboundResult says where an inbound message was stored.
type InboundResult struct {
	Conversation int64
	Message      int64
	Duplicate    bool // a message with that Message-ID was already stored; nothing was written
	// Assignee is the agent a conversation this message opened was
	// assigned to (Inbound.NewAssignee or AssignInTurn); "" otherwise.
	Assignee string
}

// Outbound is an agent's message, recorded in its conversation and queued in
// the same transaction.
type Outbound struct {
	Message      int64 // a number from NextMessageNumber
	Conversation int64
	// NewConversation, when set, creates Conversation (a number from
	// NextConversationNumber) in the same transaction.
	NewConversation *NewConversation
	Kind            Kind // KindReply or KindSide (queued) or KindNote (not queued)
	// Side, for KindSide, is the side conversation it belongs to.
	Side            *SideWrite
	Agent           string
	MessageIDHeader string
	Raw             []byte // the exact bytes that will be sent
	Received        time.Time
	MailFrom        string
	Recipients      []string // envelope recipients; empty for a note
	HiddenBCC       []string
	NewParticipants []string
	// Cap bounds the participants after NewParticipants join, counted in
	// the recording transaction: over it, ErrParticipantCap and nothing is
	// written (DESIGN.md §5 item 5).
	Cap ParticipantCap
	// Update changes the conversation in the same transaction, after the
	// message is recorded: the agent's quick actions (DESIGN.md §5 item 4).
	Update *ConversationUpdate
	// ClientMessageID is the Message-ID the agent's client gave the message
	// ("" if none): a second submission of it by the same agent is refused
	// with ErrDuplicateSubmission, and nothing is written.
	ClientMessageID string
	// ServedReplyTo and ServedCut: MailboxEntry.ReplyTo and ReplyToCut.
	ServedReplyTo string
	ServedCut     int64
	// Hold, when set, is the collision hold (DESIGN.md §5 item 10): if the
	// conversation has, after the message numbered Hold.After, an inbound
	// message of its owner or a participant or a public reply of an agent
	// other than Agent, AddOutbound writes nothing and returns ErrCollision.
	// Checked in the recording transaction, so that of two agents answering
	// the same message at once exactly one is recorded.
	Hold *Hold
}

// Hold is Outbound.Hold: the number of the message the agent answered.
type Hold struct {
	After int64
}

// ErrCollision is returned by AddOutbound when its Hold finds that someone
// wrote in the conversation since the message the agent answered; nothing was
// written.
var ErrCollision = errors.New("store: someone wrote in the conversation since the message answered")

// ParticipantCap is a conversation's participant limit (an inbox's
// max_participants, not counting the owner); the zero value is no limit.
type ParticipantCap struct {
	Max     int
	Enforce bool
}

// ErrParticipantCap is returned when recording a message would take a
// conversation over its ParticipantCap; nothing was written.
var ErrParticipantCap = errors.New("store: the conversation would have more participants than its inbox allows")

// NewConversation describes a conversation an agent starts by writing to a
// customer (DESIGN.md §5 item 1).
type NewConversation struct {
	Inbox       string
	Owner       string
	Subject     string
	NormSubject string
	Assignee    string // "" for none
}

// Delivery is one queued outbound message with its pending recipients.
type Delivery struct {
	ID         int64 // queue id
	Message    int64
	MailFrom   string
	Recipients []string
	Raw        []byte
}

// MailboxEntry is one message as an agent's folder shows it.
type MailboxEntry struct {
	UID          uint32
	Message      int64
	Conversation int64
	Kind         Kind
	SenderRole   SenderRole // for inbound messages
	Size         int64      // size of the stored bytes
	Received     time.Time
	HiddenBCC    []string
	Side         int  // for KindSide: its side conversation's number
	Seen         bool // for the agent who asked
	// Flags are the entry's other flags for the agent who asked: in a
	// shared folder the conversation's keywords (\Flagged, tags...),
	// \Answered when a public reply followed the message, the agent's own
	// keywords (policy.IsClientKeyword) and the agent's \Deleted, in that
	// order; in a private mailbox its own.
	Flags []string
	// ReplyTo, when set, is the Reply-To the served copy carries instead of
	// the stored copy's Reply-To fields, which are ReplyToCut bytes of it
	// (DESIGN.md §6: Reply on an agent's message in a mail client).
	ReplyTo    string
	ReplyToCut int64
	// ModSeq is the entry's mod-sequence for the agent who asked (RFC 7162
	// 3.1, sqlite_modseq.go): at least 1, larger after every change of
	// what they see of its flags.
	ModSeq int64
}

// MailboxView selects an agent's view of a shared folder.
type MailboxView struct {
	Agent   string
	Folder  Folder
	Inboxes []string // the inboxes the agent may see
	// Name keys the view's UIDVALIDITY when it is not the folder's own
	// name (an agent's per-inbox folder "Inboxes/<address>").
	Name string
}

// Store is the durable model. All methods are safe for concurrent use.
//
// It is what an engine implements (store/sqlite, store/postgres) and what
// store/storetest checks; consumers take their own part of it
// (consumers.go: Mail, Workspace, Desk, Deliveries, QueueAdmin, Reports,
// Counts), and only the daemon's wiring holds the whole.
type Store interface {
	QueueStore
	WorkspaceStore
	ConversationStore
	NoticeStore
	IncrementalEntries
	TextSearch
	Wiring
	RateCounter

	// ConversationCounts counts the conversations by status (the
	// supportgate_conversations gauge).
	ConversationCounts(ctx context.Context) (map[Status]int64, error)

	// ConversationByMessageID returns the conversation of the first of ids
	// (each without angle brackets) found in the Message-ID index.
	ConversationByMessageID(ctx context.Context, ids []string) (conv int64, found bool, err error)
	// Conversation returns a conversation with its participants, or ErrNotFound.
	Conversation(ctx context.Context, id int64) (Conversation, error)
	// ContinuityCandidate returns the most recently updated open conversation
	// of an owner in an inbox with that normalized subject, updated at or
	// after since (DESIGN.md §4 rule 4).
	ContinuityCandidate(ctx context.Context, inbox, owner, normSubject string, since time.Time) (conv int64, found bool, err error)
	// Message returns a message's metadata, or ErrNotFound.
	Message(ctx context.Context, id int64) (Message, error)
	// MessageByHeaderID returns the stored message with that Message-ID
	// (without angle brackets), or ErrNotFound.
	MessageByHeaderID(ctx context.Context, id string) (Message, error)
	// MessageRaw returns a message's stored bytes, or ErrNotFound.
	MessageRaw(ctx context.Context, id int64) ([]byte, error)

	// AddInbound stores an inbound message durably. A message whose
	// Message-ID was stored before is not stored twice (DESIGN.md §3 item 5).
	AddInbound(ctx context.Context, in Inbound) (InboundResult, error)
	// NextMessageNumber reserves a message number, so that a message's
	// signed Message-ID can be built before it is recorded.
	NextMessageNumber(ctx context.Context) (int64, error)
	// NextConversationNumber reserves a conversation number for an
	// outbound message that starts a conversation.
	NextConversationNumber(ctx context.Context) (int64, error)
	// AddOutbound records an agent's message and, for a reply, queues it
	// for its recipients, in one durable transaction.
	AddOutbound(ctx context.Context, out Outbound) error

	// UIDValidity returns the UIDVALIDITY of the view, creating it on first
	// use and changing it when the set of visible inboxes changes.
	UIDValidity(ctx context.Context, view MailboxView) (uint32, error)
	// Entries returns the view's messages in UID order and the UIDNEXT.
	Entries(ctx context.Context, view MailboxView) (entries []MailboxEntry, uidNext uint32, err error)
	// SetSeen adds or removes the agent's \Seen flag on messages.
	SetSeen(ctx context.Context, agent string, messages []int64, seen bool) error

	// Feed: the committed changes, to subscribe to what one shows
	// (feed.go, DESIGN.md §13).
	Feed

	// QueueAutoAck records and queues an automatic acknowledgement (as
	// AddOutbound), counts it against the daily limit of its inbox and
	// recipient, and records it as its conversation's acknowledgement, all
	// in one durable transaction (DESIGN.md §7, §8). It writes nothing and
	// says why when that conversation has an acknowledgement already, or
	// when ack.Limit of them were sent from that inbox to that recipient in
	// the 24 hours before ack.Outbound.Received. A crash or an error leaves
	// all of it or none: never a used-up claim without its message, nor a
	// message without its record. The count is durable, so a restart does
	// not reset it (sqlite_autoack.go).
	QueueAutoAck(ctx context.Context, ack AutoAck) (AutoAckOutcome, error)
	// AutoAcksSent counts the acknowledgements QueueAutoAck recorded from
	// inbox to recipient in the 24 hours before now: a read, to skip
	// building an acknowledgement the limit would refuse; QueueAutoAck
	// still decides.
	AutoAcksSent(ctx context.Context, inbox, recipient string, now time.Time) (int, error)
	// AutoAckOf returns the automatic acknowledgement QueueAutoAck recorded
	// for conv: its message, or found false when there is none.
	AutoAckOf(ctx context.Context, conv int64) (message int64, found bool, err error)
	// OpenedConversation reports whether message is an inbound message that
	// opened its conversation (its first), or ErrNotFound.
	OpenedConversation(ctx context.Context, message int64) (bool, error)
}

// AutoAck is an automatic acknowledgement for QueueAutoAck.
type AutoAck struct {
	// Inbox and Recipient key the daily limit (compared case-insensitively);
	// Limit is how many acknowledgements they may have in 24 hours.
	Inbox     string
	Recipient string
	Limit     int
	// Outbound is the message, a reply queued to Recipient; its
	// Conversation is the conversation acknowledged, and its Received the
	// time the limit counts from.
	Outbound Outbound
}

// AutoAckOutcome says what QueueAutoAck did.
type AutoAckOutcome int

// QueueAutoAck outcomes.
const (
	AutoAckQueued       AutoAckOutcome = iota + 1 // recorded and queued
	AutoAckLimitReached                           // nothing written: the daily limit is reached
	AutoAckAlreadySent                            // nothing written: the conversation has one
)

// RoundRobin names the agents a new conversation is handed to in turn.
type RoundRobin struct {
	Agents []string // in the configuration's order
	// QuietEvent records the assignment in the events log only, not as a
	// message in the conversation (an inbox without show_events).
	QuietEvent bool
}

// MetaFunc computes a message's FETCH metadata from its stored bytes.
type MetaFunc func(raw []byte) []byte

// ErrDuplicateSubmission is returned by AddOutbound when the agent's client
// submitted a message with the same Message-ID before: it was recorded
// (and sent) then, and nothing is written now.
var ErrDuplicateSubmission = errors.New("store: this message was submitted before")
