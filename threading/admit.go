package threading

import (
	"strings"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/domain"
)

// Sender is what Admit needs to know of an inbound mail's sender.
type Sender struct {
	Address string // the From address, lower case
	IsAgent bool   // the address is one of the team's agents
	Auto    bool   // the mail is automatic (IsAutoReply)
	// DMARCFail: the From domain's DMARC check failed (RFC 7489), so the
	// address is a claim, not a fact. Such a sender never becomes a
	// participant, never reopens, and is not taken for an agent (DESIGN.md §4).
	DMARCFail bool
}

// InboxRules are the inbox settings that decide admission.
type InboxRules struct {
	Strangers       string // config.StrangersParticipant or config.StrangersHold
	MaxParticipants int    // not counting the owner
}

// Admission is what an inbound mail may do to the conversation it threads
// into (DESIGN.md §4).
type Admission struct {
	Role domain.SenderRole
	// Reopen: a closed conversation opens again. Only a message from the
	// owner or a participant that is not automatic reopens.
	Reopen bool
	// Join: the sender, a stranger, becomes a participant (the inbox lets
	// strangers join, the cap has room, the mail is not automatic).
	Join bool
}

// Admit decides what a mail from sender does to conv; conv.ID 0 is a new
// conversation, which the sender owns.
func Admit(conv domain.Conversation, sender Sender, rules InboxRules) Admission {
	var a Admission
	switch {
	case conv.ID == 0 || strings.EqualFold(conv.Owner, sender.Address):
		a.Role = domain.SenderOwner
	case containsFold(conv.Participants, sender.Address):
		a.Role = domain.SenderParticipant
	case sender.IsAgent && !sender.DMARCFail:
		a.Role = domain.SenderAgent
	case containsFold(conv.Followers, sender.Address) && !sender.DMARCFail:
		// DESIGN.md §2: followers are never visible to customers.
		a.Role = domain.SenderFollower
	default:
		a.Role = domain.SenderStranger
		a.Join = !sender.Auto && !sender.DMARCFail && sender.Address != "" && rules.Strangers != config.StrangersHold &&
			len(conv.Participants) < rules.MaxParticipants
		if a.Join {
			a.Role = domain.SenderParticipant
		}
	}
	a.Reopen = conv.ID != 0 && conv.Status == domain.StatusClosed && !sender.Auto && !sender.DMARCFail &&
		(a.Role == domain.SenderOwner || a.Role == domain.SenderParticipant)
	return a
}
