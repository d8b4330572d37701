package policy

import (
	"slices"
	"strings"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/domain"
	"github.com/supportgate/supportgate/threading"
)

// InboundPeople is what an inbound message's To and Cc do to its
// conversation (DESIGN.md §3 item 4).
type InboundPeople struct {
	Participants []string // join, within the cap
	OverCap      []string // would have joined, but the cap is reached
	Followers    []string // agents the customer copied: they follow, never participate
}

// PeopleFromInbound decides who an inbound message adds. Only a message from
// the owner or a participant that is not automatic adds anyone; support
// addresses never join; an agent's address makes that agent a follower.
// current is the conversation's participants (with any joining sender);
// maxParticipants does not count the owner.
func PeopleFromInbound(cfg *config.Config, owner string, current []string, role domain.SenderRole, auto bool,
	to, cc []string, maxParticipants int) InboundPeople {
	var p InboundPeople
	if auto || (role != domain.SenderOwner && role != domain.SenderParticipant) {
		return p
	}
	seen := map[string]bool{strings.ToLower(owner): true}
	for _, a := range current {
		seen[strings.ToLower(a)] = true
	}
	room := maxParticipants - len(current)
	for _, a := range slices.Concat(to, cc) {
		a = strings.ToLower(a)
		if seen[a] {
			continue
		}
		seen[a] = true
		if _, agent := cfg.Agent(a); agent {
			p.Followers = append(p.Followers, a)
			continue
		}
		if IsInternal(cfg, a) || isBounceAddress(cfg, a) {
			continue
		}
		if room > 0 {
			p.Participants = append(p.Participants, a)
			room--
		} else {
			p.OverCap = append(p.OverCap, a)
		}
	}
	return p
}

// isBounceAddress reports the return path of our own mail (bounces+...@ an
// inbox's domain), which is never a participant either.
func isBounceAddress(cfg *config.Config, addr string) bool {
	base, _ := threading.SplitPlus(addr)
	local, domain, _ := strings.Cut(base, "@")
	if local != "bounces" {
		return false
	}
	return slices.ContainsFunc(cfg.Inboxes, func(in config.Inbox) bool { return strings.HasSuffix(in.Address, "@"+domain) })
}
