// Package policy holds supportgate's decisions: who may do what, who the
// recipients of an agent's message are, and how the message is rewritten
// before it leaves (DESIGN.md §5). It does no I/O: configuration and
// conversations come in, decisions come out.
//
// Imports: config, domain and threading; no I/O of its own and no store or
// engine (domain/layout_test.go checks it), so its decisions are tested
// with tables and fuzzed.
package policy

import (
	"slices"
	"strings"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/threading"
)

// CanRead reports whether a role lets an agent see an inbox.
func CanRead(r config.Role) bool {
	return r == config.RoleAdmin || r == config.RoleReply || r == config.RoleView
}

// CanReply reports whether a role lets an agent write to customers
// (DESIGN.md §5 item 2).
func CanReply(r config.Role) bool {
	return r == config.RoleAdmin || r == config.RoleReply
}

// VisibleInboxes returns the addresses of the inboxes an agent may read, in
// configuration order.
func VisibleInboxes(cfg *config.Config, agent config.Agent) []string {
	var out []string
	for _, in := range cfg.Inboxes {
		if CanRead(agent.Roles[in.Address]) {
			out = append(out, in.Address)
		}
	}
	return out
}

// InboxOf returns the inbox an address belongs to, the address itself or a
// plus form of it.
func InboxOf(cfg *config.Config, addr string) (config.Inbox, bool) {
	base, _ := threading.SplitPlus(addr)
	return cfg.Inbox(base)
}

// IsInternal reports whether an address is the team's own: an inbox, a plus
// form of one, or an agent (DESIGN.md §5 item 3).
func IsInternal(cfg *config.Config, addr string) bool {
	if _, ok := InboxOf(cfg, addr); ok {
		return true
	}
	_, ok := cfg.Agent(addr)
	return ok
}

// ReplyAddress is the inbox's address with the conversation's token in the
// plus part: support+<token>@domain.
func ReplyAddress(inboxAddress, token string) string {
	local, domain, _ := strings.Cut(inboxAddress, "@")
	return local + "+" + token + "@" + domain
}

// Recipients is who an agent's reply goes to.
type Recipients struct {
	Envelope        []string // every address the reply is sent to
	HiddenBCC       []string // envelope recipients the customer does not see
	NewParticipants []string // external addresses of To/Cc that join the conversation
}

// ReplyRecipients decides the recipients of a public reply: the owner, every
// participant (listed by the agent's client or not), the external addresses
// of To/Cc that are new (they become participants), and, hidden, the
// envelope recipients absent from To/Cc (what the client put in Bcc) and
// the inbox's bcc list (DESIGN.md §5 item 6). Internal addresses never receive the outgoing copy: the team sees the reply
// in the conversation. Addresses are compared in lower case.
func ReplyRecipients(cfg *config.Config, owner string, participants, headerTo, headerCc, envelope, inboxBCC []string) Recipients {
	var r Recipients
	// Compared in lower case as documented (the callers happen to lower-case
	// today, but an owner "Jan@X" and a Cc "jan@x" must not make two copies,
	// nor a new participant, nor a hidden recipient). The first spelling is kept.
	headers := slices.Concat(headerTo, headerCc)
	inHeaders := map[string]bool{}
	for _, a := range headers {
		inHeaders[strings.ToLower(a)] = true
	}
	seen := map[string]bool{}
	add := func(l *[]string, a string) {
		if k := strings.ToLower(a); !seen[k] {
			seen[k] = true
			r.Envelope = append(r.Envelope, a)
			if l != nil {
				*l = append(*l, a)
			}
		}
	}
	add(nil, owner)
	for _, p := range participants {
		add(nil, p)
	}
	for _, a := range headers {
		if !IsInternal(cfg, a) {
			add(&r.NewParticipants, a)
		}
	}
	for _, a := range slices.Concat(envelope, inboxBCC) {
		if !IsInternal(cfg, a) && !inHeaders[strings.ToLower(a)] {
			add(&r.HiddenBCC, a)
		}
	}
	return r
}
