package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/internal/metrics"
	"github.com/supportgate/supportgate/policy"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/threading"
)

// Submission replies (DESIGN.md §5 item 8: refusals are clear).
var (
	// RFC 4954 4: AUTH over plaintext from another machine.
	errEncryptionRequired = &smtp.SMTPError{Code: 538, EnhancedCode: smtp.EnhancedCode{5, 7, 11},
		Message: "Encryption is required before authenticating from another machine"}
	// RFC 4954 6.
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message: "Authentication is required: log in with your agent address and password"}
	errBadHeader = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: "The message header cannot be read, so the message cannot be rewritten and sent"}
	errNoCustomer = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 5, 1},
		Message: "This message starts no conversation: address it to a customer, or reply to a message of a conversation"}
)

func (s *Server) newSubmission() *smtpServer {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		ctx, cancel := context.WithCancel(context.Background())
		id := s.nextConnID("sub")
		remote := c.Conn().RemoteAddr()
		log := s.log.With("service", "submission", "conn", id, "remote", remote.String())
		_, tls := c.TLSConnectionState()
		return &submissionSession{srv: s, ctx: ctx, cancel: cancel, log: log, ip: ipOf(remote),
			authAllowed: tls || isLoopback(remote)}, nil
	}))
	srv.Domain = s.cfg().Server.Hostname
	srv.MaxMessageBytes = s.cfg().Server.MaxMessageBytes
	srv.MaxRecipients = s.cfg().Limits.MaxRecipients
	srv.MaxLineLength = maxLineBytes
	srv.TLSConfig = s.tlsConfig // STARTTLS (RFC 3207) when [tls] is set
	// go-smtp's switch is server-wide; the session refuses plaintext AUTH
	// from other machines itself (authAllowed).
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = s.cfg().Limits.ReadTimeout // per command line, and for the whole of DATA
	srv.WriteTimeout = 5 * time.Minute
	// DESIGN.md §8: a session that sends no message is closed after 100
	// commands or read_timeout x 3 (third_party/go-smtp PATCHES.md).
	srv.MaxCommandsWithoutMessage = maxCommandsWithoutMessage
	srv.MaxTimeWithoutMessage = 3 * s.cfg().Limits.ReadTimeout
	srv.ErrorLog = slogPrinter{s.log.With("service", "submission")}
	return &smtpServer{Server: srv, limits: s.limits, service: "submission", log: s.log.With("service", "submission"),
		metrics: s.metrics}
}

// submissionSession is one agent's SMTP connection.
type submissionSession struct {
	srv         *Server
	ctx         context.Context
	cancel      context.CancelFunc
	log         *slog.Logger
	ip          string
	authAllowed bool

	agent *config.Agent
	from  string
	rcpts []string
}

var _ smtp.AuthSession = (*submissionSession)(nil)

