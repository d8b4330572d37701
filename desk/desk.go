// Package desk holds the helpdesk's use cases (DESIGN.md §12): every change
// of a conversation an agent makes — assign, close, reopen, spam, tags and
// \Flagged, participants, followers, read-only, what a folder move or an
// EXPUNGE means (§6), the quick actions at the top of a message (§5 item 4)
// — is one function here, committed as one store transaction
// (store.ConversationUpdate) together with the event that tells the team
// (§6: shown as a message when the inbox sets show_events, else only
// logged). IMAP (gateway/imapgw), submission (gateway) and the command line
// call it instead of chaining store writes of their own.
//
// What desk does not own: parsing and refusing in protocol terms (an SMTP
// 5xx, an IMAP NO [NOPERM]) and who may act — its callers check that, in
// their protocol's words, before they call; what is an agent's own and not a
// change of the conversation (\Seen, a client's bookkeeping keywords, the
// per-agent hide marks of an EXPUNGE in Closed or Spam), which stays in
// gateway/imapgw.
//
// Imports. Dependencies point one way (DESIGN.md §12): cmd → gateway → desk →
// (threading, policy, queue) → store. desk imports config, policy, domain and
// store (the engine-neutral contract), never gateway, imapgw or an engine
// (store/sqlite): the engine is whatever implements Store.
package desk

import (
	"context"
	"fmt"
	"time"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
)

// Store is what the desk needs of the store: to read a conversation (its
// inbox says whether events are shown) and to change it in one transaction
// with its events. Every engine's store implements it.
type Store = store.Desk

// Desk carries out the helpdesk's changes of conversations.
type Desk struct {
	store   Store
	current func() *config.Config
}

// New returns a desk working on st with the configuration current returns
// at each call (it follows a reload, SIGHUP).
func New(st Store, current func() *config.Config) *Desk {
	return &Desk{store: st, current: current}
}

// change is one change of a conversation and the event that records it.
type change struct {
	update    store.ConversationUpdate
	eventType string
	text      string // the event's text, who did what
}

// commit applies c to conversation conv in one transaction with its event,
// quiet unless the conversation's inbox sets show_events (DESIGN.md §6).
func (d *Desk) commit(ctx context.Context, conv int64, c change) error {
	u, err := d.prepare(ctx, conv, c)
	if err != nil {
		return err
	}
	if err := d.store.UpdateConversation(ctx, u); err != nil {
		return fmt.Errorf("desk: %s: %w", c.eventType, err)
	}
	return nil
}

// commitAll applies to each conversation of convs the change of, all in
// one transaction, each with its event: what one IMAP command does to the
// conversations of the messages it names (issue 18: a transaction each
// made a STORE on a hundred conversations wait for a hundred commits).
// A conversation named twice, or twice through a merge, changes once.
func (d *Desk) commitAll(ctx context.Context, convs []int64, of func(conv int64) change) error {
	if len(convs) == 1 {
		return d.commit(ctx, convs[0], of(convs[0]))
	}
	us := make([]store.ConversationUpdate, 0, len(convs))
	done := map[int64]bool{}
	var what string
	for _, conv := range convs {
		c := of(conv)
		u, err := d.prepare(ctx, conv, c)
		if err != nil {
			return err
		}
		if done[u.Conversation] {
			continue
		}
		done[u.Conversation] = true
		us = append(us, u)
		what = c.eventType
	}
	if len(us) == 0 {
		return nil
	}
	if err := d.store.UpdateConversations(ctx, us); err != nil {
		return fmt.Errorf("desk: %s: %w", what, err)
	}
	return nil
}

// prepare is c as an update of conversation conv, with its event.
func (d *Desk) prepare(ctx context.Context, conv int64, c change) (store.ConversationUpdate, error) {
	cv, err := d.store.Conversation(ctx, conv)
	if err != nil {
		return store.ConversationUpdate{}, fmt.Errorf("desk: reading conversation %d: %w", conv, err)
	}
	inbox, _ := d.current().Inbox(cv.Inbox) // an inbox no longer configured: quiet
	u := c.update
	u.Conversation = cv.ID // a merged number answers to its target (DESIGN.md §14)
	u.Events = []store.Event{{Type: c.eventType, Text: c.text, At: time.Now(), Quiet: !inbox.ShowEvents}}
	return u, nil
}
