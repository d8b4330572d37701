package gateway

// The IMAP side (DESIGN.md §6). This file and imap_*.go are the only ones
// that import go-imap, a pinned beta: keeping it behind this seam keeps a
// fork or an upgrade cheap.

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/policy"
	"github.com/supportgate/supportgate/store"
)

// mailboxDelim separates hierarchy levels in folder names.
const mailboxDelim = '/'

// IMAP refusals. Each says what the agent can do instead.
var (
	errIMAPPrivacy = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodePrivacyRequired,
		Text: "Log in over TLS: passwords travel in clear text only on this machine"}
	errIMAPUnavailable = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
		Text: "A temporary problem on the server prevented this; please try again"}
	errIMAPNoMailbox = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent,
		Text: "No such folder"}
	errIMAPFolders = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
		Text: "The folders are the helpdesk's own; they cannot be created, deleted or renamed"}
	errIMAPAppend = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
		Text: "Messages cannot be added to this folder; send mail through the submission server instead"}
	errIMAPCopy = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
		Text: "Copying and moving messages is not available yet"}
	errIMAPReadOnly = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
		Text: "The folder was opened read-only (EXAMINE); select it to change flags"}
	errIMAPFlags = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
		Text: `Only the \Seen flag can be changed so far`}
)

func (s *Server) newIMAP() *imapserver.Server {
	return imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			ctx, cancel := context.WithCancel(context.Background())
			remote := c.NetConn().RemoteAddr()
			log := s.log.With("conn", s.nextConnID("imap"), "remote", remote.String())
			return &imapSession{srv: s, ctx: ctx, cancel: cancel, log: log, loopback: isLoopback(remote)}, nil, nil
		},
		// Advertise only what is implemented (DESIGN.md §6); the library
		// adds IDLE, UNSELECT, ENABLE, SASL-IR and LITERAL- to IMAP4rev1.
		Caps: imap.CapSet{imap.CapIMAP4rev1: {}},
		// The session refuses clear-text passwords from other machines
		// itself; the library's switch cannot tell loopback apart.
		InsecureAuth: true,
		Logger:       slogPrinter{s.log.With("service", "imap")},
	})
}

// imapSession is one agent's IMAP connection.
type imapSession struct {
	srv      *Server
	ctx      context.Context // cancelled when the connection closes
	cancel   context.CancelFunc
	log      *slog.Logger
	loopback bool

	agent   *config.Agent
	inboxes []string // the inboxes the agent may see
	mbox    *selectedMailbox
}

var _ imapserver.Session = (*imapSession)(nil)

// internal logs err and returns the safe reply for it.
func (m *imapSession) internal(what string, err error) error {
	m.log.Error(what, "err", err)
	return errIMAPUnavailable
}

func (m *imapSession) Close() error {
	m.cancel()
	if m.mbox != nil {
		m.mbox.close()
	}
	return nil
}

func (m *imapSession) Login(username, password string) error {
	// RFC 9051 6.2.3: the server may refuse LOGIN without TLS.
	if !m.loopback && m.srv.cfg.TLS.CertFile == "" {
		return errIMAPPrivacy
	}
	agent, ok := m.srv.authenticate(username, password)
	if !ok {
		m.log.Info("authentication failed")
		return imapserver.ErrAuthFailed
	}
	m.agent = &agent
	m.inboxes = policy.VisibleInboxes(m.srv.cfg, agent)
	m.log = m.log.With("agent", agent.Email)
	return nil
}

// folders are the mailboxes an agent has. Only INBOX exists so far.
var folders = []string{"INBOX"}

// folderName returns the canonical name of a mailbox, or "" if there is none.
// RFC 9051 5.1: INBOX is case-insensitive.
func folderName(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return ""
}

func (m *imapSession) view(folder string) store.MailboxView {
	return store.MailboxView{Agent: m.agent.Email, Folder: store.Folder(folder), Inboxes: m.inboxes}
}

func (m *imapSession) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	folder := folderName(name)
	if folder == "" {
		return nil, errIMAPNoMailbox
	}
	if m.mbox != nil {
		m.mbox.close()
		m.mbox = nil
	}
	view := m.view(folder)
	validity, err := m.srv.store.UIDValidity(m.ctx, view)
	if err != nil {
		return nil, m.internal("reading UIDVALIDITY failed", err)
	}
	entries, uidNext, err := m.srv.store.Entries(m.ctx, view)
	if err != nil {
		return nil, m.internal("listing folder failed", err)
	}
	m.mbox = newSelectedMailbox(folder, view, validity, options.ReadOnly, entries, uidNext)
	data := &imap.SelectData{
		Flags:          []imap.Flag{imap.FlagSeen},
		PermanentFlags: []imap.Flag{imap.FlagSeen},
		NumMessages:    uint32(len(entries)),
		UIDNext:        imap.UID(uidNext),
		UIDValidity:    validity,
	}
	if options.ReadOnly {
		data.PermanentFlags = nil
	}
	for i, e := range entries {
		if !e.Seen {
			data.FirstUnseenSeqNum = uint32(i + 1)
			break
		}
	}
	return data, nil
}

func (m *imapSession) Unselect() error {
	if m.mbox != nil {
		m.mbox.close()
		m.mbox = nil
	}
	return nil
}

