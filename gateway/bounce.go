package gateway

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"mime"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-message"

	"github.com/supportgate/supportgate/internal/metrics"
	"github.com/supportgate/supportgate/queue"
	"github.com/supportgate/supportgate/store"
)

// bounceLocal is the local part of the VERP return path (DESIGN.md §4):
// bounces+<token>@<domain of an inbox>.
const bounceLocal = "bounces"

// maxBounceDetail bounds the text of a bounce kept in the team's event.
const maxBounceDetail = 4000

// bounceToken returns the token of a return-path address of ours: the local
// part bounces+<token> at the domain of an inbox, with a valid MAC.
func (s *Server) bounceToken(addr string) (message int64, recipient int, ok bool) {
	local, domain, found := strings.Cut(strings.ToLower(addr), "@")
	if !found {
		return 0, 0, false
	}
	base, token, plus := strings.Cut(local, "+")
	if !plus || base != bounceLocal || !s.isInboxDomain(domain) {
		return 0, 0, false
	}
	return s.keys.ParseBounceToken(token)
}

func (s *Server) isInboxDomain(domain string) bool {
	for _, in := range s.cfg().Inboxes {
		if _, d, _ := strings.Cut(in.Address, "@"); d == domain {
			return true
		}
	}
	return false
}

// bounceRcpt is the MX's RCPT branch for return paths: handled is true when
// to is bounces+...@ an inbox's domain; err refuses a token that is not ours
// (RFC 5321 3.3: 550 for a mailbox that does not exist).
func (s *Server) bounceRcpt(to string) (handled bool, err error) {
	local, domain, _ := strings.Cut(strings.ToLower(to), "@")
	if !strings.HasPrefix(local, bounceLocal+"+") || !s.isInboxDomain(domain) {
		return false, nil
	}
	if _, _, ok := s.bounceToken(to); !ok {
		return true, errNoSuchInbox
	}
	return true, nil
}

// isBounceTransaction reports whether a transaction has a return path among
// its recipients; its DATA then goes to receiveBounce.
func (s *Server) isBounceTransaction(rcpts []string) bool {
	for _, r := range rcpts {
		if _, _, ok := s.bounceToken(r); ok {
			return true
		}
	}
	return false
}

// receiveBounce handles a message sent to return paths: each names an
// outbound message and recipient; a DSN (RFC 3464) or a plain bounce marks
// that recipient failed and tells the team. It never creates a conversation
// and never reaches a customer. Other (inbox) recipients of the same
// transaction get the message as usual.
func (s *Server) receiveBounce(ctx context.Context, log *slog.Logger, from string, rcpts []string, raw []byte, trace string) error {
	var others []string
	report := parseBounce(raw, from)
	for _, rcpt := range rcpts {
		msg, n, ok := s.bounceToken(rcpt)
		if !ok {
			others = append(others, rcpt)
			continue
		}
		if err := s.applyBounce(ctx, log.With("return_path", rcpt, "message", msg), msg, n, report); err != nil {
			log.Error("recording a bounce failed; the client was answered 451 4.3.0 and retries",
				append(inboundAttrs(from, rcpts, messageIDOf(raw)), "result", metrics.Deferred, "err", err)...)
			return errTemporary
		}
	}
	if len(others) > 0 {
		return s.storeInbound(ctx, log, from, others, raw, trace)
	}
	log.Info("inbound bounce received", append(inboundAttrs(from, rcpts, messageIDOf(raw)), "result", metrics.Accepted)...)
	return nil
}

func (s *Server) applyBounce(ctx context.Context, log *slog.Logger, message int64, number int, rep bounceReport) error {
	if !rep.isBounce {
		log.Info("mail to a return path that is no bounce (an auto-reply?) is dropped", "subject", rep.subject)
		return nil
	}
	rcpts, err := s.store.MessageRecipients(ctx, message)
	if err != nil {
		return err
	}
	var target *store.QueuedRecipient
	for i, r := range rcpts {
		if number > 0 && r.Number == number || number == 0 && (len(rcpts) == 1 || rep.names(r.Recipient)) {
			target = &rcpts[i]
			break
		}
	}
	if target == nil {
		log.Warn("a bounce names no recipient of a queued message; dropped", "number", number)
		return nil
	}
	log = log.With("queue_id", target.QueueID, "conversation", target.Conversation, "recipient", target.Recipient)
	f := rep.fieldsFor(target.Recipient)
	report := queue.Report{Answer: strings.TrimSpace(strings.Join(nonEmpty(f.status, f.diagnostic), " ")),
		Detail: "Recipient: " + target.Recipient + "\nAction: " + f.action + "\nStatus: " + f.status +
			"\nRemote answer: " + f.diagnostic + "\nReported by: " + rep.reporter + "\n\n" + rep.text}
	// The queue owns what a bounce does to it, each in one transaction
	// with the team's event (queue.Lifecycle); this file only reads the
	// report.
	lc := queue.Lifecycle{Store: s.store}
	now := time.Now()
	switch f.action {
	case "delayed":
		log.Info("a delay notice arrived", "status", f.status)
		return lc.Delayed(ctx, *target, report, now)
	case "delivered", "relayed", "expanded":
		log.Info("a success notice arrived", "action", f.action)
		return nil
	}
	changed, err := lc.Bounced(ctx, *target, report, now)
	if err != nil {
		return err
	}
	if !changed {
		log.Info("a repeated bounce; already recorded")
		return nil
	}
	log.Warn("a bounce marks the recipient failed", "status", f.status)
	return nil
}

