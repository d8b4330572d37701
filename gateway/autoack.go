package gateway

// Automatic acknowledgements (DESIGN.md §7): the decision and the message
// are policy.DecideAutoAck and policy.AutoAck; here are the side effects.
//
// Choices: only a message that opens a conversation is acknowledged (a new
// request, as helpdesks do; replies into a conversation are the team's to
// answer). The acknowledgement goes to the envelope return path
// (RFC 3834 4), at most limits.max_auto_acknowledgements_per_sender_per_day
// times per inbox and address in any 24 hours, counted in the store. It is
// recorded in the conversation as a reply with its own signed Message-ID and
// the conversation's reply address, so agents see what the customer got and
// the customer's answer threads in; it is queued like an agent's reply
// (DKIM-signed), but with a null return path (RFC 3834 3.3): no bounce or
// automatic answer to it can loop back. A refusal during our own SMTP
// transaction still becomes a delivery-failed event; a later DSN is not
// sent. It is queued after the inbound message is durable and before the
// 250, in one store transaction with its claim on the daily limit and the
// record that its conversation is acknowledged (store.QueueAutoAck): a
// failure is logged, uses up nothing, and never refuses the customer's
// mail. A crash between the two writes leaves a stored message without an
// acknowledgement and a client without its 250; the client's retry is a
// duplicate by Message-ID, and a duplicate of a message that opened its
// conversation is decided again like the original and acknowledged unless
// that conversation has its acknowledgement recorded: one acknowledgement,
// never none and never two.

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/policy"
	"github.com/supportgate/supportgate/store"
)

// ackCandidate is what the MX knows of a stored inbound message when it
// decides on an acknowledgement.
type ackCandidate struct {
	inbox           config.Inbox // the conversation's inbox
	conversation    int64
	message         int64 // the stored message (the original, for a duplicate)
	newConversation bool  // opened by this message (for a duplicate: by the original)
	// duplicate: a copy of a message stored before; it is acknowledged
	// when that one opened its conversation and nothing acknowledged it.
	duplicate   bool
	mailFrom    string
	info        headerInfo
	authFailed  bool
	quarantined bool
}

// autoAcknowledge sends c its acknowledgement when the inbox, the limit and
// RFC 3834 allow. It never fails: the inbound message is stored already.
func (s *Server) autoAcknowledge(ctx context.Context, c ackCandidate) {
	log := s.log.With("conversation", c.conversation)
	if c.duplicate {
		// The client retries what it has no 250 for: perhaps we stored
		// the message and crashed before its acknowledgement was queued.
		if !slices.ContainsFunc(s.cfg().Inboxes, func(i config.Inbox) bool { return i.AutoAcknowledge }) {
			return // no reads for duplicates where nothing is acknowledged
		}
		var ok bool
		if c, ok = s.retriedCandidate(ctx, log, c); !ok {
			return
		}
	}
	if !c.inbox.AutoAcknowledge {
		return
	}
	dec := policy.DecideAutoAck(s.cfg(), policy.AckInput{
		Inbox: c.inbox, NewConversation: c.newConversation, ReturnPath: c.mailFrom, From: c.info.From,
		Header: &c.info.Header, AuthFailed: c.authFailed, Quarantined: c.quarantined,
	})
	if dec.To == "" {
		if c.newConversation {
			log.Info("no automatic acknowledgement", "reason", dec.Reason)
		}
		return
	}
	if c.duplicate {
		// Most retries come after the 250 was lost, with the
		// acknowledgement queued: skip building one. QueueAutoAck checks
		// again, in its transaction, for copies arriving at once.
		if msg, found, err := s.store.AutoAckOf(ctx, c.conversation); err != nil {
			log.Error("automatic acknowledgement not sent: whether it was sent before could not be checked", "err", err)
			return
		} else if found {
			log.Debug("no automatic acknowledgement: it was sent for the first copy", "ack", msg)
			return
		}
	}
	now := time.Now()
	// A read first: a sender over the limit (a monitoring system writing
	// a new request a minute) must not cost a message number (a write) and
	// a DKIM signature per message. QueueAutoAck counts again in its
	// transaction, so acknowledgements arriving at once still stop at the
	// limit.
	if n, err := s.store.AutoAcksSent(ctx, c.inbox.Address, dec.To, now); err == nil && n >= s.cfg().Limits.MaxAutoAcksPerSenderPerDay {
		log.Info("no automatic acknowledgement: the daily limit for this address is reached", "to", dec.To,
			"limit", s.cfg().Limits.MaxAutoAcksPerSenderPerDay)
		return
	}
	msg, outcome, err := s.queueAutoAck(ctx, c, dec.To, now)
	switch {
	case err != nil:
		// Nothing of it was written, its claim on the limit neither: the
		// sender's next message today, or this one's retry, can still
		// get one.
		log.Error("queueing an automatic acknowledgement failed", "to", dec.To, "err", err)
	case outcome == store.AutoAckLimitReached:
		log.Info("no automatic acknowledgement: the daily limit for this address is reached", "to", dec.To,
			"limit", s.cfg().Limits.MaxAutoAcksPerSenderPerDay)
	case outcome == store.AutoAckAlreadySent:
		log.Info("no automatic acknowledgement: the conversation has one", "to", dec.To)
	default:
		log.Info("automatic acknowledgement queued", "to", dec.To, "message", msg, "retry", c.duplicate)
	}
}