func (m *submissionSession) AuthMechanisms() []string {
	if !m.authAllowed {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

func (m *submissionSession) Auth(mech string) (sasl.Server, error) {
	if !m.authAllowed {
		return nil, errEncryptionRequired
	}
	// DESIGN.md §8: failed logins per IP are slowed down, then refused
	// (RFC 4954 6: 454 4.7.0, temporary).
	if m.srv.limits.AuthLocked(m.ip) {
		m.log.Info("authentication refused: too many failed logins from this address")
		return nil, errAuthLocked
	}
	check := func(username, password string) error {
		// DESIGN.md §8: guesses in flight count, so parallel connections
		// get no more checked than max_auth_failures_per_ip.
		if !m.srv.limits.AuthBegin(m.ip) {
			m.log.Info("authentication refused: too many failed logins from this address")
			return errAuthLocked
		}
		defer m.srv.limits.AuthEnd(m.ip)
		agent, ok := m.srv.authenticate(username, password)
		if !ok {
			m.log.Info("authentication failed", "user", username)
			m.srv.metrics.AuthFailure(metrics.Submission)
			delay, locked := m.srv.limits.AuthFailed(m.ip)
			if locked {
				m.log.Warn("too many failed logins: refusing logins from this address for a while", "ip", m.ip)
			}
			wait(m.ctx, delay)
			return smtp.ErrAuthFailed
		}
		m.agent = &agent
		m.log = m.log.With("agent", agent.Email)
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && !strings.EqualFold(identity, username) {
				return smtp.ErrAuthFailed // no acting as another agent
			}
			return check(username, password)
		}), nil
	case sasl.Login:
		return newLoginServer(check), nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (m *submissionSession) Reset() { m.from, m.rcpts = "", nil }

func (m *submissionSession) Logout() error {
	m.cancel()
	return nil
}

func (m *submissionSession) Mail(from string, _ *smtp.MailOptions) error {
	if m.agent == nil {
		logRefused(m.log, "MAIL refused", errAuthRequired, "not logged in", "from", envelopeFrom(strings.ToLower(from)))
		return errAuthRequired
	}
	m.Reset()
	m.from = strings.ToLower(from)
	return nil
}

func (m *submissionSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	to = strings.ToLower(to)
	if m.agent == nil {
		logRefused(m.log, "RCPT refused", errAuthRequired, "not logged in", "from", envelopeFrom(m.from), "rcpt", to)
		return errAuthRequired
	}
	if !slices.Contains(m.rcpts, to) {
		m.rcpts = append(m.rcpts, to)
	}
	return nil
}

func (m *submissionSession) Data(r io.Reader) error {
	raw, release, err := readData(r, m.srv.inflight)
	if err != nil {
		logRefused(m.log, "submission refused", err, "", inboundAttrs(m.from, m.rcpts, "")...)
		return err
	}
	defer release()
	sub := submission{agent: *m.agent, rcpts: m.rcpts, raw: raw}
	res, err := m.srv.submit(m.ctx, sub)
	// message_id is the one the agent's client wrote; the rewritten
	// message has the server's (outbound_message_id).
	attrs := inboundAttrs(m.from, m.rcpts, res.clientMessageID)
	if err != nil {
		var smtpErr *smtp.SMTPError
		if errors.As(err, &smtpErr) {
			logRefused(m.log, "submission refused", smtpErr, "", attrs...)
			return smtpErr
		}
		m.log.Error("recording submission failed; the client was answered 451 4.3.0", append(attrs, "result", metrics.Deferred, "err", err)...)
		return errTemporary
	}
	if res.duplicate {
		m.log.Info("submission was recorded before; not recorded or sent again", append(attrs, "result", metrics.Accepted,
			"conversation", res.conversation, "message", res.message, "kind", res.kind)...)
		return nil
	}
	m.log.Info("submission recorded", append(attrs, "result", metrics.Accepted, "conversation", res.conversation,
		"message", res.message, "kind", res.kind, "recipients", res.recipients, "outbound_message_id", res.messageID)...)
	return nil
}

// submission is one message an agent sent.
type submission struct {
	agent config.Agent
	rcpts []string
	raw   []byte
}

type submitted struct {
	conversation, message int64
	kind                  store.Kind
	recipients            int
	duplicate             bool   // submitted before: nothing was recorded or sent now
	messageID             string // the Message-ID of what was recorded (a new one; "" for a duplicate)
	clientMessageID       string // the Message-ID the agent's client wrote, also when refused
}

// refuse builds a permanent refusal with a sentence for the agent.
func refuse(code int, enh smtp.EnhancedCode, format string, args ...any) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: fmt.Sprintf(format, args...)}
}

