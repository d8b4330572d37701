package imapgw

import (
	"errors"
	"slices"
	"sort"
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

// readFolder reads a folder from the store, with its HIGHESTMODSEQ (RFC
// 7162 3.1.2.1) read in the same transaction as its entries.
func (m *session) readFolder(f folder) (folderRead, error) {
	st := m.srv.opts.Store
	if f.kind == kindPrivate {
		mb, entries, err := st.PrivateEntries(m.ctx, m.agent.Email, f.name)
		return folderRead{validity: mb.UIDValidity, entries: pointers(entries), uidNext: mb.UIDNext, highestModSeq: uint64(mb.HighestModSeq)}, err
	}
	view := m.view(f)
	validity, err := st.UIDValidity(m.ctx, view)
	if err != nil {
		return folderRead{}, err
	}
	c, err := st.EntryChanges(m.ctx, view, store.FolderCursor{}) // the zero cursor: everything
	return folderRead{validity: validity, entries: pointers(c.Entries), uidNext: c.UIDNext, highestModSeq: uint64(c.HighestModSeq)}, err
}

// viewKey names the picture of f that the agent's sessions share.
func (m *session) viewKey(f folder) viewKey {
	if f.kind == kindPrivate {
		return viewKey{agent: m.agent.Email, folder: "private/" + f.name}
	}
	v := m.view(f)
	return viewKey{agent: m.agent.Email, folder: "shared/" + f.name + "/" + string(v.Folder), scope: strings.Join(v.Inboxes, ",")}
}

// filter selects the changes of what the agent's view of f shows
// (DESIGN.md §13): the folder kind in the inboxes of the view and the
// agent's own changes of them, or a private mailbox.
func (m *session) filter(f folder) store.Filter {
	if f.kind == kindPrivate {
		return store.MailboxFilter(m.agent.Email, f.name)
	}
	v := m.view(f)
	return store.FolderFilter(m.agent.Email, v.Folder, v.Inboxes)
}

// acquireView returns the shared picture of f for a session that selects
// it (views.acquire).
func (m *session) acquireView(f folder) *view {
	return m.srv.views.acquire(m.viewKey(f), m.filter(f))
}

// picture is the current picture of f for a reader that does not select
// it (STATUS, a COPY's destination): the one the agent's sessions share,
// which stays among the unused views afterwards (views.go), so that a
// client asking STATUS of every folder now and then, as Thunderbird does,
// costs what changed since its last STATUS. STATUS read the whole folder
// each time: 6 to 9 s for a folder of 921,000 messages that no session had
// selected (issue 18).
func (m *session) picture(f folder) (*snapshot, error) {
	v := m.acquireView(f)
	defer m.srv.views.release(v)
	return m.snapshot(v, f)
}

// snapshot returns the current picture of the view v of folder f.
func (m *session) snapshot(v *view, f folder) (*snapshot, error) {
	return m.srv.views.current(v, m.loader(f))
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
	v := m.acquireView(f)
	m.closeMailbox()
	snap, err := m.snapshot(v, f)
	if errors.Is(err, store.ErrNotFound) && f.kind == kindPrivate {
		m.srv.views.release(v)
		return nil, errNoMailbox // deleted meanwhile
	}
	if err != nil {
		m.srv.views.release(v)
		return nil, m.internal("opening folder failed", err)
	}
	m.mbox = newSelectedMailbox(f, options.ReadOnly, v, snap)
	m.mbox.recent = newRecentState(m.srv.recent, m.agent.Email, f, options.ReadOnly, snap)
	entries, validity, uidNext := snap.entries, snap.validity, snap.uidNext
	data := &imap.SelectData{
		Flags:       slices.Clone(m.mbox.mailboxFlags), // RFC 9051 7.3.5: every keyword in use
		NumMessages: uint32(len(entries)),
		NumRecent:   m.mbox.recent.count(entries),
		UIDNext:     imap.UID(uidNext),
		UIDValidity: validity,
		// RFC 7162 3.1.2.1: with every SELECT and EXAMINE.
		HighestModSeq: max(snap.highestModSeq, 1),
	}
	// RFC 7162 3.1.8: SELECT (CONDSTORE) enables it, as ENABLE did.
	m.condStore = m.condStore || options.CondStore || m.conn != nil && m.conn.EnabledCaps().Has(imap.CapCondStore)
	if !options.ReadOnly {
		data.PermanentFlags = []imap.Flag{imap.FlagSeen}
		if m.canWrite() {
			data.PermanentFlags = append(slices.Clone(data.Flags), imap.FlagWildcard)
		}
	}
	data.FirstUnseenSeqNum = snap.summary().firstUnseenSeq(entries)
	if rs := m.mbox.recent; rs != nil {
		rs.announced = data.NumRecent
	}
	return data, nil
}

// Subscribe implements SUBSCRIBE (RFC 9051 6.3.7). Subscriptions are per
// agent (DESIGN.md §6); any name may be subscribed, whether or not it
// exists (RFC 3501 6.3.6).
func (m *session) Subscribe(name string) error { return m.setSubscribed(name, true) }

// Unsubscribe implements UNSUBSCRIBE (RFC 9051 6.3.8); a name that was not
// subscribed is no error.
func (m *session) Unsubscribe(name string) error { return m.setSubscribed(name, false) }

func (m *session) setSubscribed(name string, on bool) error {
	name = strings.TrimSuffix(name, string(mailboxDelim))
	if strings.EqualFold(name, "INBOX") {
		name = "INBOX"
	}
	if name == "" {
		return errBadName
	}
	if err := m.srv.opts.Store.SetSubscribed(m.ctx, m.agent.Email, name, on); err != nil {
		return m.internal("storing a subscription failed", err)
	}
	return nil
}

// subscribedByDefault reports whether a name without a recorded choice is
// subscribed: the shared folders start subscribed (DESIGN.md §6), and so do
// Drafts, Sent and Trash, which every agent has; a folder the agent creates
// is subscribed by their client.
func subscribedByDefault(name string) bool {
	return reserved(name) || name == store.MailboxDrafts || name == store.MailboxSent || name == store.MailboxTrash
}

// subscriptions returns the names the agent has subscribed, existing or
// not, in LIST order: the folders first, then the other names sorted.
func (m *session) subscriptions(all []folder) ([]string, map[string]bool, error) {
	chosen, err := m.srv.opts.Store.Subscriptions(m.ctx, m.agent.Email)
	if err != nil {
		return nil, nil, m.internal("reading subscriptions failed", err)
	}
	subscribed := map[string]bool{}
	var names []string
	for _, f := range all {
		on, ok := chosen[f.name]
		if (ok && on) || (!ok && subscribedByDefault(f.name)) {
			subscribed[f.name] = true
			names = append(names, f.name)
		}
	}
	var others []string
	for name, on := range chosen {
		if on && !subscribed[name] {
			subscribed[name] = true
			others = append(others, name)
		}
	}
	slices.Sort(others)
	return append(names, others...), subscribed, nil
}

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
	m.srv.recent.created(m.agent.Email, name)
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
	m.srv.recent.forget(m.agent.Email, f.name)
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
	m.srv.recent.forget(m.agent.Email, f.name)
	return nil
}

