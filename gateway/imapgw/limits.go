package imapgw

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Guard limits what one IP address may take of the server (DESIGN.md §8);
// gateway.Limiter implements it.
type Guard interface {
	// Connect counts a connection of service from ip; false: over the limit.
	// release is called once, when the connection closes.
	Connect(service, ip string) (release func(), ok bool)
	// AuthLocked reports whether logins from ip are refused for now.
	AuthLocked(ip string) bool
	// AuthBegin reserves the check of one guess from ip (false: refused,
	// locked out or as many guesses in flight as may still fail); AuthEnd
	// ends it, after AuthFailed for a wrong one.
	AuthBegin(ip string) bool
	AuthEnd(ip string)
	// AuthFailed records a failed login from ip: how long to wait before
	// answering, and whether ip is now locked out.
	AuthFailed(ip string) (delay time.Duration, lockedNow bool)
}

// errAuthLocked: RFC 5530 UNAVAILABLE, a temporary refusal.
var errAuthLocked = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
	Text: "Too many failed logins from your address; logins from it are refused for a while, please try again later"}

// byeTooMany is sent to a connection over max_connections_per_ip
// (RFC 9051 7.1.5: BYE, then the server closes).
const byeTooMany = "* BYE Too many connections from your address; please try again later\r\n"

// admit applies the connection limit to a freshly accepted raw connection.
// It returns the connection to serve (wrapped so that closing it releases
// its count, and in TLS when tlsCfg is set), or nil when it was refused.
func (s *Server) admit(c net.Conn, tlsCfg *tls.Config) net.Conn {
	wrap := func(c net.Conn) net.Conn {
		if tlsCfg != nil {
			return tls.Server(c, tlsCfg)
		}
		return c
	}
	g := s.opts.Guard
	if g == nil {
		return wrap(c)
	}
	release, ok := g.Connect("imap", remoteIP(c.RemoteAddr()))
	if !ok {
		s.opts.Log.Info("connection refused: too many from this address", "service", "imap", "remote", c.RemoteAddr().String())
		go func() {
			out := wrap(c)
			out.SetDeadline(time.Now().Add(10 * time.Second))
			out.Write([]byte(byeTooMany))
			out.Close()
		}()
		return nil
	}
	return wrap(&trackedConn{Conn: c, release: release})
}

// trackedConn releases its connection count when closed.
type trackedConn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

func remoteIP(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	if host, _, err := net.SplitHostPort(addr.String()); err == nil {
		return host
	}
	return addr.String()
}

// wait sleeps for d, or until the session ends.
func wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
