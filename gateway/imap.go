package gateway

// The IMAP side (DESIGN.md §6) lives in gateway/imapgw, the only package
// that imports go-imap; this file wires it to the server and bounds how long
// a client may take to send (DESIGN.md §8: every read has a deadline,
// slow-loris connections are dropped).

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/supportgate/supportgate/gateway/imapgw"
	"github.com/supportgate/supportgate/internal/metrics"
)

// imapAutologout is the shortest wait for an authenticated client's next
// command that is left as the library sets it: RFC 9051 5.4 wants an
// autologout timer of at least 30 minutes after authentication, and
// RFC 2177 3 has IDLE clients re-issue IDLE at least every 29 minutes.
const imapAutologout = 30 * time.Minute

// imapService is the IMAP server with read deadlines on its connections.
type imapService struct {
	*imapgw.Server
	readTimeout time.Duration
}

func (s *Server) newIMAP() *imapService {
	return &imapService{
		Server: imapgw.New(imapgw.Options{
			Config:       s.cfg(),
			Current:      s.cfg,
			Store:        s.store,
			Desk:         s.desk,
			Log:          s.log,
			Authenticate: s.authenticate,
			TLS:          s.tlsConfig,
			Guard:        meteredGuard{Limiter: s.limits, metrics: s.metrics},
			Inflight:     s.inflight,
		}),
		readTimeout: s.cfg().Limits.ReadTimeout,
	}
}

// meteredGuard is the IMAP server's Guard: the Limiter, which also counts
// the connections it admits in supportgate_imap_sessions and the wrong
// passwords in supportgate_auth_failures_total{service="imap"}.
type meteredGuard struct {
	*Limiter
	metrics *metrics.Metrics
}

func (g meteredGuard) Connect(service, ip string) (release func(), ok bool) {
	free, ok := g.Limiter.Connect(service, ip)
	if !ok {
		return nil, false
	}
	closed := g.metrics.IMAPSessionOpened()
	var once sync.Once
	return func() { once.Do(func() { free(); closed() }) }, true
}

func (g meteredGuard) AuthFailed(ip string) (delay time.Duration, lockedNow bool) {
	g.metrics.AuthFailure(metrics.IMAP)
	return g.Limiter.AuthFailed(ip)
}

// Serve serves plain IMAP (with STARTTLS) on l.
func (s *imapService) Serve(l net.Listener) error {
	return s.Server.Serve(&deadlineListener{Listener: l, readTimeout: s.readTimeout})
}

// ServeTLS serves implicit TLS on l; the deadlines apply beneath TLS, so
// they bound the handshake too.
func (s *imapService) ServeTLS(l net.Listener) error {
	return s.Server.ServeTLS(&deadlineListener{Listener: l, readTimeout: s.readTimeout})
}

// deadlineListener gives every accepted connection a deadlineConn.
type deadlineListener struct {
	net.Listener
	readTimeout time.Duration
}

func (l *deadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	dc := &deadlineConn{Conn: c, readTimeout: l.readTimeout, loginBy: time.Now().Add(l.readTimeout)}
	// Until the library sets its own: the greeting, and for implicit TLS
	// the handshake, which go-imap starts without a read deadline.
	if err := dc.SetReadDeadline(time.Time{}); err != nil {
		c.Close()
		return nil, err
	}
	return dc, nil
}

// deadlineConn bounds reads by [limits] read_timeout. go-imap sets a read
// deadline before each read it makes: about 35 minutes while it waits for
// an authenticated client's next command (and for DONE under IDLE), 30
// seconds for a command line with its literals and for any command before
// login, 5 minutes for an APPEND literal. A deadline of at least
// imapAutologout is that authenticated wait and is kept; any other is
// capped at read_timeout, so that a partial command, a literal that stalls
// and a client that never logs in are dropped after read_timeout at most.
// The deadline holds for the whole command, not per byte, so trickling
// bytes does not extend it. Until the first authenticated wait, every
// deadline is also capped at loginBy (read_timeout after the connection
// was accepted): a client that keeps sending NOOP or CAPABILITY without
// ever logging in is dropped too, instead of holding a connection slot for
// ever. This relies on go-imap's deadlines (pinned v2.0.0-beta.8);
// TestIMAPSlowLoris checks both sides.
type deadlineConn struct {
	net.Conn
	readTimeout time.Duration
	loginBy     time.Time // the connection must have authenticated by then

	mu            sync.Mutex
	authenticated bool // go-imap asked for the authenticated wait once
}

// bound returns the deadline to set for a requested one; the zero time (no
// deadline) is never passed on.
func (c *deadlineConn) bound(t time.Time) time.Time {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.IsZero() && t.Sub(now) >= imapAutologout {
		c.authenticated = true
		return t // RFC 9051 5.4: the authenticated wait
	}
	limit := now.Add(c.readTimeout)
	if !c.authenticated && c.loginBy.Before(limit) {
		limit = c.loginBy
	}
	if t.IsZero() || t.After(limit) {
		return limit
	}
	return t
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.bound(t))
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// Read closes the connection when its deadline passes, so that no layer
// above (TLS, bufio, the command decoder) can take a timed-out partial read
// and go on waiting.
func (c *deadlineConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.Conn.Close()
	}
	return n, err
}