// retriedCandidate decides whether a duplicate of a stored message is
// considered for an acknowledgement, exactly as the original was: only when
// the original opened its conversation, under the rules of that
// conversation's inbox, not when it is in Spam.
func (s *Server) retriedCandidate(ctx context.Context, log *slog.Logger, c ackCandidate) (ackCandidate, bool) {
	opened, err := s.store.OpenedConversation(ctx, c.message)
	if err != nil {
		log.Error("automatic acknowledgement not considered for a duplicate: reading the original failed", "message", c.message, "err", err)
		return c, false
	}
	if !opened {
		return c, false
	}
	conv, err := s.store.Conversation(ctx, c.conversation)
	if err != nil {
		log.Error("automatic acknowledgement not considered for a duplicate: reading its conversation failed", "err", err)
		return c, false
	}
	if inbox, ok := s.cfg().Inbox(conv.Inbox); ok {
		c.inbox = inbox
	}
	c.newConversation = true
	c.quarantined = c.quarantined || conv.Status == store.StatusSpam
	return c, true
}

// queueAutoAck records the acknowledgement in the conversation and queues
// it, as submission does for a reply, with its claim on the daily limit and
// its record as the conversation's acknowledgement in the same transaction.
func (s *Server) queueAutoAck(ctx context.Context, c ackCandidate, to string, now time.Time) (int64, store.AutoAckOutcome, error) {
	msgNum, err := s.store.NextMessageNumber(ctx)
	if err != nil {
		return 0, 0, err
	}
	msgID := s.keys.MessageID(c.conversation, msgNum, s.cfg().Server.Hostname)
	_, domain, _ := strings.Cut(c.inbox.Address, "@")
	out := policy.AutoAck{
		InboxName:    c.inbox.Name,
		InboxAddress: c.inbox.Address,
		ReplyTo:      policy.ReplyAddress(c.inbox.Address, s.keys.ReplyToken(c.conversation)),
		To:           to,
		MessageID:    msgID,
		Conversation: c.conversation,
		Subject:      c.info.Subject,
		SubjectTag:   subjectTag(c.inbox, c.conversation),
		InReplyTo:    c.info.MessageID,
		References:   c.info.References,
		Text:         c.inbox.AutoAcknowledgeText,
		Now:          now,
	}.Message()
	// Signed once, before it is queued, like a reply.
	if out, err = s.signOutbound(out, domain); err != nil {
		return 0, 0, err
	}
	ack := store.AutoAck{Inbox: c.inbox.Address, Recipient: to, Limit: s.cfg().Limits.MaxAutoAcksPerSenderPerDay, Outbound: store.Outbound{
		Message:         msgNum,
		Conversation:    c.conversation,
		Kind:            store.KindReply,
		MessageIDHeader: msgID,
		Raw:             out,
		Received:        now,
		// RFC 3834 3.3: an automatic response goes out with a null
		// envelope sender (MAIL FROM:<>), so nothing answers it in a loop.
		MailFrom:   "",
		Recipients: []string{to},
	}}
	outcome, err := s.store.QueueAutoAck(ctx, ack)
	return msgNum, outcome, err
}
