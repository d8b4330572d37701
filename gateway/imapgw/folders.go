package imapgw

import (
	"errors"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/supportgate/supportgate/store"
)

// mailboxDelim separates hierarchy levels in folder names.
const mailboxDelim = '/'

// inboxesParent holds one folder per inbox for agents who see several.
const inboxesParent = "Inboxes"

type folderKind int

const (
	kindShared    folderKind = iota // INBOX, Mine, Unassigned, Closed, Spam
	kindInboxView                   // Inboxes/<address>
	kindPrivate                     // Drafts, Sent, Trash, the agent's own
	kindNoSelect                    // Inboxes
)

// folder is one mailbox as an agent sees it.
type folder struct {
	name   string
	kind   folderKind
	shared store.Folder // kindShared; FolderInbox for kindInboxView
	inbox  string       // kindInboxView
}

func (f folder) isShared() bool { return f.kind == kindShared || f.kind == kindInboxView }

// specialUse returns the RFC 6154 attribute of a folder, if any.
func (f folder) specialUse() imap.MailboxAttr {
	switch {
	case f.kind == kindShared && f.shared == store.FolderSpam:
		return imap.MailboxAttrJunk
	case f.kind == kindPrivate && f.name == store.MailboxSent:
		return imap.MailboxAttrSent
	case f.kind == kindPrivate && f.name == store.MailboxDrafts:
		return imap.MailboxAttrDrafts
	case f.kind == kindPrivate && f.name == store.MailboxTrash:
		return imap.MailboxAttrTrash
	}
	return ""
}

// reserved reports whether a name belongs to the shared folders.
func reserved(name string) bool {
	if strings.EqualFold(name, "INBOX") || name == inboxesParent || strings.HasPrefix(name, inboxesParent+"/") {
		return true
	}
	return slices.Contains(store.SharedFolders(), store.Folder(name))
}

// folders returns every mailbox of the agent, in LIST order.
func (m *session) folders() ([]folder, error) {
	var out []folder
	for _, f := range store.SharedFolders() {
		out = append(out, folder{name: string(f), kind: kindShared, shared: f})
	}
	if len(m.inboxes) > 1 {
		out = append(out, folder{name: inboxesParent, kind: kindNoSelect})
		for _, in := range m.inboxes {
			out = append(out, folder{name: inboxesParent + "/" + in, kind: kindInboxView, shared: store.FolderInbox, inbox: in})
		}
	}
	private, err := m.srv.opts.Store.PrivateMailboxes(m.ctx, m.agent.Email)
	if err != nil {
		return nil, m.internal("listing private mailboxes failed", err)
	}
	for _, mb := range private {
		out = append(out, folder{name: mb.Name, kind: kindPrivate})
	}
	return out, nil
}

// resolve finds a mailbox by name. RFC 9051 5.1: INBOX is case-insensitive.
func (m *session) resolve(name string) (folder, bool, error) {
	if strings.EqualFold(name, "INBOX") {
		name = "INBOX"
	}
	all, err := m.folders()
	if err != nil {
		return folder{}, false, err
	}
	for _, f := range all {
		if f.name == name {
			return f, true, nil
		}
	}
	return folder{}, false, nil
}

func (m *session) view(f folder) store.MailboxView {
	v := store.MailboxView{Agent: m.agent.Email, Folder: f.shared, Inboxes: m.inboxes}
	if f.kind == kindInboxView {
		v.Inboxes, v.Name = []string{f.inbox}, f.name
	}
	return v
}

// load reads a folder: its UIDVALIDITY, entries in UID order and UIDNEXT.
// The entries may be a shared snapshot's (views.go): they are not written.
func (m *session) load(f folder) (uint32, []store.MailboxEntry, uint32, error) {
	if s := m.srv.views.peek(m.viewKey(f)); s != nil {
		return s.validity, s.entries, s.uidNext, nil
	}
	return m.read(f)
}

// read reads a folder from the store.
func (m *session) read(f folder) (uint32, []store.MailboxEntry, uint32, error) {
	st := m.srv.opts.Store
	if f.kind == kindPrivate {
		mb, entries, err := st.PrivateEntries(m.ctx, m.agent.Email, f.name)
		return mb.UIDValidity, entries, mb.UIDNext, err
	}
	view := m.view(f)
	validity, err := st.UIDValidity(m.ctx, view)
	if err != nil {
		return 0, nil, 0, err
	}
	entries, next, err := st.Entries(m.ctx, view)
	return validity, entries, next, err
}

// viewKey names the picture of f that the agent's sessions share.
func (m *session) viewKey(f folder) viewKey {
	if f.kind == kindPrivate {
		return viewKey{agent: m.agent.Email, folder: "private/" + f.name}
	}
	v := m.view(f)
	return viewKey{agent: m.agent.Email, folder: "shared/" + f.name + "/" + string(v.Folder), scope: strings.Join(v.Inboxes, ",")}
}

// snapshot returns the current picture of the view v of folder f.
func (m *session) snapshot(v *view, f folder) (*snapshot, error) {
	return m.srv.views.current(v, m.srv.opts.Store.Changes, m.loader(f))
}