// List implements LIST with RFC 5258 LIST-EXTENDED (SUBSCRIBED,
// RECURSIVEMATCH), RFC 6154 SPECIAL-USE, RFC 3348 CHILDREN and RFC 5819
// LIST-STATUS, and LSUB (RFC 3501 6.3.9).
func (m *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		// RFC 9051 6.3.9: an empty pattern asks for the delimiter.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: mailboxDelim})
	}
	all, err := m.folders()
	if err != nil {
		return err
	}
	matches := func(name string) bool {
		for _, p := range patterns {
			if imapserver.MatchList(name, mailboxDelim, ref, p) {
				return true
			}
		}
		return false
	}
	byName := make(map[string]folder, len(all))
	for _, f := range all {
		byName[f.name] = f
	}
	var subNames []string
	var subscribed map[string]bool
	if options.SelectSubscribed || options.ReturnSubscribed {
		if subNames, subscribed, err = m.subscriptions(all); err != nil {
			return err
		}
	}
	if w.LSub() {
		return m.lsub(w, subNames, subscribed, byName, matches)
	}
	// The names to answer for: every folder, or with SUBSCRIBED the
	// subscribed names, existing or not, and with RECURSIVEMATCH their
	// parents (RFC 5258 3.5).
	names := make([]string, 0, len(all))
	if !options.SelectSubscribed {
		for _, f := range all {
			names = append(names, f.name)
		}
	} else {
		seen := map[string]bool{}
		for _, n := range subNames {
			if options.SelectRecursiveMatch {
				for i := range len(n) {
					if p := n[:i]; n[i] == mailboxDelim && !seen[p] {
						seen[p] = true
						names = append(names, p)
					}
				}
			}
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	for _, name := range names {
		if !matches(name) {
			continue
		}
		f, exists := byName[name]
		special := f.specialUse()
		if options.SelectSpecialUse && special == "" {
			continue
		}
		data := &imap.ListData{Mailbox: name, Delim: mailboxDelim}
		if options.SelectSubscribed && !subscribed[name] {
			// RFC 5258 3.5: a parent is answered only for a subscribed
			// child the patterns do not match themselves.
			if !slices.ContainsFunc(subNames, func(c string) bool { return strings.HasPrefix(c, name+"/") && !matches(c) }) {
				continue
			}
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		if !exists {
			// RFC 5258 3: \NonExistent (which implies \Noselect).
			data.Attrs = append(data.Attrs, imap.MailboxAttrNonExistent)
		} else {
			hasChildren := false
			for _, g := range all {
				hasChildren = hasChildren || strings.HasPrefix(g.name, name+"/")
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
		}
		if subscribed[name] {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if options.ReturnStatus != nil && exists && f.kind != kindNoSelect {
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

// lsub answers LSUB (RFC 3501 6.3.9): the subscribed names the patterns
// match, and, where a "%" stops above a subscribed name that is not matched
// itself, its unsubscribed parent with \Noselect.
func (m *session) lsub(w *imapserver.ListWriter, subNames []string, subscribed map[string]bool, byName map[string]folder,
	matches func(string) bool) error {
	done := map[string]bool{}
	for _, n := range subNames {
		for i := range len(n) + 1 {
			if i < len(n) && (n[i] != mailboxDelim || matches(n)) {
				continue
			}
			name := n[:i]
			if done[name] || !matches(name) || (i < len(n) && subscribed[name]) {
				continue
			}
			done[name] = true
			data := &imap.ListData{Mailbox: name, Delim: mailboxDelim}
			f, exists := byName[name]
			if i < len(n) || !exists || f.kind == kindNoSelect {
				data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
			}
			if special := f.specialUse(); exists && special != "" {
				data.Attrs = append(data.Attrs, special)
			}
			if err := w.WriteList(data); err != nil {
				return err
			}
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
	if options.HighestModSeq { // RFC 7162 3.1: CONDSTORE-enabling
		announce := m.enableCondStore()
		data, err := m.status(f, options)
		if err == nil {
			err = announce()
		}
		return data, err
	}
	return m.status(f, options)
}

func (m *session) status(f folder, options *imap.StatusOptions) (*imap.StatusData, error) {
	snap, err := m.picture(f)
	if errors.Is(err, store.ErrNotFound) && f.kind == kindPrivate {
		return nil, errNoMailbox // deleted meanwhile
	}
	if err != nil {
		return nil, m.internal("reading folder status failed", err)
	}
	validity, entries, uidNext := snap.validity, snap.entries, snap.uidNext
	data := &imap.StatusData{Mailbox: f.name}
	sum := snap.summary()
	unseen, deleted := uint32(sum.unseen), uint32(sum.deleted)
	var size int64
	// Only when asked: in a million-message folder SIZE (a served header
	// a message) costs more than the rest (issue 18).
	if options.Size {
		for _, e := range entries {
			size += servedSize(*e)
		}
	}
	num, recent := uint32(len(entries)), uint32(0)
	if f.kind == kindPrivate && options.NumRecent {
		// The messages no session took yet (recent.go).
		above := m.srv.recent.unclaimed(m.agent.Email, f.name, validity, uidNext)
		recent = uint32(len(entries) - sort.Search(len(entries), func(k int) bool { return entries[k].UID > above }))
	}
	if options.NumMessages {
		data.NumMessages = &num
	}
	if options.NumUnseen {
		data.NumUnseen = &unseen
	}
	if options.NumRecent {
		data.NumRecent = &recent
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
	if options.HighestModSeq {
		data.HighestModSeq = max(snap.highestModSeq, 1) // RFC 7162 3.1.10
	}
	return data, nil
}
