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
	"io"
	"log/slog"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
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
	inner smtp.Backend
	log   *slog.Logger // the service's
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
	safe := &safeSession{inner: sess, log: log}
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

// safeSession is a session whose errors are safe to send.
type safeSession struct {
	inner smtp.Session
	log   *slog.Logger
}

func (s *safeSession) Reset()        { s.inner.Reset() }
func (s *safeSession) Logout() error { return safeError(s.log, "QUIT", s.inner.Logout()) }

func (s *safeSession) Mail(from string, opts *smtp.MailOptions) error {
	return safeError(s.log, "MAIL", s.inner.Mail(from, opts))
}

func (s *safeSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	return safeError(s.log, "RCPT", s.inner.Rcpt(to, opts))
}

func (s *safeSession) Data(r io.Reader) error {
	return safeError(s.log, "DATA", s.inner.Data(r))
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
