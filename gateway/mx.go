package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/internal/metrics"
	"github.com/supportgate/supportgate/policy"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/threading"
)

// RFC 3463 5.7.1: refused by policy (DESIGN.md §7).
var (
	errBlockedSender = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: "Mail from this sender is refused by this support address"}
	errReadOnly = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: "This conversation is read-only: the support team no longer accepts mail into it"}
)

// RFC 5321 4.2.2 / RFC 3463 5.1.1: we are the MX of the support addresses only.
var errNoSuchInbox = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
	Message: "No such support address here; this server accepts mail only for its support addresses"}

func (s *Server) newMX() *smtpServer {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		ctx, cancel := context.WithCancel(withMXClient(context.Background(), c)) // gateway/mailauth.go
		id := s.nextConnID("mx")
		log := s.log.With("service", "mx", "conn", id, "remote", c.Conn().RemoteAddr().String())
		log.Debug("connection opened")
		return &mxSession{srv: s, ctx: ctx, cancel: cancel, log: log, ip: ipOf(c.Conn().RemoteAddr()), conn: c, id: id}, nil
	}))
	srv.Domain = s.cfg().Server.Hostname
	srv.MaxMessageBytes = s.cfg().Server.MaxMessageBytes
	srv.MaxRecipients = s.cfg().Limits.MaxRecipients // RFC 5321 4.5.3.1.8: at least 100 by default
	srv.MaxLineLength = maxLineBytes
	srv.TLSConfig = s.tlsConfig // STARTTLS (RFC 3207) when [tls] is set
	// RFC 5321 4.5.3.2.7: 5 minutes between commands by default. go-smtp
	// sets the deadline per command line and not again during DATA, so the
	// whole message must arrive within it too: slow-loris clients are dropped.
	srv.ReadTimeout = s.cfg().Limits.ReadTimeout
	srv.WriteTimeout = 5 * time.Minute
	// DESIGN.md §8: a session that sends no message is closed after 100
	// commands or read_timeout x 3 (third_party/go-smtp PATCHES.md).
	srv.MaxCommandsWithoutMessage = maxCommandsWithoutMessage
	srv.MaxTimeWithoutMessage = 3 * s.cfg().Limits.ReadTimeout
	srv.ErrorLog = slogPrinter{s.log.With("service", "mx")}
	return &smtpServer{Server: srv, limits: s.limits, service: "mx", log: s.log.With("service", "mx"), metrics: s.metrics}
}

// mxSession is one inbound SMTP connection. Nothing is persistent before
// Data commits the message.
type mxSession struct {
	srv    *Server
	ctx    context.Context // cancelled when the connection closes
	cancel context.CancelFunc
	log    *slog.Logger
	ip     string
	conn   *smtp.Conn
	id     string // the connection ID of the logs, also in Received:

	from  string
	rcpts []string // lower-cased
}

func (m *mxSession) Reset() {
	m.from, m.rcpts = "", nil
}

func (m *mxSession) Logout() error {
	m.cancel()
	return nil
}

func (m *mxSession) Mail(from string, _ *smtp.MailOptions) error {
	m.Reset()
	from = strings.ToLower(from)
	// DESIGN.md §8: messages per sender per hour; the null sender (bounces)
	// is counted per connecting IP.
	// Only accepted messages count (Data): MAIL FROM and RSET never use
	// up a sender's quota.
	if m.srv.limits.SenderOverLimit(m.ctx, m.rateKey(from)) {
		logRefused(m.log, "MAIL refused", errSenderRate, "the sender is at limits.max_messages_per_sender_per_hour",
			"from", envelopeFrom(from))
		return errSenderRate
	}
	m.from = from
	return nil
}

// rateKey is what max_messages_per_sender_per_hour counts a message of
// from against: the sender, or for the null sender (bounces) the
// connecting IP.
func (m *mxSession) rateKey(from string) string {
	if from == "" {
		return "<> from " + m.ip
	}
	return from
}

