package gateway

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/policy"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/threading"
)

// Side conversations (DESIGN.md §14): an agent's message that starts with
// #side, or that answers a side conversation's message, goes only to that
// side's recipients and whom the agent wrote to; its answers thread into the
// conversation as kind side, served to agents with X-Supportgate-Side.

// sideOf returns the side conversation a message continues: the one a side
// token among its recipients names, else the side of the newest message of
// the conversation it refers to; 0 for none. A token of a conversation merged
// since names the side by its old number: the references decide first.
func (s *Server) sideOf(ctx context.Context, dec threading.Decision, inReplyTo, references []string) (int, error) {
	conv, tokenSide := dec.Conv.ID, dec.Side
	if tokenSide > 0 && !dec.Merged || conv == 0 {
		return tokenSide, nil
	}
	if n, err := s.referencedSide(ctx, conv, inReplyTo, references); err != nil || n > 0 {
		return n, err
	}
	return tokenSide, nil
}

// referencedSide is the side of the newest message of conv a message refers
// to, 0 for none.
func (s *Server) referencedSide(ctx context.Context, conv int64, inReplyTo, references []string) (int, error) {
	for _, id := range threading.ReferencedIDs(inReplyTo, references) {
		m, err := s.store.MessageByHeaderID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if m.Conversation != conv {
			return 0, nil
		}
		return m.Side, nil // the newest known message decides
	}
	return 0, nil
}

// findSide returns side n of conv, or a new side numbered after the others
// when n is 0.
func (s *Server) findSide(ctx context.Context, conv int64, n int) (store.Side, bool, error) {
	sides, err := s.store.Sides(ctx, conv)
	if err != nil {
		return store.Side{}, false, err
	}
	if n > 0 {
		if i := slices.IndexFunc(sides, func(sd store.Side) bool { return sd.Number == n }); i >= 0 {
			return sides[i], false, nil
		}
		return store.Side{Conversation: conv, Number: n}, true, nil
	}
	next := 1
	for _, sd := range sides {
		next = max(next, sd.Number+1)
	}
	return store.Side{Conversation: conv, Number: next}, true, nil
}

// sideAddress is a side conversation's reply address.
func (s *Server) sideAddress(inbox string, conv int64, side int) string {
	return policy.ReplyAddress(inbox, s.keys.SideToken(conv, side))
}

