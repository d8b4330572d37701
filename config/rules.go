package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Rule is one [[inbox.rule]]: when every pattern it has matches the mail
// that opens a conversation, the conversation gets its tags, assignee and
// followers (DESIGN.md §7, triage and specialisation). Patterns are Go
// regular expressions (RE2: linear in the input, so hostile mail cannot
// make one slow), matched without regard to case.
type Rule struct {
	Name    string         // name; default "rule N", N counting from 1 in its inbox
	Sender  *regexp.Regexp // sender: the sender's address; nil when not tested
	Subject *regexp.Regexp // subject: the decoded subject; nil when not tested
	Body    *regexp.Regexp // body: the text the customer typed; nil when not tested
	// Tags are tags: added to the conversation (IMAP keywords).
	Tags []string
	// Assign is assign: an agent with the reply or admin role in the inbox;
	// "" leaves assignment to the inbox's assign mode.
	Assign string
	// Followers are followers: internal people who follow the conversation.
	Followers []string
}

// Values of Inbox.Assign.
const (
	AssignNone       = "none"        // new conversations stay unassigned
	AssignRoundRobin = "round-robin" // new conversations go to the inbox's agents in turn
)

// AssignableAgents are the agents with the reply or admin role in inbox, in
// file order: the ones a rule or round-robin may hand a conversation to.
func (c *Config) AssignableAgents(inbox string) []string {
	var out []string
	for _, a := range c.Agents {
		if r := a.Roles[inbox]; r == RoleReply || r == RoleAdmin {
			out = append(out, a.Email)
		}
	}
	return out
}

// ValidTag reports whether t can be a conversation tag: an IMAP keyword
// too (RFC 9051 9, flag-keyword is an atom), which Thunderbird shows as a
// tag. Letters, digits and - _ . $ only, at most 64 bytes.
func ValidTag(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for _, c := range t {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == '$':
		default:
			return false
		}
	}
	return true
}

type fileRule struct {
	Name      *string  `toml:"name"`
	Sender    *string  `toml:"sender"`
	Subject   *string  `toml:"subject"`
	Body      *string  `toml:"body"`
	Tags      []string `toml:"tags"`
	Assign    string   `toml:"assign"`
	Followers []string `toml:"followers"`
}

// assignMode validates inbox.assign.
func (v *validator) assignMode(path string, s *string) string {
	if s == nil {
		return AssignNone
	}
	switch *s {
	case AssignNone, AssignRoundRobin:
		return *s
	}
	v.errorf(path, `inbox.assign is %q; it must be "none" or "round-robin"`, *s)
	return AssignNone
}

// rules validates an inbox's [[inbox.rule]] tables; the assignees are
// checked later, against the agents (rulesAssignees).
func (v *validator) rules(base string, frs []fileRule) []Rule {
	var out []Rule
	for i, fr := range frs {
		path := fmt.Sprintf("%s.rule.%d", base, i)
		r := Rule{Name: fmt.Sprintf("rule %d", i+1)}
		if fr.Name != nil {
			r.Name = *fr.Name
			if r.Name == "" {
				v.errorf(path+".name", "inbox.rule.name is empty; leave it out to call it %q", fmt.Sprintf("rule %d", i+1))
			}
			v.text(path+".name", r.Name)
		}
		r.Sender = v.pattern(path+".sender", fr.Sender)
		r.Subject = v.pattern(path+".subject", fr.Subject)
		r.Body = v.pattern(path+".body", fr.Body)
		if fr.Sender == nil && fr.Subject == nil && fr.Body == nil {
			v.errorf(path, "%s matches everything: give it sender, subject or body, a pattern to match", r.Name)
		}
		for k, t := range fr.Tags {
			if !ValidTag(t) {
				v.errorf(fmt.Sprintf("%s.tags.%d", path, k), "inbox.rule.tags has %q, which is not a tag: use letters, digits and - _ . $ only", t)
			} else if !slices.Contains(r.Tags, t) {
				r.Tags = append(r.Tags, t)
			}
		}
		for k, f := range fr.Followers {
			addr, why := normalizeAddress(f)
			if why != "" {
				v.errorf(fmt.Sprintf("%s.followers.%d", path, k), "inbox.rule.followers has %q, which is not a valid email address: %s", f, why)
			} else if !slices.Contains(r.Followers, addr) {
				r.Followers = append(r.Followers, addr)
			}
		}
		if fr.Assign != "" {
			addr, why := normalizeAddress(fr.Assign)
			if why != "" {
				v.errorf(path+".assign", "inbox.rule.assign is %q, which is not a valid email address: %s", fr.Assign, why)
			}
			r.Assign = addr
		}
		if len(r.Tags) == 0 && r.Assign == "" && len(r.Followers) == 0 && len(fr.Tags) == 0 && len(fr.Followers) == 0 {
			v.errorf(path, "%s does nothing: give it tags, assign or followers", r.Name)
		}
		out = append(out, r)
	}
	return out
}

// pattern compiles one regular expression of a rule, without regard to case.
func (v *validator) pattern(path string, s *string) *regexp.Regexp {
	if s == nil {
		return nil
	}
	if *s == "" {
		v.errorf(path, "%s is empty; leave it out to match anything", plainPath(path))
		return nil
	}
	re, err := regexp.Compile("(?i)" + *s)
	if err != nil {
		// The syntax error names the problem and the part of the pattern.
		v.errorf(path, "%s is not a regular expression Go understands: %v", plainPath(path), err)
		return nil
	}
	return re
}

// rulesAssignees checks that every rule's assignee can take the inbox's
// conversations, that no rule makes an inbox a follower, and that
// round-robin has someone to hand them to.
func (v *validator) rulesAssignees(c *Config) {
	for i, in := range c.Inboxes {
		agents := c.AssignableAgents(in.Address)
		if in.Assign == AssignRoundRobin && len(agents) == 0 {
			v.errorf(fmt.Sprintf("inbox.%d.assign", i), "inbox %q assigns round-robin, but no agent has the reply or admin role in it", in.Address)
		}
		for k, r := range in.Rules {
			for j, f := range r.Followers {
				local, domain, _ := strings.Cut(f, "@")
				plain, _, _ := strings.Cut(local, "+")
				if _, isInbox := c.Inbox(plain + "@" + domain); isInbox {
					v.errorf(fmt.Sprintf("inbox.%d.rule.%d.followers.%d", i, k, j), "%s of inbox %q has the inbox %q as a follower; its notifications would come back in as mail", r.Name, in.Address, f)
				}
			}
			if r.Assign != "" && !slices.Contains(agents, r.Assign) {
				v.errorf(fmt.Sprintf("inbox.%d.rule.%d.assign", i, k), "%s of inbox %q assigns to %q, who is not an agent with the reply or admin role in it", r.Name, in.Address, r.Assign)
			}
		}
	}
}
