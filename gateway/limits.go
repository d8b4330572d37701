package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/internal/metrics"
	"github.com/supportgate/supportgate/store"
)

// Limit replies (DESIGN.md §8). Each says what happened and what to do.
var (
	// RFC 5321 3.8, RFC 3463 4.7.0: the server closes the connection.
	errTooManyConnections = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
		Message: "Too many connections from your address; closing this one, please try again later"}
	// RFC 3463 4.7.1: refused for now by policy; the sending server retries.
	errSenderRate = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1},
		Message: "Too many messages from this sender in the last hour; please try again later"}
	// RFC 4954 6: 454 4.7.0, temporary authentication failure.
	errAuthLocked = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
		Message: "Too many failed logins from your address; logins from it are refused for a while, please try again later"}
)

// maxDelaySteps caps the growing delay after failed logins at this many
// times the base delay.
const maxDelaySteps = 10

// sweepEvery is how often expired entries are dropped, so that the maps do
// not grow with every address ever seen.
const sweepEvery = time.Minute

// Limiter counts what clients take: open connections per IP and service
// and failed logins per IP in this process's memory, per node (they guard
// this node's sockets and CPU, and a client's connections go to one node);
// messages per sender per hour in rates, the store's (store.RateCounter),
// which on PostgreSQL every node shares: the quota is the deployment's
// (DESIGN.md §8, §15). A restart forgets what is in memory, which errs on
// the side of the client. It is safe for concurrent use.
type Limiter struct {
	cfg   config.Limits
	rates store.RateCounter

	mu        sync.Mutex
	now       func() time.Time
	conns     map[connKey]int
	fails     map[string]*authFailures
	lastSweep time.Time
}

type connKey struct{ service, ip string }

type authFailures struct {
	count       int
	inFlight    int       // guesses being checked now (AuthBegin)
	last        time.Time // the latest failure
	lockedUntil time.Time
}

// NewLimiter returns a limiter for cfg that counts messages per sender
// into rates (nil: its own memory); now is the clock (time.Now outside
// tests). A zero field (a Config not made by config.Parse) takes the
// default.
func NewLimiter(cfg config.Limits, now func() time.Time, rates store.RateCounter) *Limiter {
	cfg = withDefaults(cfg)
	if rates == nil {
		rates = &store.MemoryRates{}
	}
	return &Limiter{cfg: cfg, rates: rates, now: now, conns: map[connKey]int{}, fails: map[string]*authFailures{}}
}

func withDefaults(c config.Limits) config.Limits {
	d := config.DefaultLimits()
	pick := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	pickD := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&c.MaxRecipients, d.MaxRecipients)
	pick(&c.MaxConnectionsPerIP, d.MaxConnectionsPerIP)
	pick(&c.MaxMessagesPerSenderPerHour, d.MaxMessagesPerSenderPerHour)
	pick(&c.MaxAuthFailuresPerIP, d.MaxAuthFailuresPerIP)
	pickD(&c.AuthLockout, d.AuthLockout)
	pickD(&c.AuthFailureDelay, d.AuthFailureDelay)
	pickD(&c.ReadTimeout, d.ReadTimeout)
	pick(&c.MaxAutoAcksPerSenderPerDay, d.MaxAutoAcksPerSenderPerDay)
	return c
}

// SetConfig puts new limits in force (a reload); what was counted stays.
func (l *Limiter) SetConfig(cfg config.Limits) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = withDefaults(cfg)
}

// ipOf returns the IP address of a connection's remote address, "" when it
// has none (a test pipe).
func ipOf(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// Connect counts a new connection of service from ip. It reports false when
// ip has max_connections_per_ip open already; otherwise release must be
// called exactly once when the connection closes (it is idempotent).
func (l *Limiter) Connect(service, ip string) (release func(), ok bool) {
	k := connKey{service, ip}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[k] >= l.cfg.MaxConnectionsPerIP {
		return nil, false
	}
	l.conns[k]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.conns[k]--; l.conns[k] <= 0 {
				delete(l.conns, k)
			}
		})
	}, true
}

// senderWindow is the window of max_messages_per_sender_per_hour.
const senderWindow = time.Hour

// senderRateKey is a sender's key among the store's quota counts.
func senderRateKey(sender string) string { return "mx-sender:" + sender }

// SenderOverLimit reports whether sender had
// max_messages_per_sender_per_hour messages accepted within the last hour
// (the MX refuses its MAIL FROM early). It counts nothing: only accepted
// messages count (TakeMessage), so MAIL FROM and RSET cannot use up
// someone's quota (DESIGN.md §8). A store that cannot count answers
// false: TakeMessage decides.
func (l *Limiter) SenderOverLimit(ctx context.Context, sender string) bool {
	n, err := l.rates.CountRate(ctx, senderRateKey(sender), l.now(), senderWindow)
	return err == nil && n >= l.config().MaxMessagesPerSenderPerHour
}

// TakeMessage counts one message of sender that is about to be accepted
// and reports whether it is within max_messages_per_sender_per_hour; the
// check and the count are one step in the store (store.RateCounter), so
// parallel sessions of one sender, on this node or any other on the same
// PostgreSQL database, cannot pass the limit together. A refused message
// is not counted. When the message is not accepted after all (refused or
// failed to store), give is called to return the count. err: the store
// could not count (nothing was counted).
func (l *Limiter) TakeMessage(ctx context.Context, sender string) (give func(), ok bool, err error) {
	key := senderRateKey(sender)
	id, ok, err := l.rates.TakeRate(ctx, key, l.now(), senderWindow, l.config().MaxMessagesPerSenderPerHour)
	if err != nil || !ok {
		return nil, false, err
	}
	var once sync.Once
	return func() {
		// The message failed; a count that cannot be given back only
		// makes the sender's hour a little shorter.
		once.Do(func() { l.rates.GiveRate(context.WithoutCancel(ctx), key, id) })
	}, true, nil
}

