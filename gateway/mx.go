package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/policy"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/threading"
)

// maxRecipients bounds RCPT TO per transaction (RFC 5321 4.5.3.1.8 asks for
// at least 100).
const maxRecipients = 100

// RFC 5321 4.2.2 / RFC 3463 5.1.1: we are the MX of the support addresses only.
var errNoSuchInbox = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
	Message: "No such support address here; this server accepts mail only for its support addresses"}

func (s *Server) newMX() *smtp.Server {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		ctx, cancel := context.WithCancel(context.Background())
		id := s.nextConnID("mx")
		log := s.log.With("conn", id, "remote", c.Conn().RemoteAddr().String())
		log.Debug("connection opened")
		return &mxSession{srv: s, ctx: ctx, cancel: cancel, log: log}, nil
	}))
	srv.Domain = s.cfg.Server.Hostname
	srv.MaxMessageBytes = s.cfg.Server.MaxMessageBytes
	srv.MaxRecipients = maxRecipients
	srv.MaxLineLength = maxLineBytes
	srv.ReadTimeout = 5 * time.Minute // RFC 5321 4.5.3.2.7 suggests 5 minutes between commands
	srv.WriteTimeout = 5 * time.Minute
	srv.ErrorLog = slogPrinter{s.log.With("service", "mx")}
	return srv
}

// mxSession is one inbound SMTP connection. Nothing is persistent before
// Data commits the message.
type mxSession struct {
	srv    *Server
	ctx    context.Context // cancelled when the connection closes
	cancel context.CancelFunc
	log    *slog.Logger

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
	m.from = strings.ToLower(from)
	return nil
}

func (m *mxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	to = strings.ToLower(to)
	if _, ok := policy.InboxOf(m.srv.cfg, to); !ok {
		return errNoSuchInbox
	}
	m.rcpts = append(m.rcpts, to)
	return nil
}

func (m *mxSession) Data(r io.Reader) error {
	raw, err := readData(r)
	if err != nil {
		return err
	}
	res, err := m.srv.deliverInbound(m.ctx, m.from, m.rcpts, raw)
	if err != nil {
		m.log.Error("storing inbound message failed", "err", err)
		return errTemporary
	}
	m.log.Info("inbound message stored", "conversation", res.Conversation, "message", res.Message,
		"duplicate", res.Duplicate, "size", len(raw))
	return nil
}

// deliverInbound threads and stores one inbound message; it returns only
// when the message is durable.
func (s *Server) deliverInbound(ctx context.Context, from string, rcpts []string, raw []byte) (store.InboundResult, error) {
	info := parseHeaderInfo(raw)
	inbox, _ := policy.InboxOf(s.cfg, rcpts[0])
	sender := info.From
	if sender == "" {
		sender = from // no readable From: the envelope is all we know
	}
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
		return store.InboundResult{}, err
	}
	// The conversation's inbox rules, which may differ from the address the
	// mail came to when references thread it across inboxes.
	rules := inbox
	if conv, ok := s.cfg.Inbox(dec.Conv.Inbox); ok {
		rules = conv
	}
	_, isAgent := s.cfg.Agent(sender)
	adm := threading.Admit(dec.Conv,
		threading.Sender{Address: sender, IsAgent: isAgent, Auto: threading.IsAutoReply(&info.Header, from)},
		threading.InboxRules{Strangers: rules.Strangers, MaxParticipants: rules.MaxParticipants})
	in := store.Inbound{
		Inbox:           inbox.Address,
		Conversation:    dec.Conv.ID,
		Owner:           sender,
		Subject:         cleanSubject(info.Subject),
		NormSubject:     threading.NormalizeSubject(info.RawSubject),
		Sender:          sender,
		SenderRole:      adm.Role,
		Reopen:          adm.Reopen,
		MessageIDHeader: info.MessageID,
		SeenMessageIDs:  threading.ReferencedIDs(info.InReplyTo, info.References),
		Raw:             raw,
		Received:        now,
	}
	if adm.Join {
		in.NewParticipants = []string{sender}
	}
	return s.store.AddInbound(ctx, in)
}

// slogPrinter adapts go-smtp's error log to slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.log.Warn(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (p slogPrinter) Println(v ...any) {
	p.log.Warn(strings.TrimSpace(fmt.Sprintln(v...)))
}
