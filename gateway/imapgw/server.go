// Package imapgw is the agents' IMAP workspace (DESIGN.md §6): the shared
// conversations as ordinary mail folders, where folder moves, flags and
// keywords are the helpdesk's actions. It is the only package that imports
// go-imap (a pinned beta, patched in third_party/go-imap, see its PATCHES.md).
//
// Folders. INBOX, Mine, Unassigned, Closed and Spam (\Junk) are shared views
// of the conversations; Drafts (\Drafts), Sent (\Sent), Trash (\Trash) and
// every folder an agent creates are the agent's own, ordinary mailboxes. An
// agent who sees more than one inbox also gets Inboxes/<address>, the open
// conversations of one inbox.
//
// Actions. COPY or MOVE of a message into a shared folder acts on its whole
// conversation: INBOX (and Inboxes/...) reopens, Mine assigns to the agent
// and Unassigned removes the assignee (both also reopen), Closed closes, Spam
// marks spam; into Trash closes and files a private copy there. The state is
// then shown as it is: a MOVE from INBOX to Mine leaves the messages in INBOX
// (INBOX shows every open conversation), so the source gets EXPUNGE only for
// messages that really left it, and COPYUID names the messages' UIDs in the
// destination. COPY or MOVE from a shared folder into a private one files a
// private copy and changes nothing of the conversation (so nothing leaves
// the shared folder). Nothing of a conversation is ever destroyed by an
// agent: EXPUNGE of \Deleted messages in INBOX, Inboxes/... or Unassigned
// closes their conversations, in Mine removes the assignee, and in Closed or
// Spam hides the conversation from that agent's view of the folder only.
// Each change of a conversation is package desk's (Options.Desk): one
// transaction with the event that tells the team.
//
// Flags. \Seen is per agent; \Deleted per agent and entry; \Flagged,
// \Answered and keywords belong to the conversation and are shared (a
// keyword without '$' is a tag); $Junk marks spam, $NotJunk (or removing
// $Junk) opens a spam conversation again. A view agent may only change \Seen:
// everything else is NO [NOPERM] with a sentence.
//
// Subscriptions are the agent's own (store.Subscriptions): the shared
// folders, Drafts, Sent and Trash start subscribed; any name may be
// subscribed, and stays so when deleted (LIST (SUBSCRIBED) shows it
// \NonExistent).
//
// \Recent (gone from IMAP4rev2) is kept for IMAP4rev1 clients in private
// folders only (recent.go).
//
// CONDSTORE (RFC 7162 3.1). Every entry has a mod-sequence as its agent sees
// it (store/sqlite_modseq.go: one global counter, recorded per conversation,
// per agent and message, per entry), and a folder's HIGHESTMODSEQ is that
// counter, read with the entries; the snapshots carry both (views.go).
// FETCH MODSEQ and CHANGEDSINCE, STORE UNCHANGEDSINCE, SEARCH MODSEQ and
// STATUS HIGHESTMODSEQ work in every folder; UNCHANGEDSINCE compares with
// the store's mod-sequences read at the start of the STORE. QRESYNC is not
// offered: it needs the UIDs expunged since a mod-sequence, which nothing
// records.
//
// Updates. Every session brings its selected folder up to date before it
// answers a command and whenever the store publishes a change of what it
// shows (IDLE; store.Filter), and reports the difference as EXPUNGE, EXISTS
// and FETCH FLAGS. The sessions that show one folder to one agent share one
// picture of it, read from the store once per change of it (views.go).
//
// FETCH. ENVELOPE and BODYSTRUCTURE are computed once per message and kept
// by the store (meta.go); messages and their metadata are read a few hundred
// at a time, and the answer is written in few system calls (cork.go).
//
// Passwords. Connections from loopback may log in without TLS; others are
// served by a server that refuses LOGIN and AUTHENTICATE (and advertises
// LOGINDISABLED) until STARTTLS, or come in over implicit TLS.
package imapgw

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/desk"
	"github.com/supportgate/supportgate/internal/budget"
	"github.com/supportgate/supportgate/store"
)

// Options are what the IMAP server needs.
type Options struct {
	// Config is the configuration; Current, when set, is called instead
	// each time, so that a reload (SIGHUP) takes effect for new logins.
	Config  *config.Config
	Current func() *config.Config
	Store   store.Workspace
	// Desk carries out the helpdesk's actions (folder moves, EXPUNGE in a
	// shared folder, conversation keywords): every change of a
	// conversation goes through it, none through Store.
	Desk *desk.Desk
	Log  *slog.Logger
	// Authenticate returns the agent whose email and password these are.
	Authenticate func(email, password string) (config.Agent, bool)
	// TLS, when set, offers STARTTLS and serves ServeTLS; nil: no TLS.
	TLS *tls.Config
	// Guard, when set, limits connections and failed logins per IP.
	Guard Guard
	// Inflight bounds the message data of APPENDs, shared with SMTP
	// ([limits] max_inflight_bytes); nil: no bound (tests).
	Inflight *budget.Bytes
}

