package gateway

import (
	"errors"
	"slices"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/policy"
)

// quickActions are the actions at the top of an agent's message (DESIGN.md
// §5 item 4) and the message without them. Submission parses and refuses
// them in SMTP terms; package desk carries them out (desk.QuickActions,
// or desk.QuickActionsUpdate to commit them with the message).
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

// has reports whether the agent wrote action k.
func (qa quickActions) has(k policy.ActionKind) bool {
	return slices.ContainsFunc(qa.actions, func(a policy.Action) bool { return a.Kind == k })
}

// changes are the actions that change the conversation: not #send and
// #side, which say how the message is sent (DESIGN.md §5 item 10, §14), nor
// #merge, which is carried out on its own.
func (qa quickActions) changes() []policy.Action {
	return slices.DeleteFunc(slices.Clone(qa.actions), func(a policy.Action) bool {
		return a.Kind == policy.ActionSend || a.Kind == policy.ActionSide || a.Kind == policy.ActionMerge
	})
}
