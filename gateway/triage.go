package gateway

import (
	"slices"
	"strings"
	"time"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/policy"
	"github.com/supportgate/supportgate/store"
)

// maxRuleBody bounds the text a body pattern reads: a request says what it
// is about at its start, and a 25 MB message need not be scanned.
const maxRuleBody = 64 << 10

// triage fills in what a new conversation starts with (DESIGN.md §7): the
// tags, assignee and followers of the inbox's matching rules, else the
// next agent in turn when the inbox assigns round-robin. The store writes
// it all with the message, in one transaction.
func (s *Server) triage(in *store.Inbound, inbox config.Inbox, sender, subject string, raw []byte, now time.Time) {
	if len(inbox.Rules) > 0 {
		ri := policy.RuleInput{Sender: sender, Subject: subject}
		if slices.ContainsFunc(inbox.Rules, func(r config.Rule) bool { return r.Body != nil }) {
			ri.Body, _ = policy.MessageText(raw)
			if len(ri.Body) > maxRuleBody {
				ri.Body = ri.Body[:maxRuleBody]
			}
		}
		out := policy.ApplyRules(inbox.Rules, ri)
		if len(out.Matched) > 0 {
			in.NewTags = out.Tags
			in.NewAssignee = out.Assign
			for _, f := range out.Followers {
				if !slices.Contains(in.NewFollowers, f) {
					in.NewFollowers = append(in.NewFollowers, f)
				}
			}
			in.Events = append(in.Events, store.Event{Type: "rules", At: now, Quiet: !inbox.ShowEvents,
				Text: ruleEventText(out)})
		}
	}
	if in.NewAssignee == "" && inbox.Assign == config.AssignRoundRobin {
		in.AssignInTurn = &store.RoundRobin{Agents: s.cfg().AssignableAgents(inbox.Address), QuietEvent: !inbox.ShowEvents}
	}
}

// ruleEventText says in one line what the rules did.
func ruleEventText(out policy.RuleOutcome) string {
	var did []string
	if len(out.Tags) > 0 {
		did = append(did, "tagged "+strings.Join(out.Tags, ", "))
	}
	if out.Assign != "" {
		did = append(did, "assigned to "+out.Assign)
	}
	if len(out.Followers) > 0 {
		did = append(did, "followed by "+strings.Join(out.Followers, ", "))
	}
	return "Rules " + strings.Join(out.Matched, ", ") + ": " + strings.Join(did, "; ")
}
