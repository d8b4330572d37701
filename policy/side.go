package policy

import (
	"slices"
	"strings"

	"github.com/supportgate/supportgate/config"
)

// SideRecipients decides who an agent's message in a side conversation goes
// to (DESIGN.md §14): the side's own recipients, the external To and Cc
// addresses that are new to it (NewParticipants: they join the side, never
// the conversation), and, hidden, the envelope recipients absent from To and
// Cc (the agent's Bcc). The owner and the conversation's participants are
// not added: only whom the agent wrote to. Internal addresses never receive
// it. Addresses are compared in lower case.
func SideRecipients(cfg *config.Config, side, headerTo, headerCc, envelope []string) Recipients {
	var r Recipients
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
	for _, a := range side {
		add(nil, a)
	}
	for _, a := range headers {
		if !IsInternal(cfg, a) {
			add(&r.NewParticipants, a)
		}
	}
	for _, a := range envelope {
		if !IsInternal(cfg, a) && !inHeaders[strings.ToLower(a)] {
			add(&r.HiddenBCC, a)
		}
	}
	return r
}
