package imapgw

import (
	"errors"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/supportgate/supportgate/desk"
	"github.com/supportgate/supportgate/policy"
	"github.com/supportgate/supportgate/store"
)

// setSeen sets the agent's \Seen on entries of the selected folder, in the
// store and in the session's picture (so that it is not reported twice).
func (m *session) setSeen(entries []store.MailboxEntry, seen bool) error {
	mbox := m.mbox
	if mbox.folder.kind == kindPrivate {
		// Only \Seen changes: another session's change of other flags
		// since this one's picture is kept.
		uids := make([]uint32, len(entries))
		for i, e := range entries {
			uids[i] = e.UID
		}
		if err := m.srv.opts.Store.ChangePrivateFlags(m.ctx, m.agent.Email, mbox.folder.name, uids, []string{string(imap.FlagSeen)}, seen); err != nil {
			return m.internal(`storing \Seen failed`, err)
		}
	} else {
		ids := make([]int64, len(entries))
		for i, e := range entries {
			ids[i] = e.Message
		}
		if err := m.srv.opts.Store.SetSeen(m.ctx, m.agent.Email, ids, seen); err != nil {
			return m.internal(`storing \Seen failed`, err)
		}
	}
	uids := make(map[uint32]bool, len(entries))
	for _, e := range entries {
		uids[e.UID] = true
	}
	mbox.setSeen(uids, seen) // the shared snapshot is not written
	return nil
}

// flagRequest is a STORE's flags sorted by what they mean here.
type flagRequest struct {
	seen, deleted bool
	own           []string // the agent's own: \Answered and a client's bookkeeping (policy.IsClientKeyword)
	keywords      []string // conversation keywords: \Flagged, \Draft, tags
	onlyOwn       bool     // nothing but \Seen (and \Recent) and the agent's own keywords
}

func parseFlags(flags []imap.Flag) flagRequest {
	r := flagRequest{onlyOwn: true}
	for _, f := range flags {
		switch s := string(f); {
		case strings.EqualFold(s, string(imap.FlagSeen)):
			r.seen = true
		case strings.EqualFold(s, `\Recent`):
		case strings.EqualFold(s, string(imap.FlagDeleted)):
			r.deleted, r.onlyOwn = true, false
		case isOwnFlag(s):
			r.own = append(r.own, s)
		default:
			r.keywords, r.onlyOwn = append(r.keywords, s), false
		}
	}
	return r
}

// isOwnFlag reports whether a flag is kept per agent in shared folders
// (DESIGN.md §6): a client's bookkeeping, and the \Answered a client
// stores (the server computes its own).
func isOwnFlag(f string) bool {
	return strings.EqualFold(f, string(imap.FlagAnswered)) || policy.IsClientKeyword(f)
}

// Store implements STORE (RFC 9051 6.4.6) with the meanings of DESIGN.md §6,
// and UNCHANGEDSINCE (RFC 7162 3.1.3).
func (m *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) (err error) {
	mbox, err := m.selected()
	if err != nil {
		return err
	}
	if mbox.readOnly {
		return errReadOnly
	}
	conditional := options != nil && options.UnchangedSinceSet
	if conditional {
		announce := m.enableCondStore()
		defer func() {
			if err == nil || isOK(err) {
				if aerr := announce(); aerr != nil {
					err = aerr
				}
			}
		}()
		// The mod-sequences compared are the store's as they are now.
		if err := m.refresh(nil); err != nil {
			return err
		}
	}
	req := parseFlags(flags.Flags)
	var targets []store.MailboxEntry
	var modified []uint32 // RFC 7162 3.1.3: changed since UNCHANGEDSINCE, left as they are
	_, byUID := numSet.(imap.UIDSet)
	mbox.forEach(numSet, func(seq uint32, e *store.MailboxEntry) {
		if conditional && modSeq(e) > options.UnchangedSince {
			if byUID {
				modified = append(modified, e.UID)
			} else {
				modified = append(modified, seq)
			}
			return
		}
		targets = append(targets, *e)
	})
	if len(targets) == 0 {
		return modifiedError(modified, byUID)
	}
	viewOnly := !m.canWrite()
	if viewOnly && !req.onlyOwn {
		return errViewOnly
	}
	if mbox.folder.kind == kindPrivate {
		if viewOnly {
			return errViewOnly
		}
		err = m.storePrivate(targets, flags)
	} else {
		err = m.storeShared(targets, flags.Op, req, viewOnly)
	}
	if err != nil {
		return err
	}
	quiet := map[uint32]bool{}
	var stored imap.UIDSet
	for _, e := range targets {
		quiet[e.UID] = true
		stored.AddNum(imap.UID(e.UID))
	}
	if err := m.refresh(quiet); err != nil {
		return err
	}
	// RFC 7162 3.1: once CONDSTORE is enabled, the FETCH responses carry
	// UID and MODSEQ, and a .SILENT STORE still reports the new MODSEQ
	// (RFC 7162 3.1.3, its example) without FLAGS.
	if flags.Silent && !m.condStore {
		return modifiedError(modified, byUID)
	}
	if err := m.Fetch(w, stored, &imap.FetchOptions{Flags: !flags.Silent, UID: m.condStore, ModSeq: m.condStore}); err != nil {
		return err
	}
	return modifiedError(modified, byUID)
}

