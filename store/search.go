package store

import (
	"context"

	"github.com/supportgate/supportgate/store/searchtext"
)

// TextSearch narrows IMAP SEARCH's header and text keys with an index kept
// in each message's own transaction (DESIGN.md §13, "A million messages").
type TextSearch interface {
	// SearchCandidates returns the stored messages that may match every
	// key: every message that does is among them (the index narrows, the
	// caller confirms each by its own evaluation), in no order. Keys whose
	// value is shorter than searchtext.Narrows needs are ignored; with none
	// left, found is false and the caller evaluates every message.
	SearchCandidates(ctx context.Context, keys []searchtext.Key) (ids []int64, found bool, err error)
}
