package gateway

// One mapping from internal errors to safe SMTP replies (DESIGN.md §8).
// go-smtp answers an error that is not an *smtp.SMTPError with its text
// (Mail, Rcpt and Auth: "451 4.0.0 <err>"; Data: "554 5.0.0 Error:
// transaction failed: <err>"), which would show a client file names, SQL or
// addresses. Every session is therefore wrapped: an *smtp.SMTPError passes
// as it is (our sentences), anything else is logged with the connection's
// ID and answered with errTemporary, 451 4.3.0 (RFC 3463: the server's own
// failure; the client retries). The wrapping is done in smtpServer.Serve
// (limits.go), so no service can be started without it.

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/internal/metrics"
)

// errAuthExchange: the SASL exchange failed in a way that is not a wrong
// password (a malformed or cancelled response); RFC 4954 6: 535 5.7.8.
var errAuthExchange = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8},
	Message: "Authentication failed: the login could not be completed; check the user name and password and try again"}

// connLogger is implemented by sessions that carry their connection's
// logger (with its "conn" ID).
type connLogger interface {
	connLog() *slog.Logger
}

func (m *mxSession) connLog() *slog.Logger         { return m.log }
func (m *submissionSession) connLog() *slog.Logger { return m.log }

// safeBackend wraps a backend's sessions in safeSession.
type safeBackend struct {
	inner   smtp.Backend
	log     *slog.Logger // the service's
	service string       // "mx" or "submission", for the metrics
	metrics *metrics.Metrics
}

func (b safeBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	log := b.log.With("remote", c.Conn().RemoteAddr().String())
	sess, err := b.inner.NewSession(c)
	if err != nil {
		return nil, safeError(log, "connect", err)
	}
	if cl, ok := sess.(connLogger); ok {
		log = cl.connLog()
	}
	safe := &safeSession{inner: sess, log: log, service: b.service, metrics: b.metrics}
	// go-smtp offers AUTH only to sessions that implement it: keep that.
	if a, ok := sess.(smtp.AuthSession); ok {
		return &safeAuthSession{safeSession: safe, auth: a}, nil
	}
	return safe, nil
}

// safeError returns err when it is a reply meant for the client, and
// otherwise logs it and returns errTemporary.
func safeError(log *slog.Logger, command string, err error) error {
	if err == nil {
		return nil
	}
	var reply *smtp.SMTPError
	if errors.As(err, &reply) {
		return reply // unwrapped: go-smtp recognises only a bare *SMTPError
	}
	log.Error("internal error; the client was answered 451 4.3.0", "command", command, "err", err)
	return errTemporary
}

// safeSession is a session whose errors are safe to send. It also counts
// each transaction once in supportgate_smtp_messages_total, by the reply
// that decided it: DATA's, MAIL's when MAIL was refused, or the last RCPT's
// when every RCPT was refused (counted when the transaction ends: RSET, the
// next MAIL, QUIT or a lost connection).
type safeSession struct {
	inner   smtp.Session
	log     *slog.Logger
	service string
	metrics *metrics.Metrics

	mu          sync.Mutex // go-smtp may call Logout from another goroutine
	inTx        bool       // MAIL was accepted, DATA has not come
	rcptOK      bool       // a RCPT of the transaction was accepted
	rcptRefused string     // the result of its last refused RCPT, "" if none
}

// count counts one message with the result of its deciding reply.
func (s *safeSession) count(reply error) {
	s.metrics.SMTPMessage(s.service, replyResult(reply))
}

// endTx counts a transaction whose every RCPT was refused, and forgets it.
func (s *safeSession) endTx() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inTx && !s.rcptOK && s.rcptRefused != "" {
		s.metrics.SMTPMessage(s.service, s.rcptRefused)
	}
	s.inTx, s.rcptOK, s.rcptRefused = false, false, ""
}

func (s *safeSession) Reset() {
	s.endTx()
	s.inner.Reset()
}