// bounceReport is what a bounce says.
type bounceReport struct {
	isBounce   bool
	subject    string
	reporter   string
	text       string            // the human-readable part, bounded
	recipients []recipientFields // RFC 3464 2.3, one per recipient block
}

type recipientFields struct {
	final, original, action, status, diagnostic string
}

func (r bounceReport) names(addr string) bool {
	for _, f := range r.recipients {
		if strings.EqualFold(f.final, addr) || strings.EqualFold(f.original, addr) {
			return true
		}
	}
	return false
}

// fieldsFor returns the report's block for addr, else its first, else a
// failure with no status (a plain bounce).
func (r bounceReport) fieldsFor(addr string) recipientFields {
	for _, f := range r.recipients {
		if strings.EqualFold(f.final, addr) || strings.EqualFold(f.original, addr) {
			return f
		}
	}
	if len(r.recipients) > 0 {
		return r.recipients[0]
	}
	return recipientFields{action: "failed"}
}

// parseBounce reads a DSN (RFC 3464: multipart/report with a
// message/delivery-status part; RFC 6533 message/global-delivery-status
// too) or a plain bounce: a message from the null sender or a mailer
// daemon. Anything else sent to a return path (an out-of-office) is not a
// bounce.
func parseBounce(raw []byte, envelopeFrom string) bounceReport {
	var rep bounceReport
	m, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return rep
	}
	rep.subject = m.Header.Get("Subject")
	if mr := m.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			t, _, _ := p.Header.ContentType()
			body, _ := io.ReadAll(io.LimitReader(p.Body, 1<<20))
			switch {
			case t == "message/delivery-status" || t == "message/global-delivery-status":
				rep.reporter, rep.recipients = parseDeliveryStatus(body)
				rep.isBounce = len(rep.recipients) > 0
			case t == "text/plain" && rep.text == "":
				rep.text = bounded(string(body))
			}
		}
	} else {
		body, _ := io.ReadAll(io.LimitReader(m.Body, 1<<20))
		rep.text = bounded(string(body))
	}
	if rep.isBounce {
		return rep
	}
	// A plain bounce (RFC 3464 is not universal): from the null sender, or
	// from a mailer daemon, and not an auto-reply of a person.
	from := strings.ToLower(m.Header.Get("From"))
	auto := strings.ToLower(m.Header.Get("Auto-Submitted"))
	daemon := strings.Contains(from, "mailer-daemon") || strings.Contains(from, "postmaster")
	rep.isBounce = daemon || envelopeFrom == "" && (auto == "" || auto == "no")
	rep.recipients = nil
	return rep
}

// parseDeliveryStatus reads the per-message block and the per-recipient
// blocks of a delivery-status body (RFC 3464 2.1).
func parseDeliveryStatus(body []byte) (reporter string, out []recipientFields) {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(body)))
	first := true
	for {
		h, err := r.ReadMIMEHeader()
		if len(h) > 0 {
			if first && h.Get("Final-Recipient") == "" {
				reporter = fieldValue(h.Get("Reporting-MTA"))
			} else {
				out = append(out, recipientFields{
					final:      strings.Trim(fieldValue(h.Get("Final-Recipient")), "<>"),
					original:   strings.Trim(fieldValue(h.Get("Original-Recipient")), "<>"),
					action:     strings.ToLower(strings.TrimSpace(h.Get("Action"))),
					status:     strings.TrimSpace(h.Get("Status")),
					diagnostic: oneLine(fieldValue(h.Get("Diagnostic-Code"))),
				})
			}
			first = false
		}
		if err != nil {
			return reporter, out
		}
	}
}

// fieldValue drops the type of a typed DSN field ("rfc822; <a@b>" → "<a@b>",
// "smtp; 550 ..." → "550 ...").
func fieldValue(v string) string {
	if _, rest, ok := strings.Cut(v, ";"); ok {
		v = rest
	}
	v = strings.TrimSpace(v)
	if dec, err := new(mime.WordDecoder).DecodeHeader(v); err == nil {
		v = dec
	}
	return v
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func bounded(s string) string {
	if len(s) > maxBounceDetail {
		return s[:maxBounceDetail] + "\n[...]"
	}
	return s
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