func (m *mxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	to = strings.ToLower(to)
	refused := func(err error, why string) error {
		logRefused(m.log, "RCPT refused", err, why, "from", envelopeFrom(m.from), "rcpt", to)
		return err
	}
	if handled, err := m.srv.bounceRcpt(to); handled { // a return path: gateway/bounce.go
		if err != nil {
			return refused(err, "a return path (bounces+...) whose token this server did not make")
		}
		m.rcpts = append(m.rcpts, to)
		return nil
	}
	inbox, ok := policy.InboxOf(m.srv.cfg(), to)
	if !ok {
		_, domain, _ := strings.Cut(to, "@")
		if !m.srv.isInboxDomain(domain) {
			return refused(errNoSuchInbox, "relay attempt: the recipient's domain is not a domain of the inboxes")
		}
		return refused(errNoSuchInbox, "unknown recipient: no inbox has this address")
	}
	if m.srv.cfg().Blocked(inbox, m.from) {
		return refused(errBlockedSender, "blocked sender: policy.blocked_senders or the inbox's blocked_senders lists it")
	}
	m.rcpts = append(m.rcpts, to)
	return nil
}

func (m *mxSession) Data(r io.Reader) error {
	raw, release, err := readData(r, m.srv.inflight)
	if err != nil {
		logRefused(m.log, "inbound message refused", err, "", inboundAttrs(m.from, m.rcpts, "")...)
		return err
	}
	defer release()
	// RFC 5321 4.4: the trace field goes on top of what is stored; the
	// checks see the message as the client sent it.
	var rcpt string
	if len(m.rcpts) == 1 {
		rcpt = m.rcpts[0] // with several, naming one would disclose it to the others
	}
	trace := receivedField(mxClientOf(m.ctx, m.conn), m.srv.cfg().Server.Hostname, m.id, rcpt, time.Now())
	// DESIGN.md §8: the hourly limit counts the messages answered 250; the
	// count is taken before the message is stored, so that parallel
	// sessions of one sender cannot pass it together, and given back when
	// the message is not accepted.
	give, ok, err := m.srv.limits.TakeMessage(m.ctx, m.rateKey(m.from))
	if err != nil {
		// The store could not count (PostgreSQL unreachable): it could
		// not store the message either.
		logRefused(m.log, "inbound message refused", errTemporary, "the store could not count the sender's messages",
			append(inboundAttrs(m.from, m.rcpts, messageIDOf(raw)), "err", err)...)
		return errTemporary
	}
	if !ok {
		logRefused(m.log, "inbound message refused", errSenderRate, "the sender is at limits.max_messages_per_sender_per_hour",
			inboundAttrs(m.from, m.rcpts, messageIDOf(raw))...)
		return errSenderRate
	}
	if m.srv.isBounceTransaction(m.rcpts) { // bounces: gateway/bounce.go
		err = m.srv.receiveBounce(m.ctx, m.log, m.from, m.rcpts, raw, trace)
	} else {
		err = m.srv.storeInbound(m.ctx, m.log, m.from, m.rcpts, raw, trace)
	}
	if err != nil {
		give()
	}
	return err
}

// storeInbound is deliverInbound with its SMTP answer and its log line:
// a refusal as itself, any other failure as a safe 451.
//
// Its line answers "did the mail from carla@ arrive?": the envelope sender
// (from=), the recipients (rcpt=), the Message-ID (message_id=) and the
// result (result=accepted, refused or deferred), with the conversation and
// message it became, or the reply and why.
func (s *Server) storeInbound(ctx context.Context, log *slog.Logger, from string, rcpts []string, raw []byte, trace string) error {
	res, err := s.deliverInbound(ctx, from, rcpts, raw, trace)
	attrs := inboundAttrs(from, rcpts, res.messageID)
	var refusal *smtp.SMTPError
	if errors.As(err, &refusal) {
		logRefused(log, "inbound message refused", refusal, "", attrs...)
		return refusal
	}
	if err != nil {
		log.Error("storing inbound message failed; the client was answered 451 4.3.0 and retries",
			append(attrs, "result", metrics.Deferred, "err", err)...)
		return errTemporary
	}
	log.Info("inbound message stored", append(attrs, "result", metrics.Accepted, "conversation", res.Conversation,
		"message", res.Message, "duplicate", res.Duplicate, "size", len(raw), "auth_failed", res.authFailed,
		"quarantined", res.quarantined)...)
	return nil
}

// inboundAttrs are the envelope fields of an inbound message's log line.
func inboundAttrs(from string, rcpts []string, messageID string) []any {
	return []any{"from", envelopeFrom(from), "rcpt", strings.Join(rcpts, ","), "message_id", messageID}
}

// messageIDOf reads the Message-ID of a message's header, "" when it has
// none, for a log line.
func messageIDOf(raw []byte) string {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil && h.Len() == 0 {
		return ""
	}
	return threading.ParseMessageID(h.Get("Message-Id"))
}

