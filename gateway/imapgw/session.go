package imapgw

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"slices"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/policy"
)

// Refusals. Each says what the agent can do instead; internal error text
// never goes to a client.
var (
	errPrivacy = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodePrivacyRequired,
		Text: "Log in over TLS: passwords travel in clear text only on this machine"}
	errUnavailable = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
		Text: "A temporary problem on the server prevented this; please try again"}
	errNoMailbox = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent,
		Text: "No such folder"}
	errTryCreate = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate,
		Text: "No such folder; create it first"}
	errSharedFolder = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
		Text: "This folder is the helpdesk's own; it cannot be created, deleted or renamed"}
	errSpecialFolder = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
		Text: "Drafts, Sent and Trash are needed by mail clients; they cannot be deleted or renamed"}
	errExists = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists,
		Text: "A folder of that name exists already"}
	errHasChildren = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeHasChildren,
		Text: "Delete the folders inside this folder first"}
	errBadName = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
		Text: "That is not a usable folder name"}
	errAppendShared = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
		Text: "Messages cannot be added to a shared folder; send mail through the submission server instead"}
	errOwnBytes = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
		Text: "Only messages of conversations can be filed into a shared folder; send new mail through the submission server"}
	errReadOnly = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
		Text: "The folder was opened read-only (EXAMINE); select it to change it"}
	errExpungeIssued = &imap.Error{Type: imap.StatusResponseTypeNo, Code: "EXPUNGEISSUED",
		Text: "Another session expunged some of these messages; the others were sent"}
	// RFC 5530 LIMIT; DESIGN.md §8: message data in flight is at
	// [limits] max_inflight_bytes.
	errBusy = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit,
		Text: "The server is receiving too much at once; please try again in a few minutes"}
	errAppendAborted = &imap.Error{Type: imap.StatusResponseTypeNo,
		Text: "The message did not arrive whole; nothing was stored"}
	errViewOnly = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNoPerm,
		Text: "Your role on this inbox is view: you can read and mark messages read, nothing else"}
)

// errNotSelected never reaches a client: the library checks the state first.
var errNotSelected = errors.New("no mailbox selected")

// session is one agent's IMAP connection.
type session struct {
	srv      *Server
	conn     *imapserver.Conn
	ctx      context.Context // cancelled when the connection closes
	cancel   context.CancelFunc
	log      *slog.Logger
	loopback bool
	cork     *corkConn // nil when the connection is not ours (tests)

	agent   *config.Agent
	inboxes []string // the inboxes the agent may see
	mbox    *selectedMailbox
	// updates writes untagged FLAGS in the middle of a command, before
	// the FETCH responses that show new keywords (flushFlags), and the
	// untagged OK [HIGHESTMODSEQ] of enableCondStore; only those are
	// written on it (third_party/go-imap PATCHES.md).
	updates *imapserver.UpdateWriter
	// condStore: the client enabled CONDSTORE (RFC 7162 3.1).
	condStore bool
	// pollMu serialises Poll: when a client goes away during IDLE, the
	// library polls after the command while the Idle goroutine may still be
	// polling (imapserver.handleIdle returns on EOF without waiting for it).
	pollMu sync.Mutex
}

var (
	_ imapserver.SessionIMAP4rev2 = (*session)(nil)
)

func newSession(srv *Server, c *imapserver.Conn, log *slog.Logger, loopback bool) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{srv: srv, conn: c, ctx: ctx, cancel: cancel, log: log, loopback: loopback, cork: findCork(c.NetConn()),
		updates: c.NewUpdateWriter()}
}

// internal logs err and returns the safe reply for it.
func (m *session) internal(what string, err error) error {
	m.log.Error(what, "err", err)
	return errUnavailable
}

func (m *session) Close() error {
	m.cancel()
	// m.mbox is only read here: the library may still be ending an IDLE
	// that reads it.
	if mb := m.mbox; mb != nil {
		mb.close()
		m.srv.views.release(mb.view)
	}
	return nil
}

// closeMailbox leaves the selected folder, if any.
func (m *session) closeMailbox() {
	if m.mbox != nil {
		m.mbox.close()
		m.srv.views.release(m.mbox.view)
		m.mbox = nil
	}
}

// Login checks the password (LOGIN, and AUTHENTICATE PLAIN through the
// library). RFC 9051 6.2.3: a password never travels in clear text except
// on loopback; the library refuses before this on the remote server, this
// is the second lock.
func (m *session) Login(username, password string) error {
	if _, isTLS := m.conn.NetConn().(*tls.Conn); !isTLS && !m.loopback {
		return errPrivacy
	}
	// DESIGN.md §8: failed logins per IP are slowed down, then refused.
	g, ip := m.srv.opts.Guard, remoteIP(m.conn.NetConn().RemoteAddr())
	if g != nil {
		// DESIGN.md §8: guesses in flight count, so parallel connections
		// get no more checked than max_auth_failures_per_ip.
		if !g.AuthBegin(ip) {
			m.log.Info("login refused: too many failed logins from this address")
			return errAuthLocked
		}
		defer g.AuthEnd(ip)
	}
	agent, ok := m.srv.opts.Authenticate(username, password)
	if !ok {
		m.log.Info("authentication failed")
		if g != nil {
			delay, locked := g.AuthFailed(ip)
			if locked {
				m.log.Warn("too many failed logins: refusing logins from this address for a while", "ip", ip)
			}
			wait(m.ctx, delay)
		}
		return imapserver.ErrAuthFailed
	}
	m.agent = &agent
	m.inboxes = policy.VisibleInboxes(m.srv.config(), agent)
	m.log = m.log.With("agent", agent.Email)
	return nil
}