// submit applies DESIGN.md §5 to an agent's message: find or start its
// conversation, check the agent's role, decide note or reply and the
// recipients, rewrite, then record and queue in one transaction. It returns
// an *smtp.SMTPError for every refusal the agent should read.
func (s *Server) submit(ctx context.Context, sub submission) (res submitted, err error) {
	info := parseHeaderInfo(sub.raw)
	defer func() { res.clientMessageID = info.MessageID }() // for the log line, whatever happened
	cfg := s.cfg()

	// DESIGN.md §5 item 9: the same message again (a lost 250, an Outbox
	// retry) is answered 250 and neither recorded nor sent twice. The
	// store's unique record of the client's Message-ID decides a race.
	if info.MessageID != "" {
		prev, ok, err := s.store.Submitted(ctx, sub.agent.Email, info.MessageID)
		if err != nil {
			return submitted{}, err
		}
		if ok {
			return submitted{conversation: prev.Conversation, message: prev.ID, kind: prev.Kind, duplicate: true}, nil
		}
	}

	// 1. Conversation: a reply token among the recipients, or the references.
	dec, err := threading.Decide(ctx, s.keys, s.store, threading.Input{
		Recipients: sub.rcpts, InReplyTo: info.InReplyTo, References: info.References,
		Sender: sub.agent.Email, Subject: info.RawSubject, Now: time.Now(), Agent: true,
	})
	if err != nil {
		return submitted{}, err
	}
	conv := dec.Conv
	allInternal := !slices.ContainsFunc(sub.rcpts, func(a string) bool { return !policy.IsInternal(cfg, a) })
	var newConv *store.NewConversation
	if conv.ID == 0 {
		// A new outbound conversation, owned by the first external To, in the
		// inbox the From header names, else the agent's first inbox.
		owner := ""
		for _, a := range info.To {
			if !policy.IsInternal(cfg, a) {
				owner = a
				break
			}
		}
		if owner == "" || allInternal {
			return submitted{}, errNoCustomer
		}
		inbox, ok := policy.InboxOf(cfg, info.From)
		if !ok {
			inbox, ok = firstReplyInbox(cfg, sub.agent)
		}
		if !ok {
			return submitted{}, refuse(550, smtp.EnhancedCode{5, 7, 1},
				"You have no inbox where you may write to customers; ask an admin for the reply role")
		}
		newConv = &store.NewConversation{Inbox: inbox.Address, Owner: owner, Subject: cleanSubject(info.Subject),
			NormSubject: threading.NormalizeSubject(info.RawSubject)}
		conv = store.Conversation{Inbox: inbox.Address, Owner: owner, Status: store.StatusOpen}
	}
	inbox, ok := cfg.Inbox(conv.Inbox)
	if !ok {
		return submitted{}, refuse(550, smtp.EnhancedCode{5, 7, 1},
			"Conversation %d belongs to %s, which is no longer an inbox of this server", conv.ID, conv.Inbox)
	}

	// 2. Permission.
	if role := sub.agent.Roles[inbox.Address]; !policy.CanReply(role) {
		return submitted{}, refuse(550, smtp.EnhancedCode{5, 7, 1},
			"You may read %s but not write in it (your role there is %q); ask an admin for the reply role", inbox.Address, roleName(role))
	}

	// 4. Quick actions (read before the kind is decided): a message of
	// nothing but actions is an action, not a note.
	qa, err := parseQuickActions(cfg, inbox, sub.raw)
	if err != nil {
		return submitted{}, err
	}
	raw := qa.raw
	// DESIGN.md §14: #merge is checked now and done last, so that a refusal
	// leaves everything as it was.
	mergeInto, err := s.mergeTarget(ctx, sub.agent, conv, qa)
	if err != nil {
		return submitted{}, err
	}
	if mergeInto != 0 {
		defer func() {
			if err == nil && !res.duplicate {
				if merr := s.desk.Merge(ctx, sub.agent, conv.ID, mergeInto); merr != nil {
					err = merr
				}
			}
		}()
	}
	// DESIGN.md §14: #side, or an answer to a side conversation's message
	// (a note to the team stays a note).
	sideNum, err := s.sideOf(ctx, dec, info.InReplyTo, info.References)
	if err != nil {
		return submitted{}, err
	}
	if !qa.only && (qa.has(policy.ActionSide) || sideNum > 0 && (!allInternal || dec.Side > 0)) {
		if conv.ID == 0 {
			return submitted{}, refuse(550, smtp.EnhancedCode{5, 5, 1},
				"Nothing was sent: #side starts a side conversation of a conversation; press Reply on one of its messages, then write #side at the top")
		}
		return s.submitSide(ctx, sub, info, conv, inbox, qa, sideNum)
	}
	if qa.only {
		if conv.ID == 0 {
			return submitted{}, errNoCustomer
		}
		if changes := qa.changes(); len(changes) > 0 {
			if err := s.desk.QuickActions(ctx, sub.agent, conv.ID, changes); err != nil {
				return submitted{}, err
			}
		}
		return submitted{conversation: conv.ID, kind: "action"}, nil
	}

	// 3. Kind: only internal recipients make a note; it is stored, never sent.
	kind := store.KindReply
	if allInternal {
		kind = store.KindNote
	}
	if kind == store.KindReply && inbox.RequireTag && len(conv.Tags) == 0 && !qa.addsTag() {
		return submitted{}, refuse(550, smtp.EnhancedCode{5, 7, 1},
			"Nothing was sent: conversations of %s need a tag before a reply; put a line \"#tag <tag>\" at the top of your message", inbox.Address)
	}

	// 5. Recipients and participants.
	var rcpt policy.Recipients
	if kind == store.KindReply {
		rcpt = policy.ReplyRecipients(cfg, conv.Owner, conv.Participants, info.To, info.Cc, sub.rcpts, inbox.BCC)
		if n := len(conv.Participants) + len(rcpt.NewParticipants); n > inbox.MaxParticipants {
			return submitted{}, refuse(550, smtp.EnhancedCode{5, 7, 1},
				"Nothing was sent: conversations of %s may have at most %d participants besides the customer, and adding %s would make %d",
				inbox.Address, inbox.MaxParticipants, strings.Join(rcpt.NewParticipants, ", "), n)
		}
		// DESIGN.md §7: agents cannot write to blocked senders.
		for _, a := range rcpt.Envelope {
			if cfg.Blocked(inbox, a) {
				return submitted{}, refuse(550, smtp.EnhancedCode{5, 7, 1}, "Nothing was sent: %s is blocked in %s", a, inbox.Address)
			}
		}
		var refusal *policy.Refusal
		if err := policy.CheckAttachments(inbox, raw); errors.As(err, &refusal) {
			return submitted{}, refuse(550, smtp.EnhancedCode{5, 7, 1}, "%s", refusal.Msg)
		}
	}

	// 10. The collision hold: checked as the reply is recorded
	// (store.Outbound.Hold); the refusal then says who wrote what since.
	var hold *store.Hold
	if kind == store.KindReply && !qa.has(policy.ActionSend) {
		if hold, err = s.collisionHold(ctx, inbox, conv.ID, info.InReplyTo); err != nil {
			return submitted{}, err
		}
	}

	// 6. Numbers, then the rewrite.
	if newConv != nil {
		if conv.ID, err = s.store.NextConversationNumber(ctx); err != nil {
			return submitted{}, err
		}
	}
	msgNum, err := s.store.NextMessageNumber(ctx)
	if err != nil {
		return submitted{}, err
	}
	msgID := s.keys.MessageID(conv.ID, msgNum, cfg.Server.Hostname)
	var out []byte
	if kind == store.KindNote {
		out, err = policy.RewriteNote(raw, msgID)
	} else {
		out, err = policy.ReplyRewrite{
			AgentName:    sub.agent.Name,
			InboxName:    inbox.Name,
			InboxAddress: inbox.Address,
			ReplyTo:      policy.ReplyAddress(inbox.Address, s.keys.ReplyToken(conv.ID)),
			To:           conv.Owner,
			Cc:           slices.Concat(conv.Participants, rcpt.NewParticipants), // the owner is never a new participant
			MessageID:    msgID,
			SubjectTag:   subjectTag(inbox, conv.ID),
			ThreadIndex:  s.parentThreadIndex(ctx, info.InReplyTo),
			InReplyTo:    info.InReplyTo,
			References:   info.References,
			Now:          time.Now(),
		}.Rewrite(raw)
	}
	if errors.Is(err, policy.ErrMalformedMessage) {
		return submitted{}, errBadHeader
	}
	if err != nil {
		return submitted{}, err
	}

	// 7. Recorded, then queued, in one transaction.
	_, domain, _ := strings.Cut(inbox.Address, "@")
	if kind == store.KindReply {
		// A note never leaves: only a reply is signed (signOutbound).
		if out, err = s.signOutbound(out, domain); err != nil {
			return submitted{}, err
		}
	}
	// DESIGN.md §6: Reply in a mail client on the IMAP copy writes to the
	// customer (a public reply) or stays a note (a note).
	servedReplyTo := conv.Owner
	if kind == store.KindNote {
		servedReplyTo = inbox.Address
	}
	_, servedCut := policy.WithoutField(out, "Reply-To")
	// DESIGN.md §5 item 4: the quick actions commit with the message.
	var update *store.ConversationUpdate
	if changes := qa.changes(); len(changes) > 0 {
		u := s.desk.QuickActionsUpdate(inbox, sub.agent, changes)
		update = &u
	}
	err = s.store.AddOutbound(ctx, store.Outbound{
		Message:         msgNum,
		Conversation:    conv.ID,
		NewConversation: newConv,
		Kind:            kind,
		Agent:           sub.agent.Email,
		MessageIDHeader: msgID,
		Raw:             out,
		Received:        time.Now(),
		MailFrom:        "bounces+" + s.keys.BounceToken(msgNum) + "@" + domain,
		Recipients:      rcpt.Envelope,
		HiddenBCC:       rcpt.HiddenBCC,
		NewParticipants: rcpt.NewParticipants,
		ClientMessageID: info.MessageID,
		ServedReplyTo:   servedReplyTo,
		ServedCut:       int64(servedCut),
		Cap:             store.ParticipantCap{Max: inbox.MaxParticipants, Enforce: true},
		Update:          update,
		Hold:            hold,
	})
	if errors.Is(err, store.ErrCollision) {
		// Someone wrote between the check above and the recording.
		if rerr := s.collisionRefusal(ctx, sub.agent.Email, conv.ID, hold); rerr != nil {
			return submitted{}, rerr
		}
		return submitted{}, refuse(550, smtp.EnhancedCode{5, 7, 0},
			"Not sent: someone wrote in this conversation since the message you answered; read the news and send again, or put #send at the top of your message to send it anyway")
	}
	if errors.Is(err, store.ErrParticipantCap) {
		// Another message added participants since they were counted
		// above: the store counted again, in the transaction.
		return submitted{}, refuse(550, smtp.EnhancedCode{5, 7, 1},
			"Nothing was sent: conversations of %s may have at most %d participants besides the customer, and adding %s would pass that",
			inbox.Address, inbox.MaxParticipants, strings.Join(rcpt.NewParticipants, ", "))
	}
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
	return submitted{conversation: conv.ID, message: msgNum, kind: kind, recipients: len(rcpt.Envelope), messageID: msgID}, nil
}

