// Package domain holds supportgate's domain types: what a conversation and
// its messages are, the kinds of message, the statuses of a conversation and
// the roles of a sender (DESIGN.md §2, §12). It imports nothing of
// supportgate and no engine, so that the decisions (threading, policy) and
// the store's engines can all import it; the dependencies point one way,
// every package to domain.
//
// Package store re-exports these names as aliases (store.Conversation is
// domain.Conversation) for the code that has not moved to domain yet.
package domain

import (
	"errors"
	"time"
)

// ErrNotFound is returned when the named conversation or message does not
// exist. store.ErrNotFound is the same value.
var ErrNotFound = errors.New("store: not found")

// Kind is what a message is within a conversation (DESIGN.md §2).
type Kind string

// Message kinds.
const (
	KindInbound Kind = "inbound" // from the owner, a participant or a stranger
	KindReply   Kind = "reply"   // an agent's public message, sent out
	KindNote    Kind = "note"    // internal, never leaves the team
	KindEvent   Kind = "event"   // a team-only record
	// KindSide is a message of a side conversation (DESIGN.md §14): an
	// agent's to a vendor or another team, or their answer; never sent to
	// the customer, never making anyone a participant.
	KindSide Kind = "side"

	// KindNotification is a notification mail to a follower (DESIGN.md
	// §7). It is recorded in its conversation so that the queue can
	// deliver it and a failure lands there, but it is in no folder, is no
	// update, and does not make the conversation recently updated.
	KindNotification Kind = "notification"
)

// IsUpdate reports whether a message of kind k is an update followers are
// told of (when a person wrote it).
func IsUpdate(k Kind) bool {
	return k == KindInbound || k == KindReply || k == KindNote || k == KindSide
}

// Status of a conversation.
type Status string

// Conversation statuses.
const (
	StatusOpen   Status = "open"
	StatusClosed Status = "closed"
	StatusSpam   Status = "spam"
)

// SenderRole is what the sender of an inbound message was to its
// conversation when it arrived (DESIGN.md §4).
type SenderRole string

// Sender roles.
const (
	SenderOwner       SenderRole = "owner"
	SenderParticipant SenderRole = "participant"
	SenderAgent       SenderRole = "agent"
	SenderStranger    SenderRole = "stranger" // neither: kept and flagged for the team
	// SenderFollower: an internal person who follows the conversation
	// (answering a notification): their mail is kept for the team and
	// never makes them a participant, whom customers would see.
	SenderFollower SenderRole = "follower"
)

// Conversation is one customer request.
type Conversation struct {
	ID           int64
	Inbox        string // the support address it belongs to
	Owner        string // the customer who started it
	Subject      string
	Status       Status
	Created      time.Time
	Updated      time.Time
	Participants []string // further addresses, in the order they were added
	Assignee     string   // agent email, "" for none
	Tags         []string // sorted; IMAP keywords
	Flagged      bool     // \Flagged, shared by the team
	ReadOnly     bool     // participants' mail is refused (DESIGN.md §7)
	Followers    []string // notified of updates, never visible to customers
}

// Message is a stored message without its bytes.
type Message struct {
	ID              int64
	Conversation    int64
	Kind            Kind
	Sender          string     // the address it came from (agent email for replies)
	SenderRole      SenderRole // for inbound messages
	MessageIDHeader string     // the Message-ID without angle brackets, "" if none
	Received        time.Time
	Size            int64
	HiddenBCC       []string // for replies: envelope recipients not in the headers
	Side            int      // for KindSide: the side conversation's number (DESIGN.md §14)
}

// Side is a side conversation of a conversation (DESIGN.md §14): its own
// recipients, never the customer's nor the participants'.
type Side struct {
	Conversation int64
	Number       int      // 1, 2... within the conversation
	Recipients   []string // who its messages go to, in the order they joined
	Hidden       []string // Bcc recipients: visible to agents only
}
