package imapgw

import (
	"errors"
	"slices"
	"sync"

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
// A snapshot is not read in full at every change: when the store can tell
// that only new entries were committed since the previous snapshot was read
// (store.IncrementalEntries, the common case under inbound load), the new
// snapshot is the previous one's entries followed by the entries added
// since, read by UID; otherwise, and for private mailboxes, the folder is
// read again in full. Snapshots made that way from one full read form a
// chain in which each one's entries start with the entries of those before
// it, so that a session that is several snapshots behind catches up by
// announcing the entries past its own, in O(new entries) as well.

// viewKey names what a snapshot shows: an agent's folder, as its scope of
// inboxes.
type viewKey struct {
	agent, folder, scope string
}

// views holds the snapshots of the folders that sessions have selected.
type views struct {
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

// view is one folder picture and the sessions using it.
type view struct {
	key   viewKey
	users int        // sessions that selected it, under views.mu
	mu    sync.Mutex // one reload at a time; the others wait for it
	snap  *snapshot
}

// snapshot is a folder as the store had it when the changes channel was
// taken; it is current until that channel is closed. Nothing in it is
// written after it is made: sessions share it.
type snapshot struct {
	id       uint64
	changed  <-chan struct{}
	validity uint32
	entries  []store.MailboxEntry // in UID order; read only
	uidNext  uint32
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
}

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
	entries  []store.MailboxEntry
	uidNext  uint32
	cursor   store.FolderCursor
	// appended: entries are only those added since the snapshot given to
	// the loadFunc, which has the same validity; its entries followed by
	// these are the folder's.
	appended bool
}

// loadFunc reads a folder, only what was added since prev when it can
// (prev is nil for a first read).
type loadFunc func(prev *snapshot) (folderRead, error)

func newViews() *views { return &views{m: map[viewKey]*view{}} }

// acquire returns the view of key for a session that selects it; release
// gives it back.
func (vs *views) acquire(key viewKey) *view {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	v := vs.m[key]
	if v == nil {
		v = &view{key: key}
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
	for len(vs.unused) > keepUnused {
		old := vs.unused[0]
		vs.unused = vs.unused[1:]
		if old.users == 0 && vs.m[old.key] == old && !slices.Contains(vs.unused, old) {
			delete(vs.m, old.key)
		}
	}
}

// peek returns the current snapshot of key if a session has one, for a
// reader that does not select the folder (STATUS, a COPY's destination).
func (vs *views) peek(key viewKey) *snapshot {
	vs.mu.Lock()
	v := vs.m[key]
	vs.mu.Unlock()
	if v == nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.snap != nil && v.snap.fresh() {
		return v.snap
	}
	return nil
}

func (vs *views) nextID() uint64 {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	vs.lastID++
	return vs.lastID
}

// current returns a snapshot no older than the last change published
// before the call, reading the folder when the one held is stale.
func (vs *views) current(v *view, changes func() <-chan struct{}, load loadFunc) (*snapshot, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.snap != nil && v.snap.fresh() {
		return v.snap, nil
	}
	ch := changes() // before reading: a change during the read makes it stale
	old := v.snap
	r, err := load(old)
	if err != nil {
		return nil, err
	}
	s := &snapshot{id: vs.nextID(), changed: ch, validity: r.validity, uidNext: r.uidNext, cursor: r.cursor}
	if r.appended && old != nil && old.validity == r.validity {
		// In place past old's entries when there is room: no snapshot or
		// session reads beyond its own length, and only the newest
		// snapshot of a view is ever extended.
		s.entries = append(old.entries, r.entries...)
		s.chain = old.chain
		s.prev, s.delta = old.id, &delta{added: len(r.entries) > 0, exact: true}
	} else {
		if r.appended {
			return nil, errors.New("imapgw: an incremental read without the snapshot it extends")
		}
		s.entries, s.chain = r.entries, s.id
		if old != nil && old.validity == r.validity {
			if d := diff(old.entries, r.entries); d.exact {
				s.prev, s.delta = old.id, &d
			}
		}
	}
	v.snap = s
	return s, nil
}

// loader returns the loadFunc of the session's folder f: from a store that
// can read only new entries (store.IncrementalEntries), a shared folder is
// read in full only when something else changed.
func (m *session) loader(f folder) loadFunc {
	st := m.srv.opts.Store
	inc, ok := st.(store.IncrementalEntries)
	return func(prev *snapshot) (folderRead, error) {
		if !ok || !f.isShared() {
			validity, entries, uidNext, err := m.read(f)
			return folderRead{validity: validity, entries: entries, uidNext: uidNext}, err
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
		entries, uidNext, next, appended, err := inc.EntriesSince(m.ctx, view, cur)
		return folderRead{validity: validity, entries: entries, uidNext: uidNext, cursor: next, appended: appended}, err
	}
}