func (m *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	f, ok, err := m.resolve(name)
	if err != nil {
		return nil, err
	}
	if !ok || f.kind == kindNoSelect {
		return nil, errNoMailbox
	}
	// The new view is taken before the old one is left, so that selecting
	// the same folder again keeps its picture.
	v := m.srv.views.acquire(m.viewKey(f))
	m.closeMailbox()
	snap, err := m.snapshot(v, f)
	if err != nil {
		m.srv.views.release(v)
		return nil, m.internal("opening folder failed", err)
	}
	m.mbox = newSelectedMailbox(f, options.ReadOnly, v, snap)
	entries, validity, uidNext := snap.entries, snap.validity, snap.uidNext
	data := &imap.SelectData{
		Flags:       slices.Clone(m.mbox.flags), // RFC 9051 7.3.5: every keyword in use
		NumMessages: uint32(len(entries)),
		UIDNext:     imap.UID(uidNext),
		UIDValidity: validity,
	}
	if !options.ReadOnly {
		data.PermanentFlags = []imap.Flag{imap.FlagSeen}
		if m.canWrite() {
			data.PermanentFlags = append(slices.Clone(data.Flags), imap.FlagWildcard)
		}
	}
	for i, e := range entries {
		if !e.Seen {
			data.FirstUnseenSeqNum = uint32(i + 1)
			break
		}
	}
	return data, nil
}

// Every folder is always subscribed.
func (m *session) Subscribe(name string) error {
	if _, ok, err := m.resolve(name); err != nil || !ok {
		if err == nil {
			err = errNoMailbox
		}
		return err
	}
	return nil
}

func (m *session) Unsubscribe(name string) error { return m.Subscribe(name) }

func (m *session) Create(name string, _ *imap.CreateOptions) error {
	name = strings.TrimSuffix(name, string(mailboxDelim)) // RFC 9051 6.3.4
	if name == "" || strings.Contains(name, "//") || strings.HasPrefix(name, "/") {
		return errBadName
	}
	if reserved(name) {
		return errSharedFolder
	}
	if !m.canWrite() {
		return errViewOnly
	}
	err := m.srv.opts.Store.CreateMailbox(m.ctx, m.agent.Email, name)
	if errors.Is(err, store.ErrExists) {
		return errExists
	}
	if err != nil {
		return m.internal("creating folder failed", err)
	}
	return nil
}

func (m *session) Delete(name string) error {
	f, ok, err := m.resolve(name)
	if err != nil {
		return err
	}
	if !ok {
		return errNoMailbox
	}
	if err := m.checkRenamable(f); err != nil {
		return err
	}
	err = m.srv.opts.Store.DeleteMailbox(m.ctx, m.agent.Email, f.name)
	if errors.Is(err, store.ErrHasChildren) {
		return errHasChildren
	}
	if err != nil {
		return m.internal("deleting folder failed", err)
	}
	return nil
}

func (m *session) checkRenamable(f folder) error {
	switch {
	case f.kind != kindPrivate:
		return errSharedFolder
	case f.specialUse() != "":
		return errSpecialFolder
	case !m.canWrite():
		return errViewOnly
	}
	return nil
}

func (m *session) Rename(from, to string, _ *imap.RenameOptions) error {
	f, ok, err := m.resolve(from)
	if err != nil {
		return err
	}
	if !ok {
		return errNoMailbox
	}
	if err := m.checkRenamable(f); err != nil {
		return err
	}
	to = strings.TrimSuffix(to, string(mailboxDelim))
	if to == "" || strings.Contains(to, "//") || strings.HasPrefix(to, "/") || strings.HasPrefix(to, from+"/") {
		return errBadName
	}
	if reserved(to) {
		return errSharedFolder
	}
	err = m.srv.opts.Store.RenameMailbox(m.ctx, m.agent.Email, f.name, to)
	if errors.Is(err, store.ErrExists) {
		return errExists
	}
	if err != nil {
		return m.internal("renaming folder failed", err)
	}
	return nil
}

// List implements LIST with RFC 6154 SPECIAL-USE, RFC 3348 CHILDREN and
// RFC 5819 LIST-STATUS.
func (m *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		// RFC 9051 6.3.9: an empty pattern asks for the delimiter.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: mailboxDelim})
	}
	all, err := m.folders()
	if err != nil {
		return err
	}
	for _, f := range all {
		match := false
		for _, p := range patterns {
			match = match || imapserver.MatchList(f.name, mailboxDelim, ref, p)
		}
		if !match {
			continue
		}
		special := f.specialUse()
		if options.SelectSpecialUse && special == "" {
			continue
		}
		data := &imap.ListData{Mailbox: f.name, Delim: mailboxDelim}
		hasChildren := false
		for _, g := range all {
			hasChildren = hasChildren || strings.HasPrefix(g.name, f.name+"/")
		}
		if hasChildren {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if f.kind == kindNoSelect {
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		}
		if special != "" {
			data.Attrs = append(data.Attrs, special)
		}
		if options.ReturnSubscribed || options.SelectSubscribed {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if options.ReturnStatus != nil && f.kind != kindNoSelect {
			if data.Status, err = m.status(f, options.ReturnStatus); err != nil {
				return err
			}
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

func (m *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	f, ok, err := m.resolve(name)
	if err != nil {
		return nil, err
	}
	if !ok || f.kind == kindNoSelect {
		return nil, errNoMailbox
	}
	return m.status(f, options)
}

func (m *session) status(f folder, options *imap.StatusOptions) (*imap.StatusData, error) {
	validity, entries, uidNext, err := m.load(f)
	if err != nil {
		return nil, m.internal("reading folder status failed", err)
	}
	data := &imap.StatusData{Mailbox: f.name}
	var unseen, deleted uint32
	var size int64
	for _, e := range entries {
		if !e.Seen {
			unseen++
		}
		if hasFlag(&e, imap.FlagDeleted) {
			deleted++
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
		data.NumDeleted = &deleted
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
