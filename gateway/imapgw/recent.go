package imapgw

import (
	"sort"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/supportgate/supportgate/store"
)

// \Recent (RFC 3501 2.3.2), for IMAP4rev1 clients in private folders.
//
// IMAP4rev2 removed \Recent (RFC 9051 Appendix E), and the library sends no
// RECENT to a client that enabled it. For the others a message is recent
// in the one session that first learns of it: the session that selects
// (SELECT, not EXAMINE) the folder, or has it selected when the message
// arrives. Shared folders have no \Recent: what is new there is per
// conversation and per agent, which \Seen already says.
//
// Which messages were claimed is kept in memory, per agent and folder, as
// the highest UID some session took: after a restart the messages already
// there are not recent (RFC 3501 allows a server that cannot tell to say
// either). A folder created since is watched from its first message, and a
// folder first seen when messages are added to it from the first of them.

// recentKey names an agent's private folder.
type recentKey struct{ agent, name string }

// recentMark is how far the folder's messages were claimed; validity 0:
// the folder was just created, its UIDVALIDITY is taken at first sight.
type recentMark struct {
	validity, claimed uint32
}

// recentMarks are the marks of the folders seen since the start.
type recentMarks struct {
	mu sync.Mutex
	m  map[recentKey]recentMark
}

func newRecentMarks() *recentMarks { return &recentMarks{m: map[recentKey]recentMark{}} }

// created records a new folder: all its messages will be recent.
func (r *recentMarks) created(agent, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[recentKey{agent, name}] = recentMark{}
}

// forget drops the marks of a folder and of those below it (DELETE,
// RENAME): a folder of that name later is another one.
func (r *recentMarks) forget(agent, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.m {
		if k.agent == agent && (k.name == name || strings.HasPrefix(k.name, name+"/")) {
			delete(r.m, k)
		}
	}
}

// mark returns the folder's mark, made at first sight with the messages
// below firstNew not recent.
func (r *recentMarks) mark(k recentKey, validity, firstNew uint32) recentMark {
	mk, ok := r.m[k]
	switch {
	case ok && mk.validity == 0:
		mk.validity = validity
	case !ok || mk.validity != validity:
		mk = recentMark{validity: validity, claimed: max(firstNew, 1) - 1}
	}
	r.m[k] = mk
	return mk
}

// added records messages added to a folder from firstNew on (APPEND, COPY),
// so that a folder first seen now has them recent.
func (r *recentMarks) added(agent, name string, validity, firstNew uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mark(recentKey{agent, name}, validity, firstNew)
}

// claim takes the messages up to upTo that no session took, for a session
// that selected the folder read-write: it returns the first UID taken
// (above upTo when none).
func (r *recentMarks) claim(agent, name string, validity, uidNext, upTo uint32) uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := recentKey{agent, name}
	mk := r.mark(k, validity, uidNext)
	from := mk.claimed + 1
	if upTo > mk.claimed {
		mk.claimed = upTo
		r.m[k] = mk
	}
	return from
}

// unclaimed returns the UID above which no session took the messages.
func (r *recentMarks) unclaimed(agent, name string, validity, uidNext uint32) uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mark(recentKey{agent, name}, validity, uidNext).claimed
}

// recentState is a session's \Recent in its selected private folder.
type recentState struct {
	marks       *recentMarks
	agent, name string
	validity    uint32
	readOnly    bool
	// above: read-only, every message above it is recent; read-write, the
	// recent messages are the UIDs in set.
	above uint32
	set   imap.UIDSet
	// announced is the RECENT count the client was last told.
	announced uint32
}

// newRecentState claims the recent messages of a private folder for a
// session that opens it; nil for a shared folder.
func newRecentState(marks *recentMarks, agent string, f folder, readOnly bool, snap *snapshot) *recentState {
	if f.kind != kindPrivate {
		return nil
	}
	rs := &recentState{marks: marks, agent: agent, name: f.name, validity: snap.validity, readOnly: readOnly}
	if readOnly {
		rs.above = marks.unclaimed(agent, f.name, snap.validity, snap.uidNext)
	} else {
		rs.take(snap.uidNext, snap.uidNext-1)
	}
	return rs
}

// take claims the messages up to upTo for a read-write session.
func (rs *recentState) take(uidNext, upTo uint32) {
	if from := rs.marks.claim(rs.agent, rs.name, rs.validity, uidNext, upTo); from <= upTo {
		rs.set.AddRange(imap.UID(from), imap.UID(upTo))
	}
}

// arrived is told of the entries the session learns of, the last one
// with UID last.
func (rs *recentState) arrived(last uint32) {
	if rs != nil && !rs.readOnly {
		rs.take(last+1, last)
	}
}

func (rs *recentState) has(uid uint32) bool {
	if rs == nil {
		return false
	}
	if rs.readOnly {
		return uid > rs.above
	}
	return rs.set.Contains(imap.UID(uid))
}

// count is the number of recent entries among entries (in UID order).
func (rs *recentState) count(entries []*store.MailboxEntry) uint32 {
	if rs == nil {
		return 0
	}
	if rs.readOnly {
		i := sort.Search(len(entries), func(k int) bool { return entries[k].UID > rs.above })
		return uint32(len(entries) - i)
	}
	var n uint32
	for _, r := range uidIndexRanges(entries, rs.set) {
		n += uint32(r[1] - r[0])
	}
	return n
}

// announceRecent writes RECENT when the count changed and the client was
// told of every change of the entries: none is held back (an EXISTS or an
// EXPUNGE waiting until a command allows it, RFC 9051 7.5.1).
func (mb *selectedMailbox) announceRecent(w *imapserver.UpdateWriter, allowExpunge bool) error {
	rs := mb.recent
	if rs == nil {
		return nil
	}
	n := rs.count(mb.entries)
	if n == rs.announced || (n < rs.announced && !allowExpunge) {
		return nil
	}
	if l := uint32(len(mb.entries)); l > 0 && mb.session.EncodeSeqNum(l) != l {
		return nil
	}
	rs.announced = n
	return w.WriteNumRecent(n)
}
