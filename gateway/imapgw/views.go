package imapgw

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-imap/v2"

	"github.com/supportgate/supportgate/store"
)

// Shared folder pictures.
//
// Every session used to read its selected folder from the store at SELECT
// and again at every change the store published, and to keep its own copy
// of the entries: with 10,000 sessions on a 10,000-message INBOX that was
// 10,000 reads of the folder per change and about 1.5 GB of copies, and
// opening the sessions took longer than 6 minutes (issue 8). Now the
// sessions that show one folder to one agent share one picture of it, a
// snapshot: read once per change, never written, and handed with the
// difference from the snapshot before it, so that a session that was up to
// date turns a change into EXPUNGE, EXISTS and FETCH FLAGS without looking
// at the whole folder. A session copies the entries only while it knows
// something the snapshot does not yet (its own \Seen, flags.go).
//
// A snapshot is not read in full at every change: when the store tells
// that only new entries were committed since the previous snapshot was read
// (store.IncrementalEntries, the common case under inbound load), the new
// snapshot is the previous one's entries followed by the entries added
// since, read by UID. Snapshots made that way from one full read form a
// chain in which each one's entries start with the entries of those before
// it, so that a session that is several snapshots behind catches up by
// announcing the entries past its own, in O(new entries) as well.
//
// When existing entries of a few conversations changed too (a status,
// assignee, keywords, \Seen, marks), the store returns those
// conversations' entries as they are now (store.FolderChanges), and the new
// snapshot is the previous one with them replaced (patch): a copy of the
// entries, but no read of the folder, and the delta for the sessions comes
// from the replaced entries only. If none of the entries this view shows
// changed (another agent's \Seen, a conversation in another folder), the
// new snapshot extends the chain as above. Otherwise, and for private
// mailboxes, the folder is read again in full.
//
// A view subscribes to the changes of what it shows (store.Filter, DESIGN.md
// §13): its folder kind in the inboxes its agent may see and that agent's
// own changes, or its private mailbox. Its snapshot stays current until one
// of those is published, and only then do its sessions, IDLE included,
// wake: a message in another inbox or another agent's \Seen costs them
// nothing.

// viewKey names what a snapshot shows: an agent's folder, as its scope of
// inboxes.
type viewKey struct {
	agent, folder, scope string
}

// views holds the snapshots of the folders that sessions have selected.
type views struct {
	feed   store.Feed // nil: no view is ever current (tests of the cache)
	mu     sync.Mutex
	m      map[viewKey]*view
	lastID uint64 // the last snapshot id given, under mu
	// unused are views no session holds, kept for a while: the library
	// leaves the selected folder before a SELECT, also of the same folder,
	// and STATUS of a folder just left is common. At most keepUnused are
	// kept, the oldest dropped first.
	unused []*view
}

const keepUnused = 64

// keepUnusedEntries bounds the entries of the unused views kept, about a
// gigabyte: a STATUS keeps the picture of the folder it counts (folders.go,
// picture), and pictures of folders of a million messages are about 240 MB
// each. The newest unused view is kept whatever its size.
const keepUnusedEntries = 4_000_000

// view is one folder picture and the sessions using it.
type view struct {
	key   viewKey
	sub   *store.Subscription // the changes of what it shows; nil without a feed
	users int                 // sessions that selected it, under views.mu
	mu    sync.Mutex          // one reload at a time; the others wait for it
	snap  *snapshot

	// keywords are the flags its sessions have announced in FLAGS, beyond
	// the base ones: a later SELECT lists them too, used or not, as Dovecot
	// keeps a folder's keywords. A client that cached a message with a
	// keyword that has since gone (unseen by it: its .SILENT STORE's
	// answer has no FLAGS) must not be told by FLAGS that the keyword does
	// not exist before it learns the message's flags (imaptest's qresync:
	// "Keyword dropped, but it still had references").
	kwMu     sync.Mutex
	keywords []imap.Flag
	kwKnown  map[string]bool

	convs convIndex // under mu (convindex.go)
	// entries is how many entries its newest snapshot holds, for views
	// to bound what unused views keep without taking mu.
	entries atomic.Int64
}