// Server serves IMAP to agents' mail clients.
type Server struct {
	opts     Options
	loopback *imapserver.Server // may log in without TLS
	remote   *imapserver.Server // may log in only over TLS
	// local and tls feed loopback and remote with accepted connections.
	local, tls *connListener
	served     sync.WaitGroup // the library's Serve loops
	connSeq    atomic.Uint64
	closed     chan struct{}
	once       sync.Once
	views      *views       // the selected folders' shared pictures (views.go)
	recent     *recentMarks // the private folders' \Recent (recent.go)
}

// config is the configuration in force.
func (s *Server) config() *config.Config {
	if s.opts.Current != nil {
		return s.opts.Current()
	}
	return s.opts.Config
}

// capabilities are what we implement (DESIGN.md §6); the library adds IDLE,
// UNSELECT, ENABLE, SASL-IR, LITERAL- and UTF8=ACCEPT by itself.
func capabilities() imap.CapSet {
	return imap.CapSet{
		imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {},
		imap.CapNamespace: {}, imap.CapUIDPlus: {}, imap.CapESearch: {}, imap.CapMove: {},
		imap.CapStatusSize: {}, imap.CapChildren: {}, imap.CapListStatus: {},
		imap.CapSpecialUse: {}, imap.CapLiteralPlus: {},
		imap.CapCondStore: {}, // RFC 7162 3.1 (store/sqlite_modseq.go)
		imap.CapQResync:   {}, // RFC 7162 3.2 (qresync.go)
	}
}

// New returns a server; nothing is accepted until Serve or ServeTLS.
func New(o Options) *Server {
	s := &Server{opts: o, closed: make(chan struct{}), local: newConnListener(), tls: newConnListener(), views: newViews(o.Store),
		recent: newRecentMarks()}
	mk := func(insecureAuth bool) *imapserver.Server {
		return imapserver.New(&imapserver.Options{
			NewSession:   s.newSession,
			Caps:         capabilities(),
			TLSConfig:    o.TLS,
			InsecureAuth: insecureAuth,
			Logger:       slogPrinter{o.Log.With("service", "imap")},
		})
	}
	s.loopback, s.remote = mk(true), mk(false)
	for _, x := range []struct {
		srv *imapserver.Server
		l   *connListener
	}{{s.loopback, s.local}, {s.remote, s.tls}} {
		s.served.Add(1)
		go func() {
			defer s.served.Done()
			x.srv.Serve(x.l)
		}()
	}
	return s
}

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	remote := c.NetConn().RemoteAddr()
	log := s.opts.Log.With("conn", fmt.Sprintf("imap-%d", s.connSeq.Add(1)), "remote", remote.String())
	return newSession(s, c, log, isLoopback(remote)), nil, nil
}

// Serve serves plain IMAP (with STARTTLS when TLS is configured) on l:
// loopback connections to the server that lets passwords travel in clear,
// the others to the one that needs TLS first.
func (s *Server) Serve(l net.Listener) error {
	return s.accept(l, nil, func(c net.Conn) *connListener {
		if isLoopback(c.RemoteAddr()) {
			return s.local
		}
		return s.tls
	})
}

// ServeTLS serves IMAP over implicit TLS (port 993) on l.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.opts.TLS == nil {
		l.Close()
		return errors.New("imap: implicit TLS needs a certificate")
	}
	return s.accept(l, s.opts.TLS, func(net.Conn) *connListener { return s.tls })
}

// accept serves l; with tlsCfg, in implicit TLS, applied after the
// connection limit (limits.go) so that the library still sees a *tls.Conn.
func (s *Server) accept(l net.Listener, tlsCfg *tls.Config, route func(net.Conn) *connListener) error {
	go func() {
		<-s.closed
		l.Close()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return net.ErrClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if c = s.admit(&corkConn{Conn: c}, tlsCfg); c == nil {
			continue
		}
		if !route(c).push(c) {
			c.Close()
		}
	}
}

// byeShutdown is what every session hears when the daemon stops.
const byeShutdown = "The server is shutting down; please reconnect in a moment"

// Close stops serving and ends every connection with a BYE (RFC 9051
// 7.1.5; DESIGN.md §11: SIGTERM ends IMAP sessions with * BYE).
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.closed)
		s.local.Close()
		s.tls.Close()
	})
	s.served.Wait() // the library's Shutdown must not race its Serve starting
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, srv := range []*imapserver.Server{s.loopback, s.remote} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = ignoreClosed(srv.Shutdown(byeShutdown))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func ignoreClosed(err error) error {
	if err != nil && err.Error() == "imapserver: server closed" {
		return nil
	}
	return err
}

// connListener hands accepted connections to one of the library's servers.
type connListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newConnListener() *connListener {
	return &connListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) push(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return &net.TCPAddr{} }

// isLoopback reports whether a connection comes from this machine; only then
// may a password travel without TLS (DESIGN.md §8).
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// slogPrinter adapts slog to the library's Printf logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, args ...any) {
	p.log.Warn(fmt.Sprintf(format, args...))
}
