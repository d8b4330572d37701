package store

import (
	"context"
	"time"
)

// ConversationStore is the conversation-management part of the store
// (DESIGN.md §3 item 4, §5, §7): events, followers, policies.
type ConversationStore interface {
	// AddEvent records a team-only event in a conversation (kind "event"):
	// participant added or removed, assigned, closed, delivery failed...
	// It never reopens the conversation and is never sent.
	AddEvent(ctx context.Context, ev Event) (message int64, err error)
}

// Event is a team-only record in a conversation.
type Event struct {
	Conversation int64
	Type         string // a short machine name: "delivery-failed", "participant-added", ...
	Text         string // one line for the subject; control characters are replaced
	Detail       string // the body: any text, e.g. the remote server's whole answer
	At           time.Time
}