// remember adds flags to the keywords the view's sessions have announced.
func (v *view) remember(flags []imap.Flag) {
	if v == nil {
		return
	}
	v.kwMu.Lock()
	defer v.kwMu.Unlock()
	if v.kwKnown == nil {
		v.kwKnown = map[string]bool{}
	}
	for _, f := range flags {
		if k := strings.ToLower(string(f)); !v.kwKnown[k] {
			v.kwKnown[k] = true
			v.keywords = append(v.keywords, f)
		}
	}
}

// remembered returns the keywords the view's sessions have announced.
func (v *view) remembered() []imap.Flag {
	if v == nil {
		return nil
	}
	v.kwMu.Lock()
	defer v.kwMu.Unlock()
	return slices.Clone(v.keywords)
}

// changed returns a channel closed at the next change of what the view
// shows (store.Subscription.Changed); without a feed, a closed one: the
// view is never current.
func (v *view) changed() <-chan struct{} {
	if v.sub == nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return v.sub.Changed()
}

// snapshot is a folder as the store had it when its view's changes
// channel was taken; it is current until that channel is closed. Nothing
// in it is written after it is made: sessions share it.
type snapshot struct {
	id       uint64
	changed  <-chan struct{}
	validity uint32
	entries  []*store.MailboxEntry // in UID order; read only, shared with the snapshots before and after it
	uidNext  uint32
	// highestModSeq is the folder's HIGHESTMODSEQ when read (RFC 7162
	// 3.1.2.1): at least every entry's ModSeq.
	highestModSeq uint64
	// prev is the id of the snapshot this one replaced, and delta the
	// difference from it, when applying it gives exactly these entries.
	prev  uint64
	delta *delta
	// chain is the id of the snapshot read in full that this one extends
	// with new entries only (its own id when it was read in full): the
	// entries of every snapshot of a chain begin with those of the
	// snapshots before it.
	chain uint64
	// cursor is where the read of this snapshot left off in the store.
	cursor store.FolderCursor
	// how it was made from the snapshot before it (for tests).
	how readKind
	// sum is its summary once computed or derived (summary.go).
	sum atomic.Pointer[folderSummary]
}

// readKind is how a snapshot was made.
type readKind int

const (
	readFull     readKind = iota // read in full
	readAppended                 // the previous one's entries and new ones
	readPatched                  // the previous one's, some conversations replaced
)

// fresh reports whether nothing was committed since the snapshot was read.
func (s *snapshot) fresh() bool {
	select {
	case <-s.changed:
		return false
	default:
		return true
	}
}

// folderRead is a read of a folder.
type folderRead struct {
	validity uint32
	entries  []*store.MailboxEntry
	uidNext  uint32
	cursor   store.FolderCursor
	// highestModSeq: HIGHESTMODSEQ, read with the entries (RFC 7162 3.1.2.1)
	highestModSeq uint64
	// appended: entries are only those added since the snapshot given to
	// the loadFunc, which has the same validity; its entries, those of the
	// replaced conversations replaced by replacements (store.FolderChanges),
	// followed by these are the folder's.
	appended     bool
	replaced     map[int64]bool
	replacements []*store.MailboxEntry
}

// loadFunc reads a folder, only what was added since prev when it can
// (prev is nil for a first read).
type loadFunc func(prev *snapshot) (folderRead, error)

func newViews(feed store.Feed) *views { return &views{feed: feed, m: map[viewKey]*view{}} }

// acquire returns the view of key for a session that selects it; release
// gives it back. f selects the changes of what key shows; a view keeps
// the subscription of its first acquire until it is dropped.
func (vs *views) acquire(key viewKey, f store.Filter) *view {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	v := vs.m[key]
	if v == nil {
		v = &view{key: key}
		if vs.feed != nil {
			v.sub = vs.feed.Subscribe(f)
		}
		vs.m[key] = v
	}
	v.users++
	return v
}

func (vs *views) release(v *view) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if v.users--; v.users > 0 {
		return
	}
	vs.unused = append(vs.unused, v)
	for len(vs.unused) > keepUnused || len(vs.unused) > 1 && vs.unusedEntries() > keepUnusedEntries {
		old := vs.unused[0]
		vs.unused = vs.unused[1:]
		if old.users == 0 && vs.m[old.key] == old && !slices.Contains(vs.unused, old) {
			delete(vs.m, old.key)
			if old.sub != nil {
				old.sub.Close()
			}
		}
	}
}