// Namespace implements RFC 2342: one personal namespace, no prefix.
func (m *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: mailboxDelim}}}, nil
}

// canAct reports whether the agent may act on conversations of an inbox
// (DESIGN.md §2: reply and admin roles; view only reads and marks read).
func (m *session) canAct(inbox string) bool {
	return policy.CanReply(m.agent.Roles[inbox])
}

// canWrite reports whether the agent may change anything at all: a view
// agent everywhere may only mark read.
func (m *session) canWrite() bool {
	for _, in := range m.inboxes {
		if m.canAct(in) {
			return true
		}
	}
	return false
}

// checkConversations refuses with NOPERM unless the agent may act on every
// conversation of convs.
func (m *session) checkConversations(convs []int64) error {
	for _, c := range convs {
		conv, err := m.srv.opts.Store.Conversation(m.ctx, c)
		if err != nil {
			return m.internal("reading conversation failed", err)
		}
		if !m.canAct(conv.Inbox) {
			return errViewOnly
		}
	}
	return nil
}

// enableCondStore records a CONDSTORE-enabling command (RFC 7162 3.1: a
// FETCH or SEARCH with MODSEQ, a FETCH with CHANGEDSINCE, a STORE with
// UNCHANGEDSINCE). It returns the function to call once the command is
// done: the first such command while a folder is selected gets the
// folder's HIGHESTMODSEQ in an untagged OK, as it is then.
func (m *session) enableCondStore() func() error {
	if m.condStore {
		return func() error { return nil }
	}
	m.condStore = true
	return func() error {
		if m.mbox == nil || m.updates == nil {
			return nil
		}
		return m.updates.WriteHighestModSeq(m.mbox.highestModSeq)
	}
}

func (m *session) selected() (*selectedMailbox, error) {
	if m.mbox == nil {
		return nil, errNotSelected
	}
	return m.mbox, nil
}

func (m *session) Unselect() error {
	m.closeMailbox()
	return nil
}

func (m *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	m.pollMu.Lock()
	defer m.pollMu.Unlock()
	if m.mbox == nil {
		return nil
	}
	if err := m.refresh(nil); err != nil {
		return err
	}
	if err := m.mbox.session.Poll(w, allowExpunge); err != nil {
		return err
	}
	if err := m.deferredModSeq(w); err != nil {
		return err
	}
	return m.mbox.announceRecent(w, allowExpunge)
}

// deferredModSeq writes, when changes stay queued after a poll (an EXPUNGE
// waits for a command that allows it, RFC 9051 7.5.1, and what was queued
// after it waits too) to a client given MODSEQs, an untagged OK
// [HIGHESTMODSEQ] below their mod-sequences: the command's own FETCH may
// have shown it a higher MODSEQ, and a client that keeps the highest it saw
// and resynchronizes from it later (CHANGEDSINCE, QRESYNC) would never
// learn of the queued changes (RFC 7162 3.2, errata 1810; imaptest's
// qresync: "Keyword dropped, but it still had references").
func (m *session) deferredModSeq(w *imapserver.UpdateWriter) error {
	mb := m.mbox
	if !mb.session.Pending() {
		mb.deferredBelow = 0
		return nil
	}
	if !m.condStore || mb.deferredBelow == 0 {
		return nil
	}
	return w.WriteHighestModSeq(max(mb.deferredBelow, 1))
}

// Idle sends updates as the store changes (DESIGN.md §6: promptly under
// IDLE): it wakes at each committed change of what the selected folder
// shows (views.go), and for nothing else.
func (m *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	for {
		changed := m.changes()
		if err := m.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-m.ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// changes returns a channel closed at the next change of what the selected
// folder shows; with none selected, one never closed: there is nothing to
// tell.
func (m *session) changes() <-chan struct{} {
	if m.mbox == nil || m.mbox.view == nil {
		return nil
	}
	return m.mbox.view.changed()
}

// refresh brings the selected mailbox up to date with the store and queues
// the changes for the client, except flag changes of quiet UIDs.
func (m *session) refresh(quiet map[uint32]bool) error {
	snap, err := m.snapshot(m.mbox.view, m.mbox.folder)
	if err != nil {
		return m.internal("refreshing folder failed", err)
	}
	m.mbox.update(snap, quiet)
	return m.flushFlags()
}

// flushFlags writes the folder's FLAGS when keywords were added to them
// (RFC 9051 7.3.5: announced before a FETCH shows them, also those that
// another agent's tag created). Commands run one at a time on a
// connection, IDLE included, so this never interleaves with a response.
func (m *session) flushFlags() error {
	mb := m.mbox
	if mb == nil || !mb.flagsChanged || m.updates == nil {
		return nil
	}
	mb.flagsChanged = false
	return m.updates.WriteMailboxFlags(slices.Clone(mb.mailboxFlags))
}

// AppendLimit bounds APPEND like SMTP (DESIGN.md §8: server.max_message_bytes;
// the library's default was 100 MiB).
func (m *session) AppendLimit() uint32 {
	return uint32(min(m.srv.config().Server.MaxMessageBytes, 1<<32-1))
}
