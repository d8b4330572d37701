package store

import (
	"context"
	"errors"
	"time"
)

// ConversationStore is the conversation-management part of the store
// (DESIGN.md §3 item 4, §5, §7): events, followers, policies.
type ConversationStore interface {
	// Submitted returns the message an agent's client submitted with this
	// Message-ID (Outbound.ClientMessageID), if there is one.
	Submitted(ctx context.Context, agent, clientMessageID string) (Message, bool, error)
	// AddEvent records a team-only event in a conversation (kind "event"):
	// participant added or removed, assigned, closed, delivery failed...
	// It never reopens the conversation and is never sent.
	// It returns the event's message, 0 for a quiet event.
	AddEvent(ctx context.Context, ev Event) (message int64, err error)
	// Events returns a conversation's events, oldest first.
	Events(ctx context.Context, conv int64) ([]Event, error)
	// UpdateConversation applies u in one transaction.
	UpdateConversation(ctx context.Context, u ConversationUpdate) error
	// UpdateConversations applies every update of us, each with its
	// events, in one transaction: all or none (an IMAP command that
	// changes many conversations, issue 18).
	UpdateConversations(ctx context.Context, us []ConversationUpdate) error
	// ListConversations returns a page of up to limit conversations
	// numbered below before (0: from the newest), highest number (the
	// newest) first; status "" lists every status. next is the before of
	// the following page, 0 when this page is the last.
	//
	// The order is by number, not by the last update: a conversation's
	// number never changes, so paging is stable under concurrent writes.
	// Every conversation that exists when the first page is read and has
	// the status when its page is read is listed, each once; ordered by
	// update, one updated meanwhile would jump ahead of the pages read and
	// be missed.
	ListConversations(ctx context.Context, status Status, before int64, limit int) (list []Conversation, next int64, err error)
	// ConversationMessages returns a conversation's messages, oldest first.
	ConversationMessages(ctx context.Context, conv int64) ([]Message, error)
	// Collisions returns what holds a reply of agent answering hold.After
	// in conv (DESIGN.md §5 item 10): the customer's or a participant's
	// mail and other agents' public replies written after it, newest
	// first, at most limit. It is the condition AddOutbound checks for a
	// Hold, read without the conversation's other messages, so that its
	// cost does not grow with the conversation.
	Collisions(ctx context.Context, conv int64, hold Hold, agent string, limit int) ([]Message, error)
	// Sides returns a conversation's side conversations (DESIGN.md §14),
	// by number.
	Sides(ctx context.Context, conv int64) ([]Side, error)
	// MergeConversation moves every message, event, participant (the
	// merged conversation's owner too, when it is not the target's),
	// follower, tag and side conversation of m.From into m.Into in one
	// transaction (DESIGN.md §14): the messages leave From's folder entries
	// and get new UIDs in Into's; From keeps no message and from then on
	// answers to Into (Conversation(From) returns Into's). Over m.Cap
	// everyone is kept, and an event says so. Nothing is deleted. It
	// returns ErrNotFound when either does not exist, ErrMergeSelf when
	// they are the same conversation (after following earlier merges).
	MergeConversation(ctx context.Context, m Merge) error
}

// Merge is MergeConversation's change: its Events are recorded in Into,
// FromEvent (always quiet: From shows no message) in From.
type Merge struct {
	From, Into int64
	Events     []Event
	FromEvent  Event
	Cap        ParticipantCap
}

// ErrMergeSelf is returned when a conversation would merge into itself.
var ErrMergeSelf = errors.New("store: a conversation cannot merge into itself")

// ConversationUpdate changes a conversation's people and policies, with
// the events that record it.
type ConversationUpdate struct {
	Conversation       int64
	AddParticipants    []string
	RemoveParticipants []string
	AddFollowers       []string
	RemoveFollowers    []string
	ReadOnly           *bool
	// AddTags, RemoveTags, Assignee ("" none) and Status apply in this
	// order, after the above (an agent's quick actions, DESIGN.md §5
	// item 4, in one transaction).
	AddTags    []string
	RemoveTags []string
	Assignee   *string
	Status     *Status
	Events     []Event // their Conversation is set to Conversation
}

// Event is a team-only record in a conversation.
type Event struct {
	Conversation int64
	Type         string // a short machine name: "delivery-failed", "participant-added", ...
	Text         string // one line for the subject; control characters are replaced
	Detail       string // the body: any text, e.g. the remote server's whole answer
	At           time.Time
	// Quiet events are only logged (Events), not shown as a message: for
	// inboxes without show_events. Delivery failures are never quiet.
	Quiet bool
}