// unusedEntries is how many entries the unused views hold, under vs.mu.
func (vs *views) unusedEntries() int64 {
	var n int64
	for i, v := range vs.unused {
		if v.users == 0 && !slices.Contains(vs.unused[:i], v) {
			n += v.entries.Load()
		}
	}
	return n
}

func (vs *views) nextID() uint64 {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	vs.lastID++
	return vs.lastID
}

// current returns a snapshot no older than the last change of what v
// shows published before the call, reading the folder when the one held
// is stale.
func (vs *views) current(v *view, load loadFunc) (*snapshot, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.snap != nil && v.snap.fresh() {
		return v.snap, nil
	}
	ch := v.changed() // before reading: a change during the read makes it stale
	old := v.snap
	r, err := load(old)
	if err != nil {
		return nil, err
	}
	s := &snapshot{id: vs.nextID(), changed: ch, validity: r.validity, uidNext: r.uidNext, cursor: r.cursor,
		highestModSeq: r.highestModSeq}
	if r.appended && old != nil && old.validity == r.validity && len(r.replaced) > 0 {
		// When none of the entries this view shows changed, only new
		// entries were added, as below.
		idx := v.convs.replacedIndexes(old, r.replaced)
		if !unchanged(old.entries, idx, r.replacements) {
			entries, d := patch(old.entries, idx, r.replacements, r.entries)
			s.entries, s.chain, s.how = entries, s.id, readPatched
			v.convs.moveTo(old, s, r.replaced, r.replacements, r.entries)
			if sum := old.sum.Load(); sum != nil {
				came := append(slices.Clip(r.replacements), r.entries...)
				s.sum.Store(sum.derive(old.entries, idx, came, entries))
			}
			if d.exact {
				s.prev, s.delta = old.id, &d
			}
			v.set(s)
			return s, nil
		}
	}
	if r.appended && old != nil && old.validity == r.validity {
		// In place past old's entries when there is room: no snapshot or
		// session reads beyond its own length, and only the newest
		// snapshot of a view is ever extended.
		s.entries = append(old.entries, r.entries...)
		s.chain, s.how = old.chain, readAppended
		v.convs.moveTo(old, s, nil, nil, r.entries)
		if sum := old.sum.Load(); sum != nil {
			s.sum.Store(sum.derive(old.entries, nil, r.entries, s.entries))
		}
		s.prev, s.delta = old.id, &delta{added: len(r.entries) > 0, exact: true}
	} else {
		if r.appended {
			return nil, errors.New("imapgw: an incremental read without the snapshot it extends")
		}
		s.entries, s.chain = r.entries, s.id
		v.convs.drop()
		if old != nil && old.validity == r.validity {
			if d := diff(old.entries, r.entries); d.exact {
				s.prev, s.delta = old.id, &d
			}
		}
	}
	v.set(s)
	return s, nil
}

// set makes s the view's newest snapshot, under v.mu.
func (v *view) set(s *snapshot) {
	v.snap = s
	v.entries.Store(int64(len(s.entries)))
}

// loader returns the loadFunc of the session's folder f: a shared folder is
// read incrementally (store.IncrementalEntries), in full only when the
// store says it must.
func (m *session) loader(f folder) loadFunc {
	st := m.srv.opts.Store
	return func(prev *snapshot) (folderRead, error) {
		if !f.isShared() {
			r, err := m.readFolder(f)
			if errors.Is(err, store.ErrNotFound) && prev != nil && f.kind == kindPrivate {
				// The selected folder was deleted (by this session or
				// another): it is shown empty, its messages expunged,
				// until the client leaves it.
				return folderRead{validity: prev.validity, uidNext: prev.uidNext, highestModSeq: prev.highestModSeq}, nil
			}
			return r, err
		}
		view := m.view(f)
		validity, err := st.UIDValidity(m.ctx, view)
		if err != nil {
			return folderRead{}, err
		}
		var cur store.FolderCursor // zero: everything
		if prev != nil && prev.validity == validity {
			cur = prev.cursor
		}
		c, err := st.EntryChanges(m.ctx, view, cur)
		return folderRead{validity: validity, entries: pointers(c.Entries), uidNext: c.UIDNext, cursor: c.Cursor, appended: !c.Full,
			replaced: c.Replaced, replacements: pointers(c.Replacements), highestModSeq: uint64(c.HighestModSeq)}, err
	}
}

