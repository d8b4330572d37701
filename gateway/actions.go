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

// applyActions carries out quick actions on a conversation, each
// idempotent, so that a client retrying after an error does no harm; the
// team sees what was done as an event.
func (s *Server) applyActions(ctx context.Context, conv int64, inbox config.Inbox, agent config.Agent, actions []policy.Action) error {
	var done []string
	update := store.ConversationUpdate{Conversation: conv}
	for _, a := range actions {
		var err error
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
			err = s.store.SetAssignee(ctx, conv, who)
		case policy.ActionTag:
			err = s.store.AddTags(ctx, conv, a.Args)
		case policy.ActionUntag:
			err = s.store.RemoveTags(ctx, conv, a.Args)
		case policy.ActionClose:
			err = s.store.SetStatus(ctx, conv, store.StatusClosed)
		case policy.ActionOpen:
			err = s.store.SetStatus(ctx, conv, store.StatusOpen)
		case policy.ActionSpam:
			err = s.store.SetStatus(ctx, conv, store.StatusSpam)
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
		if err != nil {
			return err
		}
		done = append(done, strings.TrimSpace("#"+string(a.Kind)+" "+strings.Join(a.Args, " ")))
	}
	update.Events = []store.Event{{Type: "quick-actions", At: time.Now(), Quiet: !inbox.ShowEvents,
		Text: fmt.Sprintf("%s: %s", agent.Email, strings.Join(done, " · "))}}
	return s.store.UpdateConversation(ctx, update)
}
