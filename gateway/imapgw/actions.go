package imapgw

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/supportgate/supportgate/desk"
	"github.com/supportgate/supportgate/internal/budget"
	"github.com/supportgate/supportgate/store"
)

// conversationsOf returns the distinct conversations of entries, in order.
func conversationsOf(entries []store.MailboxEntry) []int64 {
	var out []int64
	for _, e := range entries {
		if e.Message != 0 && !slices.Contains(out, e.Conversation) {
			out = append(out, e.Conversation)
		}
	}
	return out
}

// act applies what moving a message into a shared folder, or Trash, means
// to whole conversations (DESIGN.md §6): one desk change each, with its
// event.
func (m *session) act(dest folder, convs []int64) error {
	target := dest.shared
	if dest.kind == kindPrivate {
		target = desk.Trash
	}
	// One transaction for all (desk.MoveAll, issue 18).
	if err := m.srv.opts.Desk.MoveAll(m.ctx, *m.agent, convs, target); err != nil {
		return m.internal("applying a folder action failed", err)
	}
	return nil
}

func (m *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	data, _, err := m.copy(numSet, dest)
	return data, err
}

// Move implements RFC 6851. Messages leave the source only when they really
// do (see the package doc); the EXPUNGEs are sent by the poll that follows.
func (m *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	data, moved, err := m.copy(numSet, dest)
	if err != nil {
		return err
	}
	if m.mbox.folder.kind == kindPrivate && len(moved) > 0 {
		uids := make([]uint32, len(moved))
		for i, e := range moved {
			uids[i] = e.UID
		}
		if err := m.srv.opts.Store.RemovePrivate(m.ctx, m.agent.Email, m.mbox.folder.name, uids); err != nil {
			return m.internal("moving failed", err)
		}
	}
	return w.WriteCopyData(data)
}

// copy files the messages of numSet in dest, doing dest's action, and
// returns RFC 4315 COPYUID data and the entries copied.
func (m *session) copy(numSet imap.NumSet, destName string) (*imap.CopyData, []store.MailboxEntry, error) {
	mbox, err := m.selected()
	if err != nil {
		return nil, nil, err
	}
	dest, ok, err := m.resolve(destName)
	if err != nil {
		return nil, nil, err
	}
	if !ok || dest.kind == kindNoSelect {
		return nil, nil, errTryCreate
	}
	if !m.canWrite() {
		return nil, nil, errViewOnly
	}
	var sources []store.MailboxEntry
	mbox.forEach(numSet, func(_ uint32, e *store.MailboxEntry) { sources = append(sources, *e) })
	if len(sources) == 0 {
		return nil, nil, nil
	}
	convs := conversationsOf(sources)
	data := &imap.CopyData{}
	var srcUIDs, dstUIDs imap.UIDSet
	if dest.isShared() {
		for _, e := range sources {
			if e.Message == 0 {
				return nil, nil, errOwnBytes
			}
		}
		if err := m.checkConversations(convs); err != nil {
			return nil, nil, err
		}
		if err := m.act(dest, convs); err != nil {
			return nil, nil, err
		}
		// The destination's picture, brought up to date with the copies
		// (only what changed is read), and each copy found from its end,
		// where new entries are: a COPY into a folder of a million
		// messages read all of it and looked through it once per message
		// copied (issue 18).
		snap, err := m.picture(dest)
		if err != nil {
			return nil, nil, m.internal("reading the destination failed", err)
		}
		data.UIDValidity = snap.validity
		copied := make(map[int64]uint32, len(sources))
		for _, e := range sources {
			copied[e.Message] = 0
		}
		for i, left := len(snap.entries)-1, len(copied); i >= 0 && left > 0; i-- {
			if uid, ok := copied[snap.entries[i].Message]; ok && uid == 0 {
				copied[snap.entries[i].Message] = snap.entries[i].UID
				left--
			}
		}
		for _, e := range sources {
			if uid := copied[e.Message]; uid != 0 {
				srcUIDs.AddNum(imap.UID(e.UID))
				dstUIDs.AddNum(imap.UID(uid))
			}
		}
	} else {
		if dest.name == trashName() && mbox.folder.isShared() {
			if err := m.checkConversations(convs); err != nil {
				return nil, nil, err
			}
		}
		msgs := make([]store.PrivateMessage, 0, len(sources))
		for _, e := range sources {
			pm := store.PrivateMessage{Message: e.Message, Flags: copiedFlags(e), Received: e.Received}
			if e.Message == 0 {
				if pm.Raw, err = m.srv.opts.Store.PrivateRaw(m.ctx, m.agent.Email, mbox.folder.name, e.UID); err != nil {
					return nil, nil, m.internal("reading message failed", err)
				}
			}
			msgs = append(msgs, pm)
		}
		mb, uids, err := m.srv.opts.Store.AddPrivate(m.ctx, m.agent.Email, dest.name, msgs)
		if err != nil {
			return nil, nil, m.internal("copying failed", err)
		}
		data.UIDValidity = mb.UIDValidity
		if len(uids) > 0 {
			m.srv.recent.added(m.agent.Email, dest.name, mb.UIDValidity, uids[0])
		}
		for i, e := range sources {
			srcUIDs.AddNum(imap.UID(e.UID))
			dstUIDs.AddNum(imap.UID(uids[i]))
		}
		if dest.name == trashName() && mbox.folder.isShared() {
			if err := m.act(dest, convs); err != nil {
				return nil, nil, err
			}
		}
	}
	data.SourceUIDs, data.DestUIDs = srcUIDs, dstUIDs
	if len(srcUIDs) == 0 {
		return nil, sources, nil
	}
	return data, sources, nil
}