func (s *safeSession) Logout() error {
	s.endTx()
	return safeError(s.log, "QUIT", s.inner.Logout())
}

func (s *safeSession) Mail(from string, opts *smtp.MailOptions) error {
	s.endTx()
	err := safeError(s.log, "MAIL", s.inner.Mail(from, opts))
	if err != nil {
		s.count(err)
		return err
	}
	s.mu.Lock()
	s.inTx = true
	s.mu.Unlock()
	return nil
}

func (s *safeSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	err := safeError(s.log, "RCPT", s.inner.Rcpt(to, opts))
	s.mu.Lock()
	if err != nil {
		s.rcptRefused = replyResult(err)
	} else {
		s.rcptOK = true
	}
	s.mu.Unlock()
	return err
}

func (s *safeSession) Data(r io.Reader) error {
	err := safeError(s.log, "DATA", s.inner.Data(r))
	s.mu.Lock()
	s.inTx = false // counted here, not again at the Reset that follows
	s.mu.Unlock()
	s.count(err)
	return err
}

// replyResult is the metrics' result of a reply: nil is accepted, a 4xx
// deferred, anything else refused. Internal errors reach here as
// errTemporary (safeError), so as deferred.
func replyResult(reply error) string {
	if reply == nil {
		return metrics.Accepted
	}
	var e *smtp.SMTPError
	if errors.As(reply, &e) && e.Code >= 400 && e.Code < 500 {
		return metrics.Deferred
	}
	return metrics.Refused
}

// logRefused writes the line of a refused command or message: the reply the
// client read (code, enhanced status code as dsn=, sentence as reason=),
// whether it retries (result=deferred) or not (result=refused), and why
// when the sentence does not tell the admin (why=). attrs name the
// envelope (from=, rcpt=, message_id=).
func logRefused(log *slog.Logger, msg string, reply error, why string, attrs ...any) {
	var e *smtp.SMTPError
	if !errors.As(reply, &e) {
		return
	}
	args := append(attrs[:len(attrs):len(attrs)], "result", replyResult(reply), "code", e.Code)
	if e.EnhancedCode != smtp.NoEnhancedCode && e.EnhancedCode != (smtp.EnhancedCode{}) {
		args = append(args, "dsn", fmt.Sprintf("%d.%d.%d", e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2]))
	}
	args = append(args, "reason", e.Message)
	if why != "" {
		args = append(args, "why", why)
	}
	log.Info(msg, args...)
}

// envelopeFrom is the MAIL FROM of the logs: "<>" for the null sender,
// so that a bounce's line says so.
func envelopeFrom(from string) string {
	if from == "" {
		return "<>"
	}
	return from
}

// safeAuthSession is a safeSession that offers AUTH.
type safeAuthSession struct {
	*safeSession
	auth smtp.AuthSession
}

var _ smtp.AuthSession = (*safeAuthSession)(nil)

func (s *safeAuthSession) AuthMechanisms() []string { return s.auth.AuthMechanisms() }

func (s *safeAuthSession) Auth(mech string) (sasl.Server, error) {
	srv, err := s.auth.Auth(mech)
	if err != nil {
		return nil, safeError(s.log, "AUTH", err)
	}
	return safeSASL{inner: srv, log: s.log}, nil
}

// safeSASL answers a SASL mechanism's own errors (a malformed or cancelled
// response: the client's doing, not ours) with errAuthExchange.
type safeSASL struct {
	inner sasl.Server
	log   *slog.Logger
}

func (s safeSASL) Next(response []byte) ([]byte, bool, error) {
	challenge, done, err := s.inner.Next(response)
	if err == nil {
		return challenge, done, nil
	}
	var reply *smtp.SMTPError
	if errors.As(err, &reply) {
		return challenge, done, reply
	}
	s.log.Info("authentication exchange failed", "err", err)
	return challenge, done, errAuthExchange
}