// unchanged reports whether the replacements are the entries at idx as
// they are, so that replacing them changes nothing.
func unchanged(old []*store.MailboxEntry, idx []int, repl []*store.MailboxEntry) bool {
	if len(idx) != len(repl) {
		return false
	}
	for k, i := range idx {
		a, b := old[i], repl[k]
		if a.UID != b.UID || a.Message != b.Message || a.Conversation != b.Conversation || a.Kind != b.Kind ||
			a.SenderRole != b.SenderRole || a.Size != b.Size || !a.Received.Equal(b.Received) || a.Seen != b.Seen ||
			!slices.Equal(a.HiddenBCC, b.HiddenBCC) || !slices.Equal(a.Flags, b.Flags) || a.ModSeq != b.ModSeq {
			return false
		}
	}
	return true
}

// patch applies an incremental read that replaced conversations
// (store.FolderChanges) to old: the entries at idx (ascending) are those of
// the replaced conversations, repl their entries now up to old's last UID
// and added the entries since, all in UID order. It returns the new entries
// and the delta from old, what diff(old, new) gives, in one walk over the
// replaced entries: the entries between them are copied as they are.
func patch(old []*store.MailboxEntry, idx []int, repl, added []*store.MailboxEntry) ([]*store.MailboxEntry, delta) {
	out := make([]*store.MailboxEntry, 0, len(old)-len(idx)+len(repl)+len(added))
	var d delta
	// lastKept: the last UID of old still there; firstNew: the first UID
	// of repl that old did not have (an entry no longer hidden).
	var lastKept, firstNew uint32
	pos, r := 0, 0
	unknown := func() {
		if firstNew == 0 {
			firstNew = repl[r].UID
		}
		out = append(out, repl[r])
		r++
	}
	// keep copies old[pos:stop], which stay as they are, with the
	// replacements that fall among them.
	keep := func(stop int) {
		for pos < stop {
			j := stop
			if r < len(repl) && repl[r].UID < old[stop-1].UID {
				j = pos + sort.Search(stop-pos, func(k int) bool { return old[pos+k].UID > repl[r].UID })
			}
			out = append(out, old[pos:j]...)
			if j > pos {
				lastKept = old[j-1].UID
			}
			pos = j
			if j < stop {
				unknown()
			}
		}
	}
	for _, i := range idx {
		keep(i)
		o := old[i]
		for r < len(repl) && repl[r].UID < o.UID {
			unknown()
		}
		if r < len(repl) && repl[r].UID == o.UID {
			out = append(out, repl[r])
			r++
			lastKept = o.UID
			if n := out[len(out)-1]; n.Seen != o.Seen || !slices.Equal(n.Flags, o.Flags) {
				d.changes = append(d.changes, change{seq: uint32(i + 1), now: len(out) - 1})
			}
		} else {
			d.changes = append(d.changes, change{expunge: true, seq: uint32(i + 1)})
		}
		pos = i + 1
	}
	keep(len(old))
	for r < len(repl) {
		unknown()
	}
	out = append(out, added...)
	if firstNew != 0 && firstNew < lastKept {
		// An entry below the last kept that sessions never knew: they
		// cannot be told of it in sequence order (diff). Rare.
		return out, diff(old, out)
	}
	slices.Reverse(d.changes) // last first, as diff gives them
	d.added = len(out) > 0 && out[len(out)-1].UID > lastKept
	d.exact = true
	return out, d
}

// pointers returns pointers to the entries, in order, without copying
// them: snapshots share entries by pointer, so that a snapshot made from
// the one before it copies 8 bytes an entry, not the entry (a flag change
// in a folder of a million messages copied 200 MB, issue 18).
func pointers(entries []store.MailboxEntry) []*store.MailboxEntry {
	if entries == nil {
		return nil
	}
	out := make([]*store.MailboxEntry, len(entries))
	for i := range entries {
		out[i] = &entries[i]
	}
	return out
}