func trashName() string { return store.MailboxTrash }

// copiedFlags are the flags a private copy starts with: the entry's, less
// the per-entry \Deleted.
func copiedFlags(e store.MailboxEntry) []string {
	var out []string
	if e.Seen {
		out = append(out, string(imap.FlagSeen))
	}
	for _, f := range e.Flags {
		if !strings.EqualFold(f, string(imap.FlagDeleted)) {
			out = append(out, f)
		}
	}
	return out
}

// Expunge implements EXPUNGE and UID EXPUNGE (RFC 4315). In a private
// mailbox it removes \Deleted messages; in a shared folder it ends the
// conversations' presence there the way the folder's action says (see the
// package doc). The EXPUNGE responses are sent by the poll that follows.
func (m *session) Expunge(_ *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	mbox, err := m.selected()
	if err != nil {
		return err
	}
	if mbox.readOnly {
		return errReadOnly
	}
	var targets []store.MailboxEntry
	for _, e := range mbox.entries {
		if hasFlag(e, imap.FlagDeleted) && (uids == nil || uids.Contains(imap.UID(e.UID))) {
			targets = append(targets, *e)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	if !m.canWrite() {
		return errViewOnly
	}
	st := m.srv.opts.Store
	if mbox.folder.kind == kindPrivate {
		list := make([]uint32, len(targets))
		for i, e := range targets {
			list[i] = e.UID
		}
		if err := st.RemovePrivate(m.ctx, m.agent.Email, mbox.folder.name, list); err != nil {
			return m.internal("expunging failed", err)
		}
		return nil
	}
	convs := conversationsOf(targets)
	if err := m.checkConversations(convs); err != nil {
		return err
	}
	switch mbox.folder.shared {
	case store.FolderClosed, store.FolderSpam:
		// The agent's own mark, not a change of the conversation.
		var hide []uint32
		for _, e := range mbox.entries {
			if slices.Contains(convs, e.Conversation) {
				hide = append(hide, e.UID)
			}
		}
		if err := st.SetMarks(m.ctx, m.agent.Email, mbox.folder.shared, hide, store.MarkHidden, true); err != nil {
			return m.internal("expunging failed", err)
		}
	default: // Mine unassigns; INBOX, Inboxes/..., Unassigned close
		if err := m.srv.opts.Desk.ExpungeAll(m.ctx, *m.agent, convs, mbox.folder.shared); err != nil {
			return m.internal("expunging failed", err)
		}
	}
	return nil
}

// Append implements APPEND (RFC 9051 6.3.12, RFC 4315 APPENDUID) into a
// private mailbox. An APPEND to Sent of a message the agent just submitted
// is answered with the UID of the copy Sent already holds.
func (m *session) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	f, ok, err := m.resolve(name)
	if err != nil {
		return nil, err
	}
	if !ok || f.kind == kindNoSelect {
		return nil, errTryCreate
	}
	if !m.canWrite() {
		return nil, errViewOnly
	}
	if f.isShared() {
		return nil, errAppendShared
	}
	// DESIGN.md §8: the literal is held in memory taken from the daemon's
	// budget for message data (AppendLimit bounds each one).
	raw, release, err := m.srv.opts.Inflight.ReadAll(r)
	defer release()
	if errors.Is(err, budget.ErrExhausted) {
		return nil, errBusy
	}
	if err != nil {
		// The connection broke in the middle of the literal: nothing to
		// answer, and nothing of ours to log as an error.
		return nil, errAppendAborted
	}
	if f.name == store.MailboxSent {
		mb, entries, err := m.srv.opts.Store.PrivateEntries(m.ctx, m.agent.Email, f.name)
		if err != nil {
			return nil, m.internal("reading Sent failed", err)
		}
		if uid, ok := m.submittedCopy(entries, raw); ok {
			return &imap.AppendData{UID: imap.UID(uid), UIDValidity: mb.UIDValidity}, nil
		}
	}
	var flags []string
	for _, fl := range options.Flags {
		if !strings.EqualFold(string(fl), `\Recent`) {
			flags = append(flags, string(fl))
		}
	}
	mb, uids, err := m.srv.opts.Store.AddPrivate(m.ctx, m.agent.Email, f.name,
		[]store.PrivateMessage{{Raw: raw, Flags: flags, Received: options.Time}})
	if err != nil {
		return nil, m.internal("storing the message failed", err)
	}
	m.srv.recent.added(m.agent.Email, f.name, mb.UIDValidity, uids[0])
	return &imap.AppendData{UID: imap.UID(uids[0]), UIDValidity: mb.UIDValidity}, nil
}

// submittedCopy finds, among Sent's recent recorded replies and notes, the
// one a client's copy of its own submitted message stands for: the same
// Date header, and the recorded body the end of the client's (quick-action
// lines are removed from the top on the way out; the rest is kept byte for
// byte, DESIGN.md §5).
func (m *session) submittedCopy(entries []store.MailboxEntry, raw []byte) (uint32, bool) {
	head, body := splitMessage(raw)
	date := headerValue(head, "Date")
	if date == "" {
		return 0, false
	}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.Message == 0 || time.Since(e.Received) > 24*time.Hour {
			continue
		}
		stored, err := m.srv.opts.Store.MessageRaw(m.ctx, e.Message)
		if err != nil {
			continue
		}
		sh, sb := splitMessage(stored)
		if headerValue(sh, "Date") == date && bytes.HasSuffix(body, sb) {
			return e.UID, true
		}
	}
	return 0, false
}

// headerValue returns a top-level header field's unfolded value.
func headerValue(head []byte, name string) string {
	lines := strings.Split(string(head), "\r\n")
	for i, line := range lines {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), name) {
			continue
		}
		for j := i + 1; j < len(lines) && (strings.HasPrefix(lines[j], " ") || strings.HasPrefix(lines[j], "\t")); j++ {
			v += " " + strings.TrimSpace(lines[j])
		}
		return strings.TrimSpace(v)
	}
	return ""
}