// modifiedError is the answer of a conditional STORE (RFC 7162 3.1.3) some
// of whose messages changed since its UNCHANGEDSINCE: OK [MODIFIED set],
// their sequence numbers or UIDs; nil when there are none.
func modifiedError(modified []uint32, byUID bool) error {
	if len(modified) == 0 {
		return nil
	}
	var set imap.NumSet
	if byUID {
		var s imap.UIDSet
		for _, n := range modified {
			s.AddNum(imap.UID(n))
		}
		set = s
	} else {
		var s imap.SeqSet
		for _, n := range modified {
			s.AddNum(n)
		}
		set = s
	}
	return &imap.Error{Type: imap.StatusResponseTypeOK, Code: imap.ResponseCode("MODIFIED " + set.String()),
		Text: "Conditional STORE failed for the messages changed since"}
}

// isOK reports whether err is a tagged OK with a response code.
func isOK(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeOK
}

func (m *session) storePrivate(targets []store.MailboxEntry, flags *imap.StoreFlags) error {
	if flags.Op != imap.StoreFlagsSet {
		// +FLAGS and -FLAGS change the named flags as they are in the store
		// when it commits, not as this session last saw them: two sessions'
		// changes of one message are both kept (imaptest's store group).
		uids := make([]uint32, len(targets))
		for i, e := range targets {
			uids[i] = e.UID
		}
		var names []string
		for _, f := range flags.Flags {
			if !strings.EqualFold(string(f), `\Recent`) {
				names = append(names, string(f))
			}
		}
		if err := m.srv.opts.Store.ChangePrivateFlags(m.ctx, m.agent.Email, m.mbox.folder.name, uids, names, flags.Op == imap.StoreFlagsAdd); err != nil {
			return m.internal("storing flags failed", err)
		}
		return nil
	}
	// FLAGS replaces them all.
	out := map[uint32][]string{}
	for _, e := range targets {
		var next []string
		for _, f := range flags.Flags {
			s := string(f)
			if !strings.EqualFold(s, `\Recent`) && !slices.ContainsFunc(next, func(g string) bool { return strings.EqualFold(g, s) }) {
				next = append(next, s)
			}
		}
		out[e.UID] = next
	}
	if err := m.srv.opts.Store.SetPrivateFlags(m.ctx, m.agent.Email, m.mbox.folder.name, out); err != nil {
		return m.internal("storing flags failed", err)
	}
	return nil
}

