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
// sent. It is sent after the inbound message is durable; a failure to queue
// it is logged, releases its claim on the daily limit, and never refuses
// the customer's mail.

import (
	"context"
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
	newConversation bool // opened by this message, not a duplicate
	mailFrom        string
	info            headerInfo
	authFailed      bool
	quarantined     bool
}

// autoAcknowledge sends c its acknowledgement when the inbox, the limit and
// RFC 3834 allow. It never fails: the inbound message is stored already.
func (s *Server) autoAcknowledge(ctx context.Context, c ackCandidate) {
	if !c.inbox.AutoAcknowledge {
		return
	}
	log := s.log.With("conversation", c.conversation)
	dec := policy.DecideAutoAck(s.cfg, policy.AckInput{
		Inbox: c.inbox, NewConversation: c.newConversation, ReturnPath: c.mailFrom, From: c.info.From,
		Header: &c.info.Header, AuthFailed: c.authFailed, Quarantined: c.quarantined,
	})
	if dec.To == "" {
		if c.newConversation {
			log.Info("no automatic acknowledgement", "reason", dec.Reason)
		}
		return
	}
	now := time.Now()
	ok, err := s.store.ClaimAutoAck(ctx, c.inbox.Address, dec.To, now, s.limits.cfg.MaxAutoAcksPerSenderPerDay)
	if err != nil {
		log.Error("automatic acknowledgement not sent: its limit could not be checked", "to", dec.To, "err", err)
		return
	}
	if !ok {
		log.Info("no automatic acknowledgement: the daily limit for this address is reached", "to", dec.To,
			"limit", s.limits.cfg.MaxAutoAcksPerSenderPerDay)
		return
	}
	msg, err := s.queueAutoAck(ctx, c, dec.To, now)
	if err != nil {
		log.Error("queueing an automatic acknowledgement failed", "to", dec.To, "err", err)
		// Nothing was sent: the claim goes back, so that the sender's next
		// message today can still be acknowledged. Released even when ctx
		// ended, which may be why queueing failed.
		if err := s.store.ReleaseAutoAck(context.WithoutCancel(ctx), c.inbox.Address, dec.To, now); err != nil {
			log.Error("releasing the claim of an unsent automatic acknowledgement failed", "to", dec.To, "err", err)
		}
		return
	}
	log.Info("automatic acknowledgement queued", "to", dec.To, "message", msg)
}

// queueAutoAck records the acknowledgement in the conversation and queues
// it, as submission does for a reply.
func (s *Server) queueAutoAck(ctx context.Context, c ackCandidate, to string, now time.Time) (int64, error) {
	msgNum, err := s.store.NextMessageNumber(ctx)
	if err != nil {
		return 0, err
	}
	msgID := s.keys.MessageID(c.conversation, msgNum, s.cfg.Server.Hostname)
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
	if s.cfg.DKIM.Selector != "" {
		// RFC 6376: signed once, before it is queued, like a reply.
		signer, err := s.dkim.Signer(s.cfg.DKIM.Selector, s.cfg.DKIM.PrivateKeyFile)
		if err == nil {
			out, err = signer.Sign(out, domain)
		}
		if err != nil {
			return 0, err
		}
	}
	err = s.store.AddOutbound(ctx, store.Outbound{
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
	})
	return msgNum, err
}