// storedInbound is what deliverInbound did with a message: where the store
// put it, and what its log line must tell the admin.
type storedInbound struct {
	store.InboundResult
	authFailed  string // the failing checks ("dmarc", "spf"...), "" when none
	quarantined bool   // it opened its conversation in Spam (auth_failure = "quarantine")
	messageID   string // the Message-ID of its header, also when it was refused
}

// deliverInbound threads and stores one inbound message; it returns only
// when the message is durable. trace is the Received: field that the
// stored copy starts with (receivedField).
func (s *Server) deliverInbound(ctx context.Context, from string, rcpts []string, raw []byte, trace string) (res storedInbound, err error) {
	info := parseHeaderInfo(raw)
	defer func() { res.messageID = info.MessageID }() // for the log line, whatever happened
	inbox, _ := policy.InboxOf(s.cfg(), rcpts[0])
	sender := info.From
	if sender == "" && utf8.ValidString(from) {
		sender = from // no readable From: the envelope is all we know
	}
	auth := s.checkMailAuth(ctx, from, info.From, raw) // SPF, DKIM, DMARC: gateway/mailauth.go
	now := time.Now()
	dec, err := threading.Decide(ctx, s.keys, s.store, threading.Input{
		Recipients:       rcpts,
		InReplyTo:        info.InReplyTo,
		References:       info.References,
		Inbox:            inbox.Address,
		Sender:           sender,
		Subject:          info.RawSubject,
		Now:              now,
		ContinuityWindow: inbox.ContinuityWindow,
	})
	if err != nil {
		return storedInbound{}, err
	}
	// The conversation's inbox rules, which may differ from the address the
	// mail came to when references thread it across inboxes.
	rules := inbox
	if conv, ok := s.cfg().Inbox(dec.Conv.Inbox); ok {
		rules = conv
	}
	if s.cfg().Blocked(rules, sender) {
		return storedInbound{}, errBlockedSender
	}
	action := policy.DecideAuth(rules.AuthFailure, auth.failing, policy.AuthTemporary(auth.spf, auth.dmarc))
	switch action {
	case policy.AuthReject:
		return storedInbound{}, errAuthFailed(auth.failing)
	case policy.AuthDefer:
		return storedInbound{}, errAuthTemporary
	}
	_, isAgent := s.cfg().Agent(sender)
	isAgent = isAgent && !auth.dmarcFail // a forged agent address is not an agent
	auto := threading.IsAutoReply(&info.Header, from)
	if dec.Conv.ID != 0 {
		// DESIGN.md §14: an answer in a side conversation is the team's,
		// whoever wrote it; read-only and participants do not apply.
		side, err := s.sideOf(ctx, dec, info.InReplyTo, info.References)
		if err != nil {
			return storedInbound{}, err
		}
		if side > 0 {
			w, rcpts, err := s.inboundSide(ctx, dec.Conv.ID, side, strings.ToLower(sender), info.To, info.Cc, rules.MaxParticipants)
			if err != nil {
				return storedInbound{}, err
			}
			stored, _ := removeForgedAuthResults(raw, s.cfg().Server.Hostname)
			in := store.Inbound{
				Inbox: inbox.Address, Conversation: dec.Conv.ID, Sender: sender, Automatic: auto, Side: w,
				MessageIDHeader: info.MessageID, SeenMessageIDs: threading.ReferencedIDs(info.InReplyTo, info.References),
				Raw: slices.Concat([]byte(trace), []byte(auth.header), stored), Received: now,
			}
			if len(rcpts) > 0 && !slices.ContainsFunc(rcpts, func(a string) bool { return strings.ContainsAny(a, "\r\n") }) {
				// DESIGN.md §6: Reply on the agents' copy writes to the side.
				_, cut := policy.WithoutField(in.Raw, "Reply-To")
				in.ServedReplyTo, in.ServedCut = strings.Join(rcpts, ", "), int64(cut)
			}
			added, err := s.store.AddInbound(ctx, in)
			return storedInbound{InboundResult: added, authFailed: auth.failing}, err
		}
	}
	if dec.Conv.ReadOnly && !isAgent {
		return storedInbound{}, errReadOnly // DESIGN.md §7: read-only conversations
	}
	adm := threading.Admit(dec.Conv,
		threading.Sender{Address: sender, IsAgent: isAgent, Auto: auto, DMARCFail: auth.dmarcFail},
		threading.InboxRules{Strangers: rules.Strangers, MaxParticipants: rules.MaxParticipants})
	// RFC 8601 5: Authentication-Results that claim our name came from
	// outside; they are removed before ours is added.
	stored, forged := removeForgedAuthResults(raw, s.cfg().Server.Hostname)
	if forged > 0 {
		s.log.Info("removed forged Authentication-Results from an inbound message", "fields", forged, "from", from)
	}
	in := store.Inbound{
		Inbox:           inbox.Address,
		Conversation:    dec.Conv.ID,
		Owner:           sender,
		Subject:         cleanSubject(info.Subject),
		NormSubject:     threading.NormalizeSubject(info.RawSubject),
		Sender:          sender,
		SenderRole:      adm.Role,
		Reopen:          adm.Reopen,
		Automatic:       auto,
		MessageIDHeader: info.MessageID,
		SeenMessageIDs:  threading.ReferencedIDs(info.InReplyTo, info.References),
		Raw:             slices.Concat([]byte(trace), []byte(auth.header), stored),
		Received:        now,
		Cap:             store.ParticipantCap{Max: rules.MaxParticipants, Enforce: true},
	}
	participants, owner := dec.Conv.Participants, dec.Conv.Owner
	if dec.Conv.ID == 0 {
		owner = sender
	}
	if adm.Join {
		in.NewParticipants = []string{sender}
		participants = append(slices.Clone(participants), sender)
		in.Events = append(in.Events, store.Event{Type: "participant-added", At: now, Quiet: !rules.ShowEvents,
			Text: sender + " joined the conversation by writing into it"})
	}
	// DESIGN.md §3 item 4: the To and Cc of the owner's or a participant's
	// mail join, up to the cap; the team hears of those over it.
	people := policy.PeopleFromInbound(s.cfg(), owner, participants, adm.Role, auto || auth.dmarcFail, info.To, info.Cc, rules.MaxParticipants)
	in.NewParticipants = append(in.NewParticipants, people.Participants...)
	in.NewFollowers = people.Followers
	if len(people.Participants) > 0 {
		in.Events = append(in.Events, store.Event{Type: "participant-added", At: now, Quiet: !rules.ShowEvents,
			Text: "Added as participants from " + sender + "'s mail: " + strings.Join(people.Participants, ", ")})
	}
	if len(people.OverCap) > 0 {
		in.Events = append(in.Events, store.Event{Type: "participants-over-cap", At: now,
			Text: fmt.Sprintf("Not added as participants, the cap of %d is reached: %s", rules.MaxParticipants, strings.Join(people.OverCap, ", "))})
	}
	if action == policy.AuthFlag || action == policy.AuthQuarantine {
		in.Events = append(in.Events, store.Event{Type: "auth-failed", At: now, Quiet: true,
			Text: sender + "'s mail failed " + auth.failing + "; its sender is not authenticated (see Authentication-Results)"})
	}
	if dec.Conv.ID == 0 && action != policy.AuthQuarantine {
		// DESIGN.md §7: a new request is triaged by the transaction that
		// opens it (gateway/triage.go); quarantined mail is left alone.
		s.triage(&in, rules, sender, info.Subject, raw, now)
	}
	if action == policy.AuthQuarantine {
		// DESIGN.md §8: a conversation this mail opens is created in Spam
		// by the transaction that stores the mail, never moved there by a
		// second write that a crash or an error could lose. Into an
		// existing conversation, or for a duplicate, the store ignores it.
		in.NewStatus = store.StatusSpam
	}
	added, err := s.store.AddInbound(ctx, in)
	if err != nil {
		return storedInbound{}, err
	}
	opened := dec.Conv.ID == 0 && !added.Duplicate
	quarantined := action == policy.AuthQuarantine && opened // AddInbound created it in Spam
	// DESIGN.md §7: an automatic acknowledgement of a new request
	// (gateway/autoack.go); it never refuses the mail. A duplicate may be
	// the retry of a request whose acknowledgement a crash lost: autoack.go
	// decides it again, as quarantined when the original would have been.
	s.autoAcknowledge(ctx, ackCandidate{inbox: rules, conversation: added.Conversation, message: added.Message,
		newConversation: opened, duplicate: added.Duplicate, mailFrom: from, info: info, authFailed: auth.failing != "",
		quarantined: quarantined || added.Duplicate && action == policy.AuthQuarantine})
	return storedInbound{InboundResult: added, authFailed: auth.failing, quarantined: quarantined}, nil
}

// slogPrinter adapts go-smtp's error log to slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.log.Warn(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (p slogPrinter) Println(v ...any) {
	p.log.Warn(strings.TrimSpace(fmt.Sprintln(v...)))
}