// parentThreadIndex returns the Thread-Index for a reply to the stored
// message the agent answers, when that message had one (Outlook threading).
func (s *Server) parentThreadIndex(ctx context.Context, inReplyTo []string) *policy.ThreadIndexHeader {
	if len(inReplyTo) == 0 {
		return nil
	}
	parent, err := s.store.MessageByHeaderID(ctx, inReplyTo[0])
	if err != nil {
		return nil // none, or unreadable: the reply still threads by References
	}
	raw, err := s.store.MessageRaw(ctx, parent.ID)
	if err != nil {
		return nil
	}
	h := parseHeaderInfo(raw).Header
	idx, ok := policy.ChildThreadIndex(h.Get("Thread-Index"), time.Now())
	if !ok {
		return nil
	}
	return &policy.ThreadIndexHeader{Index: idx, Topic: cleanSubject(h.Get("Thread-Topic"))}
}

func subjectTag(inbox config.Inbox, conv int64) string {
	if !inbox.SubjectTag {
		return ""
	}
	return threading.Tag(conv)
}

func firstReplyInbox(cfg *config.Config, agent config.Agent) (config.Inbox, bool) {
	for _, in := range cfg.Inboxes {
		if policy.CanReply(agent.Roles[in.Address]) {
			return in, true
		}
	}
	return config.Inbox{}, false
}

func roleName(r config.Role) string {
	if r == "" {
		return "none"
	}
	return string(r)
}