func (m *imapSession) Create(string, *imap.CreateOptions) error              { return errIMAPFolders }
func (m *imapSession) Delete(string) error                                   { return errIMAPFolders }
func (m *imapSession) Rename(string, string, *imap.RenameOptions) error      { return errIMAPFolders }
func (m *imapSession) Copy(imap.NumSet, string) (*imap.CopyData, error)      { return nil, errIMAPCopy }
func (m *imapSession) Expunge(*imapserver.ExpungeWriter, *imap.UIDSet) error { return nil }

// Every folder is always subscribed.
func (m *imapSession) Subscribe(name string) error {
	if folderName(name) == "" {
		return errIMAPNoMailbox
	}
	return nil
}

func (m *imapSession) Unsubscribe(name string) error { return m.Subscribe(name) }

func (m *imapSession) Append(name string, r imap.LiteralReader, _ *imap.AppendOptions) (*imap.AppendData, error) {
	if folderName(name) == "" {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "No such folder"}
	}
	return nil, errIMAPAppend
}

func (m *imapSession) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		// RFC 9051 6.3.9: an empty pattern asks for the delimiter.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: mailboxDelim})
	}
	for _, name := range folders {
		match := false
		for _, p := range patterns {
			if imapserver.MatchList(name, mailboxDelim, ref, p) {
				match = true
				break
			}
		}
		if !match {
			continue
		}
		data := &imap.ListData{Mailbox: name, Delim: mailboxDelim, Attrs: []imap.MailboxAttr{imap.MailboxAttrHasNoChildren}}
		if options.ReturnSubscribed || options.SelectSubscribed {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if options.ReturnStatus != nil {
			st, err := m.Status(name, options.ReturnStatus)
			if err != nil {
				return err
			}
			data.Status = st
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

func (m *imapSession) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	folder := folderName(name)
	if folder == "" {
		return nil, errIMAPNoMailbox
	}
	view := m.view(folder)
	validity, err := m.srv.store.UIDValidity(m.ctx, view)
	if err != nil {
		return nil, m.internal("reading UIDVALIDITY failed", err)
	}
	entries, uidNext, err := m.srv.store.Entries(m.ctx, view)
	if err != nil {
		return nil, m.internal("listing folder failed", err)
	}
	data := &imap.StatusData{Mailbox: folder}
	var unseen uint32
	var size int64
	for _, e := range entries {
		if !e.Seen {
			unseen++
		}
		size += servedSize(e)
	}
	num, zero := uint32(len(entries)), uint32(0)
	if options.NumMessages {
		data.NumMessages = &num
	}
	if options.NumUnseen {
		data.NumUnseen = &unseen
	}
	if options.NumRecent {
		data.NumRecent = &zero
	}
	if options.NumDeleted {
		data.NumDeleted = &zero
	}
	if options.Size {
		data.Size = &size
	}
	if options.UIDNext {
		data.UIDNext = imap.UID(uidNext)
	}
	if options.UIDValidity {
		data.UIDValidity = validity
	}
	return data, nil
}

func (m *imapSession) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if m.mbox == nil {
		return nil
	}
	if err := m.refresh(); err != nil {
		return err
	}
	return m.mbox.session.Poll(w, allowExpunge)
}

// Idle sends updates as the store changes (DESIGN.md §6: promptly under IDLE).
func (m *imapSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	for {
		changed := m.srv.store.Changes()
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

// refresh brings the selected mailbox up to date with the store and queues
// the changes for the client.
func (m *imapSession) refresh() error {
	entries, _, err := m.srv.store.Entries(m.ctx, m.mbox.view)
	if err != nil {
		return m.internal("refreshing folder failed", err)
	}
	m.mbox.update(entries)
	return nil
}

func (m *imapSession) selected() (*selectedMailbox, error) {
	if m.mbox == nil {
		return nil, errNotSelected
	}
	return m.mbox, nil
}

func (m *imapSession) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	mbox, err := m.selected()
	if err != nil {
		return err
	}
	if mbox.readOnly {
		return errIMAPReadOnly
	}
	hasSeen := false
	for _, f := range flags.Flags {
		switch {
		case strings.EqualFold(string(f), string(imap.FlagSeen)):
			hasSeen = true
		case strings.EqualFold(string(f), `\Recent`):
		default:
			return errIMAPFlags
		}
	}
	seen := hasSeen
	if flags.Op == imap.StoreFlagsDel {
		seen = false
	} else if flags.Op == imap.StoreFlagsAdd && !hasSeen {
		return nil
	}
	if flags.Op == imap.StoreFlagsDel && !hasSeen {
		return nil
	}
	var ids []int64
	mbox.forEach(numSet, func(_ uint32, e *store.MailboxEntry) {
		if e.Seen != seen {
			ids = append(ids, e.Message)
		}
	})
	if len(ids) > 0 {
		if err := m.srv.store.SetSeen(m.ctx, m.agent.Email, ids, seen); err != nil {
			return m.internal("storing \\Seen failed", err)
		}
		mbox.setSeen(ids, seen)
	}
	if flags.Silent {
		return nil
	}
	return m.Fetch(w, numSet, &imap.FetchOptions{Flags: true})
}

// errNotSelected never reaches a client: the library checks the state first.
var errNotSelected = errors.New("no mailbox selected")