// config returns the limits in force.
func (l *Limiter) config() config.Limits {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// AuthLocked reports whether logins from ip are refused now, after
// max_auth_failures_per_ip failures.
func (l *Limiter) AuthLocked(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.fails[ip]
	return f != nil && l.now().Before(f.lockedUntil)
}

// AuthBegin reserves the check of one login guess from ip, and reports
// false when ip is locked out or when its failures and the guesses being
// checked already make max_auth_failures_per_ip: 40 parallel connections
// then get no more than that many guesses checked (DESIGN.md §8). A true
// answer must be followed by AuthEnd once the guess is answered (after
// AuthFailed for a wrong one).
func (l *Limiter) AuthBegin(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f := l.failures(ip, now)
	if now.Before(f.lockedUntil) || f.count+f.inFlight >= l.cfg.MaxAuthFailuresPerIP {
		return false
	}
	f.inFlight++
	return true
}

// failures returns ip's record, made when it has none, with failures older
// than auth_lockout forgotten (for AuthBegin's count too). l.mu is held.
func (l *Limiter) failures(ip string, now time.Time) *authFailures {
	l.sweep(now)
	f := l.fails[ip]
	if f == nil {
		f = &authFailures{}
		l.fails[ip] = f
	}
	if now.Sub(f.last) >= l.cfg.AuthLockout && !now.Before(f.lockedUntil) {
		f.count = 0 // forgotten: nothing failed for auth_lockout
	}
	return f
}

// AuthEnd ends a guess that AuthBegin reserved.
func (l *Limiter) AuthEnd(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.fails[ip]; f != nil && f.inFlight > 0 {
		f.inFlight--
	}
}

// AuthFailed records a failed login from ip. It returns how long to wait
// before answering (the n-th failure waits n times auth_failure_delay, at
// most maxDelaySteps times), and whether this failure locked ip out.
func (l *Limiter) AuthFailed(ip string) (delay time.Duration, lockedNow bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f := l.failures(ip, now)
	f.count++
	f.last = now
	if f.count >= l.cfg.MaxAuthFailuresPerIP && !now.Before(f.lockedUntil) {
		f.lockedUntil = now.Add(l.cfg.AuthLockout)
		f.count = 0 // after the lockout, the address starts again
		lockedNow = true
	}
	steps := min(f.count, maxDelaySteps)
	if lockedNow {
		steps = maxDelaySteps
	}
	return time.Duration(steps) * l.cfg.AuthFailureDelay, lockedNow
}

// sweep drops what has expired, at most once per sweepEvery. l.mu is held.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < sweepEvery {
		return
	}
	l.lastSweep = now
	for ip, f := range l.fails {
		if f.inFlight == 0 && now.Sub(f.last) >= l.cfg.AuthLockout && !now.Before(f.lockedUntil) {
			delete(l.fails, ip)
		}
	}
}

// wait sleeps for d, or until ctx ends.
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

// smtpServer is a go-smtp server whose listeners count connections per IP:
// one over max_connections_per_ip gets 421 4.7.0 and is closed before the
// greeting (RFC 5321 3.8).
type smtpServer struct {
	*smtp.Server
	limits  *Limiter
	service string
	log     *slog.Logger
	metrics *metrics.Metrics // nil: nothing is counted
	guard   sync.Once        // wraps the backend in safeBackend once
}

// guardErrors makes every session's errors safe to send (smtperrors.go),
// and every message counted, before anything is served.
func (s *smtpServer) guardErrors() {
	s.guard.Do(func() {
		s.Server.Backend = safeBackend{inner: s.Server.Backend, log: s.log, service: s.service, metrics: s.metrics}
	})
}

// Serve serves l with the connection limit. Connections that are TLS
// already (a tls.NewListener) are served without it: use ServeTLS.
func (s *smtpServer) Serve(l net.Listener) error {
	s.guardErrors()
	return s.Server.Serve(&limitListener{Listener: l, srv: s})
}

// ServeTLS serves implicit TLS on l (RFC 8314 3.3), with the connection
// limit applied beneath TLS so that go-smtp still sees a *tls.Conn.
func (s *smtpServer) ServeTLS(l net.Listener, cfg *tls.Config) error {
	s.guardErrors()
	return s.Server.Serve(&limitListener{Listener: l, srv: s, tls: cfg})
}

type limitListener struct {
	net.Listener
	srv *smtpServer
	tls *tls.Config
}

func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if _, isTLS := c.(*tls.Conn); isTLS {
			return c, nil
		}
		release, ok := ll.srv.limits.Connect(ll.srv.service, ipOf(c.RemoteAddr()))
		if ok {
			var out net.Conn = &trackedConn{Conn: c, release: release}
			if ll.tls != nil {
				out = tls.Server(out, ll.tls)
			}
			return out, nil
		}
		ll.srv.log.Info("connection refused: too many from this address", "remote", c.RemoteAddr().String())
		go func() {
			var out net.Conn = c
			if ll.tls != nil {
				out = tls.Server(c, ll.tls)
			}
			e := errTooManyConnections
			out.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(out, "%d %d.%d.%d %s\r\n", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message)
			out.Close()
		}()
	}
}

// trackedConn releases its connection count when closed.
type trackedConn struct {
	net.Conn
	release func()
}

// Read drops the connection when its read deadline passes: go-smtp would
// otherwise take a timed-out partial line as a command and go on reading
// (a slow-loris client could hold it for several read_timeouts).
func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.Close()
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.release() // idempotent
	return c.Conn.Close()
}
