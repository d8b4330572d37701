package policy

import (
	"regexp"
	"slices"

	"github.com/supportgate/supportgate/config"
)

// RuleInput is what an inbox's rules look at in the mail that opens a
// conversation.
type RuleInput struct {
	Sender  string // the sender's address
	Subject string // the decoded subject
	Body    string // the text the customer typed (MessageText), bounded by the caller
}

// RuleOutcome is what the matching rules do to the new conversation.
type RuleOutcome struct {
	Matched   []string // the names of the rules that matched, in file order
	Tags      []string // every matching rule's tags, each once
	Assign    string   // the first matching rule's assignee that has one
	Followers []string // every matching rule's followers, each once
}

// ApplyRules runs an inbox's [[inbox.rule]] tables (DESIGN.md §7) over a
// new conversation's first mail. A rule matches when each of its patterns
// matches; every matching rule adds its tags and followers, and the first
// one that assigns decides the assignee.
func ApplyRules(rules []config.Rule, in RuleInput) RuleOutcome {
	var out RuleOutcome
	for _, r := range rules {
		if !matches(r, in) {
			continue
		}
		out.Matched = append(out.Matched, r.Name)
		for _, t := range r.Tags {
			if !slices.Contains(out.Tags, t) {
				out.Tags = append(out.Tags, t)
			}
		}
		for _, f := range r.Followers {
			if !slices.Contains(out.Followers, f) {
				out.Followers = append(out.Followers, f)
			}
		}
		if out.Assign == "" {
			out.Assign = r.Assign
		}
	}
	return out
}

func matches(r config.Rule, in RuleInput) bool {
	for _, p := range []struct {
		re   *regexp.Regexp
		text string
	}{{r.Sender, in.Sender}, {r.Subject, in.Subject}, {r.Body, in.Body}} {
		if p.re != nil && !p.re.MatchString(p.text) {
			return false
		}
	}
	return true
}