// storeShared applies a STORE in a shared folder: \Seen, \Answered and a
// client's bookkeeping keywords per agent, \Deleted per agent and entry,
// and everything else as the conversation's shared keywords. A client's
// junk filter or its own \Answered never changes what the team sees
// (DESIGN.md §6); marking spam is a move to Spam. A view agent's STORE
// FLAGS (which replaces all flags) changes only what is their own.
func (m *session) storeShared(targets []store.MailboxEntry, op imap.StoreFlagsOp, req flagRequest, viewOnly bool) error {
	st := m.srv.opts.Store
	var convs []int64
	for _, e := range targets {
		if !slices.Contains(convs, e.Conversation) {
			convs = append(convs, e.Conversation)
		}
	}
	if !viewOnly && (!req.onlyOwn || op == imap.StoreFlagsSet) {
		if err := m.checkConversations(convs); err != nil {
			return err
		}
	}
	var writes []func() error // independent: at once (atonce.go)
	// \Seen, per agent.
	if req.seen || op == imap.StoreFlagsSet {
		seen := op != imap.StoreFlagsDel && req.seen
		var change []store.MailboxEntry
		for _, e := range targets {
			if e.Seen != seen {
				change = append(change, e)
			}
		}
		if len(change) > 0 {
			writes = append(writes, func() error { return m.setSeen(change, seen) })
		}
	}
	// \Answered and a client's bookkeeping, per agent.
	writes = append(writes, func() error { return m.storeOwn(targets, op, req) })
	if viewOnly {
		return atOnce(writes...)
	}
	// \Deleted, per agent and entry.
	if req.deleted || op == imap.StoreFlagsSet {
		on := op != imap.StoreFlagsDel && req.deleted
		uids := make([]uint32, len(targets))
		for i, e := range targets {
			uids[i] = e.UID
		}
		writes = append(writes, func() error {
			if err := st.SetMarks(m.ctx, m.agent.Email, m.mbox.folder.shared, uids, store.MarkDeleted, on); err != nil {
				return m.internal("storing \\Deleted failed", err)
			}
			return nil
		})
	}
	writes = append(writes, func() error { return m.storeConversations(convs, targets, op, req) })
	return atOnce(writes...)
}

// storeOwn stores the agent's own flags of a STORE in a shared folder.
func (m *session) storeOwn(targets []store.MailboxEntry, op imap.StoreFlagsOp, req flagRequest) error {
	var add, remove []string
	switch op {
	case imap.StoreFlagsAdd:
		add = req.own
	case imap.StoreFlagsDel:
		remove = req.own
	case imap.StoreFlagsSet:
		add = req.own
		for _, e := range targets {
			for _, f := range e.Flags {
				if isOwnFlag(f) && !slices.ContainsFunc(req.own, func(k string) bool { return strings.EqualFold(k, f) }) &&
					!slices.ContainsFunc(remove, func(k string) bool { return strings.EqualFold(k, f) }) {
					remove = append(remove, f)
				}
			}
		}
	}
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	ids := make([]int64, len(targets))
	for i, e := range targets {
		ids[i] = e.Message
	}
	if err := m.srv.opts.Store.SetAgentKeywords(m.ctx, m.agent.Email, ids, add, remove); err != nil {
		return m.internal("storing keywords failed", err)
	}
	return nil
}

// storeConversations changes the shared keywords of the conversations
// convs as a STORE says: one desk change of them all (desk.KeywordsAll),
// each with its event.
func (m *session) storeConversations(convs []int64, targets []store.MailboxEntry, op imap.StoreFlagsOp, req flagRequest) error {
	var dop desk.KeywordOp
	switch op {
	case imap.StoreFlagsAdd:
		dop = desk.AddKeywords
	case imap.StoreFlagsDel:
		dop = desk.RemoveKeywords
	case imap.StoreFlagsSet:
		dop = desk.SetKeywords
	}
	// For a FLAGS (set): what the session saw of a conversation's
	// keywords, less those the set keeps and the flags that are not the
	// conversation's.
	drop := func(conv int64) []string {
		if op != imap.StoreFlagsSet {
			return nil
		}
		var out []string
		for _, e := range targets {
			if e.Conversation != conv {
				continue
			}
			for _, f := range e.Flags {
				keep := isOwnFlag(f) || strings.EqualFold(f, string(imap.FlagDeleted)) ||
					slices.ContainsFunc(req.keywords, func(k string) bool { return strings.EqualFold(k, f) })
				if !keep {
					out = append(out, f)
				}
			}
			break
		}
		return out
	}
	if err := m.srv.opts.Desk.KeywordsAll(m.ctx, *m.agent, convs, dop, req.keywords, drop); err != nil {
		return m.internal("storing keywords failed", err)
	}
	return nil
}