// submitSide records and queues an agent's message in side conversation
// number (0: a new one) of conv, with its quick actions; it is never held
// (DESIGN.md §5 item 10) and never reaches the customer.
func (s *Server) submitSide(ctx context.Context, sub submission, info headerInfo, conv store.Conversation, inbox config.Inbox,
	qa quickActions, number int) (submitted, error) {
	cfg := s.cfg()
	side, isNew, err := s.findSide(ctx, conv.ID, number)
	if err != nil {
		return submitted{}, err
	}
	rcpt := policy.SideRecipients(cfg, side.Recipients, info.To, info.Cc, sub.rcpts)
	visible := slices.Concat(side.Recipients, rcpt.NewParticipants)
	if len(visible) == 0 {
		return submitted{}, refuse(550, smtp.EnhancedCode{5, 5, 1},
			"Nothing was sent: a side conversation needs someone outside the team in To or Cc, such as a vendor's address")
	}
	for _, a := range rcpt.Envelope {
		if strings.EqualFold(a, conv.Owner) || slices.ContainsFunc(conv.Participants, func(p string) bool { return strings.EqualFold(p, a) }) {
			return submitted{}, refuse(550, smtp.EnhancedCode{5, 7, 1},
				"Nothing was sent: a side conversation never goes to the customer or the participants, and %s is one; remove the address, or leave out #side to reply to them", a)
		}
		if cfg.Blocked(inbox, a) {
			return submitted{}, refuse(550, smtp.EnhancedCode{5, 7, 1}, "Nothing was sent: %s is blocked in %s", a, inbox.Address)
		}
	}
	if len(visible) > inbox.MaxParticipants {
		return submitted{}, refuse(550, smtp.EnhancedCode{5, 7, 1},
			"Nothing was sent: side conversations of %s may have at most %d recipients, and this one would have %d",
			inbox.Address, inbox.MaxParticipants, len(visible))
	}
	var refusal *policy.Refusal
	if err := policy.CheckAttachments(inbox, qa.raw); errors.As(err, &refusal) {
		return submitted{}, refuse(550, smtp.EnhancedCode{5, 7, 1}, "%s", refusal.Msg)
	}
	msgNum, err := s.store.NextMessageNumber(ctx)
	if err != nil {
		return submitted{}, err
	}
	msgID := s.keys.MessageID(conv.ID, msgNum, cfg.Server.Hostname)
	rw := policy.ReplyRewrite{
		AgentName:    sub.agent.Name,
		InboxName:    inbox.Name,
		InboxAddress: inbox.Address,
		ReplyTo:      s.sideAddress(inbox.Address, conv.ID, side.Number),
		MessageID:    msgID,
		Now:          time.Now(),
	}
	if len(visible) > 0 {
		rw.To, rw.Cc = visible[0], visible[1:]
	}
	if !isNew {
		// Continuing the side's own chain; a new side does not show the
		// vendor the customer's Message-IDs.
		rw.InReplyTo, rw.References = info.InReplyTo, info.References
	}
	out, err := rw.Rewrite(qa.raw)
	if errors.Is(err, policy.ErrMalformedMessage) {
		return submitted{}, errBadHeader
	}
	if err != nil {
		return submitted{}, err
	}
	_, domain, _ := strings.Cut(inbox.Address, "@")
	if out, err = s.signOutbound(out, domain); err != nil {
		return submitted{}, err
	}
	// DESIGN.md §6: Reply on the agents' copy of a side message writes to
	// the side's recipients.
	_, servedCut := policy.WithoutField(out, "Reply-To")
	var update *store.ConversationUpdate
	if changes := qa.changes(); len(changes) > 0 {
		u := s.desk.QuickActionsUpdate(inbox, sub.agent, changes)
		update = &u
	}
	err = s.store.AddOutbound(ctx, store.Outbound{
		Message:         msgNum,
		Conversation:    conv.ID,
		Kind:            store.KindSide,
		Side:            &store.SideWrite{Number: side.Number, Recipients: rcpt.NewParticipants, Hidden: rcpt.HiddenBCC},
		Agent:           sub.agent.Email,
		MessageIDHeader: msgID,
		Raw:             out,
		Received:        time.Now(),
		MailFrom:        "bounces+" + s.keys.BounceToken(msgNum) + "@" + domain,
		Recipients:      rcpt.Envelope,
		HiddenBCC:       rcpt.HiddenBCC,
		ClientMessageID: info.MessageID,
		ServedReplyTo:   strings.Join(visible, ", "),
		ServedCut:       int64(servedCut),
		Update:          update,
	})
	if errors.Is(err, store.ErrDuplicateSubmission) {
		prev, ok, perr := s.store.Submitted(ctx, sub.agent.Email, info.MessageID)
		if perr != nil || !ok {
			return submitted{}, errors.Join(err, perr)
		}
		return submitted{conversation: prev.Conversation, message: prev.ID, kind: prev.Kind, duplicate: true}, nil
	}
	if err != nil {
		return submitted{}, err
	}
	return submitted{conversation: conv.ID, message: msgNum, kind: store.KindSide, recipients: len(rcpt.Envelope), messageID: msgID}, nil
}

// inboundSide is what an answer in a side conversation does (DESIGN.md
// §14): it joins that side as kind side, and its sender joins the side's
// recipients when they were a hidden (Bcc) recipient who answered with Reply
// All, as the cap of participants allows. It never makes anyone a
// participant of the conversation.
// It returns the side's recipients after the answer, for the Reply-To of
// the agents' copy (DESIGN.md §6).
func (s *Server) inboundSide(ctx context.Context, conv int64, number int, sender string, to, cc []string, maxRecipients int) (*store.SideWrite, []string, error) {
	side, _, err := s.findSide(ctx, conv, number)
	if err != nil {
		return nil, nil, err
	}
	w := &store.SideWrite{Number: side.Number}
	replyAll := slices.ContainsFunc(slices.Concat(to, cc), func(a string) bool {
		return slices.ContainsFunc(side.Recipients, func(r string) bool { return strings.EqualFold(r, a) })
	})
	if slices.Contains(side.Hidden, sender) && replyAll && len(side.Recipients) < maxRecipients {
		w.Recipients = []string{sender}
	}
	return w, slices.Concat(side.Recipients, w.Recipients), nil
}
