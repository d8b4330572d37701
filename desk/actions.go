package desk

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/policy"
	"github.com/supportgate/supportgate/store"
)

// The quick actions (DESIGN.md §5 item 4) are the helpdesk's vocabulary of
// actions; each named action below is one of them applied alone, and
// records the same event ("quick-actions") as when an agent writes it.

// QuickActions carries out an agent's quick actions on a conversation, in
// one transaction with one event that lists them (an action-only message).
func (d *Desk) QuickActions(ctx context.Context, agent config.Agent, conv int64, actions []policy.Action) error {
	return d.commit(ctx, conv, quickActions(agent, actions))
}

// QuickActionsUpdate is the change quick actions make to a conversation of
// inbox, with the event that tells the team, for the caller to commit with
// the message that carried them (store.Outbound.Update: one transaction).
// Its Conversation is left for the caller to set.
func (d *Desk) QuickActionsUpdate(inbox config.Inbox, agent config.Agent, actions []policy.Action) store.ConversationUpdate {
	c := quickActions(agent, actions)
	u := c.update
	u.Events = []store.Event{{Type: c.eventType, Text: c.text, At: time.Now(), Quiet: !inbox.ShowEvents}}
	return u
}

// Assign assigns a conversation to an agent (their email), "me" to agent
// itself; "" or "none" removes the assignee.
func (d *Desk) Assign(ctx context.Context, agent config.Agent, conv int64, to string) error {
	if to == "" {
		to = "none"
	}
	return d.QuickActions(ctx, agent, conv, []policy.Action{{Kind: policy.ActionAssign, Args: []string{to}}})
}

// Close closes a conversation: it leaves INBOX for Closed.
func (d *Desk) Close(ctx context.Context, agent config.Agent, conv int64) error {
	return d.QuickActions(ctx, agent, conv, []policy.Action{{Kind: policy.ActionClose}})
}

// Reopen opens a closed or spam conversation again.
func (d *Desk) Reopen(ctx context.Context, agent config.Agent, conv int64) error {
	return d.QuickActions(ctx, agent, conv, []policy.Action{{Kind: policy.ActionOpen}})
}

// Spam marks a conversation spam.
func (d *Desk) Spam(ctx context.Context, agent config.Agent, conv int64) error {
	return d.QuickActions(ctx, agent, conv, []policy.Action{{Kind: policy.ActionSpam}})
}

// Tag adds tags to a conversation.
func (d *Desk) Tag(ctx context.Context, agent config.Agent, conv int64, tags ...string) error {
	return d.QuickActions(ctx, agent, conv, []policy.Action{{Kind: policy.ActionTag, Args: tags}})
}

// Untag removes tags from a conversation; tags it does not have are ignored.
func (d *Desk) Untag(ctx context.Context, agent config.Agent, conv int64, tags ...string) error {
	return d.QuickActions(ctx, agent, conv, []policy.Action{{Kind: policy.ActionUntag, Args: tags}})
}

// Uncc removes a participant: they receive no more replies.
func (d *Desk) Uncc(ctx context.Context, agent config.Agent, conv int64, address string) error {
	return d.QuickActions(ctx, agent, conv, []policy.Action{{Kind: policy.ActionUncc, Args: []string{address}}})
}

// Follow makes address ("": the agent) a follower (DESIGN.md §7).
func (d *Desk) Follow(ctx context.Context, agent config.Agent, conv int64, address string) error {
	return d.QuickActions(ctx, agent, conv, []policy.Action{{Kind: policy.ActionFollow, Args: optional(address)}})
}

// Unfollow stops address ("": the agent) following a conversation.
func (d *Desk) Unfollow(ctx context.Context, agent config.Agent, conv int64, address string) error {
	return d.QuickActions(ctx, agent, conv, []policy.Action{{Kind: policy.ActionUnfollow, Args: optional(address)}})
}

// ReadOnly makes a conversation read-only or not (DESIGN.md §7).
func (d *Desk) ReadOnly(ctx context.Context, agent config.Agent, conv int64, on bool) error {
	arg := "off"
	if on {
		arg = "on"
	}
	return d.QuickActions(ctx, agent, conv, []policy.Action{{Kind: policy.ActionReadOnly, Args: []string{arg}}})
}

func optional(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// quickActions maps quick actions to one change of a conversation; a later
// action overrides an earlier one of the same kind. The event lists them as
// the agent wrote them.
func quickActions(agent config.Agent, actions []policy.Action) change {
	var done []string
	var update store.ConversationUpdate
	for _, a := range actions {
		switch a.Kind {
		case policy.ActionSend, policy.ActionSide, policy.ActionMerge:
			// How the message is sent (§5 item 10, §14), not a change
			// of the conversation: submission and Merge carry them out.
			continue
		case policy.ActionAssign:
			who := a.Args[0]
			switch strings.ToLower(who) {
			case "me":
				who = agent.Email
			case "none":
				who = ""
			default:
				who = strings.ToLower(who)
			}
			update.Assignee = &who
		case policy.ActionTag:
			update.AddTags = append(update.AddTags, a.Args...)
			update.RemoveTags = slices.DeleteFunc(update.RemoveTags, func(t string) bool { return slices.Contains(a.Args, t) })
		case policy.ActionUntag:
			update.RemoveTags = append(update.RemoveTags, a.Args...)
			update.AddTags = slices.DeleteFunc(update.AddTags, func(t string) bool { return slices.Contains(a.Args, t) })
		case policy.ActionClose, policy.ActionOpen, policy.ActionSpam:
			st := map[policy.ActionKind]store.Status{policy.ActionClose: store.StatusClosed,
				policy.ActionOpen: store.StatusOpen, policy.ActionSpam: store.StatusSpam}[a.Kind]
			update.Status = &st
		case policy.ActionUncc:
			update.RemoveParticipants = append(update.RemoveParticipants, strings.ToLower(a.Args[0]))
		case policy.ActionFollow, policy.ActionUnfollow:
			who := agent.Email
			if len(a.Args) == 1 {
				who = strings.ToLower(a.Args[0])
			}
			if a.Kind == policy.ActionFollow {
				update.AddFollowers = append(update.AddFollowers, who)
			} else {
				update.RemoveFollowers = append(update.RemoveFollowers, who)
			}
		case policy.ActionReadOnly:
			on := strings.EqualFold(a.Args[0], "on")
			update.ReadOnly = &on
		}
		done = append(done, strings.TrimSpace("#"+string(a.Kind)+" "+strings.Join(a.Args, " ")))
	}
	return change{update: update, eventType: "quick-actions", text: fmt.Sprintf("%s: %s", agent.Email, strings.Join(done, " · "))}
}
