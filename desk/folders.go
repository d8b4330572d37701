package desk

import (
	"context"
	"fmt"
	"strings"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
)

// Trash names the agent's private Trash among the folders a message can be
// moved into (Move): moving a conversation's message there closes it
// (DESIGN.md §6). The other destinations are the shared folders.
const Trash store.Folder = store.MailboxTrash

// Move carries out what moving a message of a conversation into dest means
// to the whole conversation (DESIGN.md §6): Mine assigns it to the agent and
// Unassigned removes the assignee, both opening it; Closed closes; Spam
// marks spam; Trash closes; INBOX (and Inboxes/...) opens.
func (d *Desk) Move(ctx context.Context, agent config.Agent, conv int64, dest store.Folder) error {
	return d.MoveAll(ctx, agent, []int64{conv}, dest)
}

// MoveAll is Move of each conversation of convs, in one transaction.
func (d *Desk) MoveAll(ctx context.Context, agent config.Agent, convs []int64, dest store.Folder) error {
	c := moveChange(agent, dest)
	return d.commitAll(ctx, convs, func(int64) change { return c })
}

// moveChange is what moving a conversation's message into dest changes.
func moveChange(agent config.Agent, dest store.Folder) change {
	var u store.ConversationUpdate
	open, closed, spam, none := store.StatusOpen, store.StatusClosed, store.StatusSpam, ""
	var text string
	switch dest {
	case Trash:
		u.Status, text = &closed, "moved it to Trash: closed"
	case store.FolderMine:
		me := agent.Email
		u.Assignee, u.Status, text = &me, &open, "took it (Mine): assigned to them"
	case store.FolderUnassigned:
		u.Assignee, u.Status, text = &none, &open, "moved it to Unassigned: no assignee"
	case store.FolderClosed:
		u.Status, text = &closed, "closed it"
	case store.FolderSpam:
		u.Status, text = &spam, "marked it spam"
	default: // INBOX, Inboxes/...
		u.Status, text = &open, "reopened it"
	}
	return change{update: u, eventType: "folder-action", text: agent.Email + " " + text}
}

// Expunge carries out what an EXPUNGE of a conversation's \Deleted messages
// in a shared folder means to the conversation (DESIGN.md §6: nothing of a
// conversation is ever destroyed by an agent): in Mine it removes the
// assignee; in INBOX (and Inboxes/...) or Unassigned it closes. In Closed
// or Spam an EXPUNGE only hides the conversation from that agent's view, a
// mark of the agent's and no change of the conversation: not the desk's.
func (d *Desk) Expunge(ctx context.Context, agent config.Agent, conv int64, from store.Folder) error {
	return d.ExpungeAll(ctx, agent, []int64{conv}, from)
}

// ExpungeAll is Expunge of each conversation of convs, in one transaction.
func (d *Desk) ExpungeAll(ctx context.Context, agent config.Agent, convs []int64, from store.Folder) error {
	var u store.ConversationUpdate
	var text string
	switch from {
	case store.FolderMine:
		none := ""
		u.Assignee, text = &none, "expunged it from Mine: no assignee"
	case store.FolderInbox, store.FolderUnassigned:
		closed := store.StatusClosed
		u.Status, text = &closed, "expunged it from "+string(from)+": closed"
	default:
		return fmt.Errorf("desk: an EXPUNGE in %s changes no conversation", from)
	}
	c := change{update: u, eventType: "folder-action", text: agent.Email + " " + text}
	return d.commitAll(ctx, convs, func(int64) change { return c })
}

// KeywordOp is how a STORE changes keywords (RFC 9051 6.4.6).
type KeywordOp int

// The ways of changing keywords: +FLAGS, -FLAGS, FLAGS.
const (
	AddKeywords KeywordOp = iota + 1
	RemoveKeywords
	SetKeywords
)

// Keywords changes a conversation's shared keywords (DESIGN.md §6: \Flagged
// and keywords belong to the conversation; a keyword is a tag): op applies
// keywords; for SetKeywords, drop are the keywords the client saw on the
// conversation that the new set leaves out, which are removed. A change of
// nothing (no keywords, nothing to drop) writes nothing.
func (d *Desk) Keywords(ctx context.Context, agent config.Agent, conv int64, op KeywordOp, keywords, drop []string) error {
	return d.KeywordsAll(ctx, agent, []int64{conv}, op, keywords, func(int64) []string { return drop })
}

// KeywordsAll is Keywords of each conversation of convs, in one
// transaction; drop gives each conversation's keywords to drop.
func (d *Desk) KeywordsAll(ctx context.Context, agent config.Agent, convs []int64, op KeywordOp, keywords []string, drop func(conv int64) []string) error {
	changes := map[int64]change{}
	var changed []int64
	for _, conv := range convs {
		c, ok, err := keywordChange(agent, op, keywords, drop(conv))
		if err != nil {
			return err
		}
		if ok {
			changes[conv] = c
			changed = append(changed, conv)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	return d.commitAll(ctx, changed, func(conv int64) change { return changes[conv] })
}

// keywordChange is what a keyword operation changes of a conversation,
// false when nothing.
func keywordChange(agent config.Agent, op KeywordOp, keywords, drop []string) (change, bool, error) {
	var u store.ConversationUpdate
	var verb string
	switch op {
	case AddKeywords:
		u.AddTags, verb = keywords, "added"
	case RemoveKeywords:
		u.RemoveTags, verb = keywords, "removed"
	case SetKeywords:
		u.AddTags, u.RemoveTags, verb = keywords, drop, "set"
	default:
		return change{}, false, fmt.Errorf("desk: unknown keyword operation %d", op)
	}
	said := keywords
	if len(keywords) == 0 {
		if op != SetKeywords || len(drop) == 0 {
			return change{}, false, nil
		}
		verb, said = "removed", drop // a FLAGS that only takes keywords away
	}
	return change{update: u, eventType: "tags-changed", text: agent.Email + " " + verb + " " + strings.Join(said, " ")}, true, nil
}

// Flag sets or clears a conversation's shared \Flagged, the keyword
// (DESIGN.md §6).
func (d *Desk) Flag(ctx context.Context, agent config.Agent, conv int64, on bool) error {
	op := AddKeywords
	if !on {
		op = RemoveKeywords
	}
	return d.Keywords(ctx, agent, conv, op, []string{store.KeywordFlagged}, nil)
}
