package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/policy"
	"github.com/supportgate/supportgate/store"
)

// quickActions are the actions at the top of an agent's message (DESIGN.md
// §5 item 4) and the message without them.
type quickActions struct {
	actions []policy.Action
	raw     []byte // the message less the action lines
	only    bool   // nothing but actions: an action, not a note
}

// parseQuickActions reads and checks an agent's quick actions.
func parseQuickActions(cfg *config.Config, inbox config.Inbox, raw []byte) (quickActions, error) {
	qa := quickActions{raw: raw}
	text, ok := policy.MessageText(raw)
	if !ok {
		return qa, nil
	}
	actions, lines, err := policy.ParseActions(text)
	var ae *policy.ActionError
	if errors.As(err, &ae) {
		return qa, refuse(554, smtp.EnhancedCode{5, 6, 0}, "Nothing was sent: %s", ae.Msg)
	}
	if len(actions) == 0 {
		return qa, nil
	}
	for _, a := range actions {
		if a.Kind != policy.ActionAssign || a.Args[0] == "me" || a.Args[0] == "none" {
			continue
		}
		if agent, ok := cfg.Agent(a.Args[0]); !ok || !policy.CanReply(agent.Roles[inbox.Address]) {
			return qa, refuse(554, smtp.EnhancedCode{5, 6, 0},
				"Nothing was sent: #assign %s names no agent who may reply in %s; write an agent's address, me or none", a.Args[0], inbox.Address)
		}
	}
	qa.actions, qa.raw = actions, policy.StripActionLines(raw, lines)
	rest, _ := policy.MessageText(qa.raw)
	qa.only = strings.TrimSpace(rest) == ""
	return qa, nil
}

// addsTag reports whether the actions tag the conversation (require_tag).
func (qa quickActions) addsTag() bool {
	return slices.ContainsFunc(qa.actions, func(a policy.Action) bool { return a.Kind == policy.ActionTag })
}

// applyActions carries out quick actions on a conversation in one
// transaction with their event (an action-only message).
func (s *Server) applyActions(ctx context.Context, conv int64, inbox config.Inbox, agent config.Agent, actions []policy.Action) error {
	u := actionsUpdate(inbox, agent, actions)
	u.Conversation = conv
	return s.store.UpdateConversation(ctx, u)
}

// actionsUpdate is the change quick actions make to a conversation, with
// the event that tells the team: applied in one transaction, alone or
// with the message that carried them (store.Outbound.Update). A later
// action overrides an earlier one of the same kind.
func actionsUpdate(inbox config.Inbox, agent config.Agent, actions []policy.Action) store.ConversationUpdate {
	var done []string
	var update store.ConversationUpdate
	for _, a := range actions {
		switch a.Kind {
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
	update.Events = []store.Event{{Type: "quick-actions", At: time.Now(), Quiet: !inbox.ShowEvents,
		Text: fmt.Sprintf("%s: %s", agent.Email, strings.Join(done, " · "))}}
	return update
}
