package imapgw

import (
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/supportgate/supportgate/store"
)

// selectedMailbox is a session's picture of its selected folder: the
// entries the client knows, in UID order, and the tracker that turns
// changes into EXISTS, EXPUNGE and FETCH FLAGS responses.
type selectedMailbox struct {
	folder      folder
	uidValidity uint32
	readOnly    bool
	// entries are those of snap (shared, never written) unless owned: a
	// session copies them before it changes one (flags.go), until the
	// next snapshot it catches up with.
	entries []*store.MailboxEntry
	owned   bool
	// seen is the agent's \Seen this session set on entries it still
	// shares with the snapshot, by UID, until a snapshot shows it: a copy
	// of a million entries for one flag took a second (issue 18).
	seen    map[uint32]bool
	snap    uint64 // the id of the snapshot entries were brought up to
	chain   uint64 // that snapshot's chain (views.go)
	uidNext uint32
	view    *view // shared with the other sessions of the agent on the folder; nil for tests
	// highestModSeq is the HIGHESTMODSEQ of the snapshot the entries were
	// brought up to (RFC 7162 3.1.2.1).
	highestModSeq uint64
	// deferredBelow, when not 0, is the HIGHESTMODSEQ before the oldest
	// change queued for the client and not written yet: every queued
	// change's mod-sequence is above it (deferredModSeq).
	deferredBelow uint64

	tracker   *imapserver.MailboxTracker
	session   *imapserver.SessionTracker
	searchRes imap.UIDSet  // RFC 5182 SEARCHRES "$"
	recent    *recentState // \Recent in a private folder (recent.go); nil in a shared one

	// mailboxFlags is the FLAGS list the client was given (RFC 9051 7.3.5: every
	// flag a FETCH shows is in it), known the same in lower case; when
	// flagsChanged, a larger list is due before the next FETCH (flushFlags).
	mailboxFlags []imap.Flag
	known        map[string]bool
	flagsChanged bool
}

// baseFlags are in every folder's FLAGS, used or not.
var baseFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft, "$Junk", "$NotJunk"}

func newSelectedMailbox(f folder, readOnly bool, v *view, snap *snapshot) *selectedMailbox {
	t := imapserver.NewMailboxTracker(uint32(len(snap.entries)))
	mb := &selectedMailbox{
		folder: f, uidValidity: snap.validity, readOnly: readOnly,
		entries: snap.entries, snap: snap.id, chain: snap.chain, uidNext: snap.uidNext, view: v, highestModSeq: snap.highestModSeq,
		tracker: t, session: t.NewSession(),
		known: map[string]bool{},
	}
	mb.learn(baseFlags)
	mb.learn(snap.summary().shown()) // summary.go: not a walk of the folder
	mb.learn(v.remembered())         // views.go: announced before, listed still
	mb.flagsChanged = false          // the SELECT answer carries them
	mb.session.SetCurrentFlags(mb.currentFlags)
	return mb
}

// currentFlags gives the tracker an entry's flags and MODSEQ as they are
// when its queued FETCH is written (third_party/go-imap condstore.go): a
// FETCH that waited behind an EXPUNGE never shows older ones than the
// session showed since (RFC 7162 3.1). Poll, which calls it, runs on the
// session's goroutine.
func (mb *selectedMailbox) currentFlags(uid imap.UID) ([]imap.Flag, uint64, bool) {
	i := atOrAbove(mb.entries, uint32(uid))
	if i == len(mb.entries) || mb.entries[i].UID != uint32(uid) {
		return nil, 0, false
	}
	e := mb.at(i)
	return mb.flags(e), modSeq(e), true
}

// at is the entry at index i as the session knows it, its own \Seen
// included.
func (mb *selectedMailbox) at(i int) *store.MailboxEntry {
	e := mb.entries[i]
	if seen, ok := mb.seen[e.UID]; ok && seen != e.Seen {
		return withSeen(e, seen)
	}
	return e
}

// withSeen is a copy of e with \Seen as given: the entries a session owns
// are its own slice, but the entries they point to may be a snapshot's.
func withSeen(e *store.MailboxEntry, seen bool) *store.MailboxEntry {
	c := *e
	c.Seen = seen
	return &c
}

// setSeen records the agent's \Seen of entries for the session.
func (mb *selectedMailbox) setSeen(uids map[uint32]bool, seen bool) {
	if mb.owned {
		for i := range mb.entries {
			if e := mb.entries[i]; uids[e.UID] && e.Seen != seen {
				mb.entries[i] = withSeen(e, seen)
			}
		}
		return
	}
	if mb.seen == nil {
		mb.seen = map[uint32]bool{}
	}
	for uid := range uids {
		mb.seen[uid] = seen
	}
}

// settleSeen applies the session's own \Seen to entries it owns, and
// forgets those the shared entries show or that left.
func (mb *selectedMailbox) settleSeen() {
	for uid, seen := range mb.seen {
		i := atOrAbove(mb.entries, uid)
		if i < len(mb.entries) && mb.entries[i].UID == uid && mb.entries[i].Seen != seen {
			if !mb.owned {
				continue
			}
			mb.entries[i] = withSeen(mb.entries[i], seen)
		}
		delete(mb.seen, uid)
	}
}

// learnEntry adds the entry's flags to the folder's FLAGS.
func (mb *selectedMailbox) learnEntry(e *store.MailboxEntry) {
	for _, f := range e.Flags {
		if !mb.known[strings.ToLower(f)] {
			mb.learn([]imap.Flag{imap.Flag(f)})
		}
	}
}

func (mb *selectedMailbox) learn(flags []imap.Flag) {
	var added []imap.Flag
	for _, f := range flags {
		if k := strings.ToLower(string(f)); !mb.known[k] {
			mb.known[k] = true
			mb.mailboxFlags = append(mb.mailboxFlags, f)
			mb.flagsChanged = true
			added = append(added, f)
		}
	}
	if len(added) > 0 {
		mb.view.remember(added)
	}
}

func (mb *selectedMailbox) close() { mb.session.Close() }

// change is one response a session queues for an update: an expunge, or
// new flags of the entry at index now of the new entries; seq is the
// sequence number at that point of the queue.
type change struct {
	expunge bool
	seq     uint32
	now     int
}

// delta is how a session's entries become the store's current ones:
// entries that left (expunges, last first so that earlier sequence numbers
// stay right), flag changes, and new entries (UIDs only ascend, so new
// entries are those above the last one kept). exact: the result is the new
// entries; otherwise it is kept, those of now known before and the new.
type delta struct {
	changes []change
	added   bool
	exact   bool
	kept    []bool // when !exact: which entries of now the result holds
}

// diff computes the delta from old to now, both in UID order, in one walk
// from the end.
func diff(old, now []*store.MailboxEntry) delta {
	var d delta
	j := len(now) - 1
	var lastKept uint32
	kept := 0
	for i := len(old) - 1; i >= 0; i-- {
		o := old[i]
		for j >= 0 && now[j].UID > o.UID {
			j--
		}
		if j >= 0 && now[j].UID == o.UID {
			if lastKept == 0 {
				lastKept = o.UID
			}
			kept++
			if n := now[j]; n.Seen != o.Seen || !slices.Equal(n.Flags, o.Flags) {
				d.changes = append(d.changes, change{seq: uint32(i + 1), now: j})
			}
			j--
			continue
		}
		d.changes = append(d.changes, change{expunge: true, seq: uint32(i + 1)})
	}
	// UIDs ascend: the entries above the last one kept are the new ones.
	first := sort.Search(len(now), func(k int) bool { return now[k].UID > lastKept })
	d.added = first < len(now)
	d.exact = kept+len(now)-first == len(now)
	if !d.exact {
		// An entry below the last kept that the session never knew (it
		// cannot be told of it in sequence order): left out, as before.
		d.kept = make([]bool, len(now))
		known := make(map[uint32]bool, len(old))
		for i := range old {
			known[old[i].UID] = true
		}
		for k := range now {
			d.kept[k] = k >= first || known[now[k].UID]
		}
	}
	return d
}

// update brings the session up to the snapshot s and queues what changed,
// except flag changes of quiet UIDs, which the command that changed them
// reports itself.
func (mb *selectedMailbox) update(s *snapshot, quiet map[uint32]bool) {
	if s.id == mb.snap && !mb.owned {
		return
	}
	var d delta
	switch {
	case !mb.owned && s.chain == mb.chain && len(s.entries) >= len(mb.entries):
		// Only new entries since the session's snapshot (views.go): its
		// entries are the first of s's.
		d = delta{added: len(s.entries) > len(mb.entries), exact: true}
	case s.delta != nil && s.prev == mb.snap && !mb.owned:
		d = *s.delta // computed once for every session that was up to date
	default:
		d = diff(mb.entries, s.entries)
	}
	now := s.entries
	// RFC 9051 7.3.5: a keyword is announced in FLAGS before a FETCH shows
	// it (flushFlags writes the list before the responses queued here).
	var oldLast uint32
	if n := len(mb.entries); n > 0 {
		oldLast = mb.entries[n-1].UID
	}
	for _, c := range d.changes {
		if !c.expunge {
			mb.learnEntry(now[c.now])
		}
	}
	for k := sort.Search(len(now), func(k int) bool { return now[k].UID > oldLast }); k < len(now); k++ {
		mb.learnEntry(now[k])
	}
	remaining := len(mb.entries) // the entries the tracker counts after the expunges
	for _, c := range d.changes {
		if c.expunge {
			// With the UID, for VANISHED to a client that enabled QRESYNC
			// (RFC 7162 3.2.10); mb.entries are still those c.seq counts.
			mb.tracker.QueueExpungeUID(c.seq, imap.UID(mb.entries[c.seq-1].UID))
			remaining--
			continue
		}
		if e := now[c.now]; !quiet[e.UID] && !mb.knew(c.seq, e) {
			// With MODSEQ to a client that enabled CONDSTORE (RFC 7162 3.1).
			mb.tracker.QueueMessageFlagsModSeq(c.seq, imap.UID(e.UID), mb.flags(e), modSeq(e), nil)
		}
	}
	if d.exact {
		mb.entries, mb.owned = now, false
	} else {
		var out []*store.MailboxEntry
		for k := range now {
			if d.kept[k] {
				out = append(out, now[k])
			}
		}
		mb.entries, mb.owned = out, true
	}
	mb.settleSeen()
	mb.snap, mb.chain = s.id, s.chain
	if (len(d.changes) > 0 || d.added) && mb.deferredBelow == 0 {
		mb.deferredBelow = mb.highestModSeq // the changes of s were committed after it
	}
	mb.highestModSeq = max(mb.highestModSeq, s.highestModSeq)
	if d.added {
		// One EXISTS per new message: the tracker maps its sequence
		// numbers to the client's (EncodeSeqNum, for a FETCH before the
		// next poll) only when the count grows by one at a time; with one
		// EXISTS for several, a FETCH 1:* showed messages the client was
		// not told of yet (imaptest stress: "seq too high").
		for n := remaining + 1; n <= len(mb.entries); n++ {
			mb.tracker.QueueNumMessages(uint32(n))
		}
		mb.recent.arrived(mb.entries[len(mb.entries)-1].UID)
	}
	if n := len(mb.entries); n > 0 && mb.entries[n-1].UID >= mb.uidNext {
		mb.uidNext = mb.entries[n-1].UID + 1
	}
}

// knew reports whether the client was shown e's flags already: the change
// of the entry at seq in the session's entries is only the \Seen the
// session itself set.
func (mb *selectedMailbox) knew(seq uint32, e *store.MailboxEntry) bool {
	seen, ok := mb.seen[e.UID]
	if !ok || seen != e.Seen || int(seq) > len(mb.entries) {
		return false
	}
	old := mb.entries[seq-1]
	return old.UID == e.UID && slices.Equal(old.Flags, e.Flags)
}

// flags are the flags the session's client sees on an entry, \Recent
// included.
func (mb *selectedMailbox) flags(e *store.MailboxEntry) []imap.Flag {
	if mb.recent.has(e.UID) {
		return append([]imap.Flag{`\Recent`}, entryFlags(e)...)
	}
	return entryFlags(e)
}

// modSeq is an entry's MODSEQ (RFC 7162 3.1): a mod-sequence is never 0.
func modSeq(e *store.MailboxEntry) uint64 { return uint64(max(e.ModSeq, 1)) }

// entryFlags are the flags a client sees on an entry.
func entryFlags(e *store.MailboxEntry) []imap.Flag {
	out := []imap.Flag{}
	if e.Seen {
		out = append(out, imap.FlagSeen)
	}
	for _, f := range e.Flags {
		out = append(out, imap.Flag(f))
	}
	return out
}

// forEach calls f for every entry of numSet that the client knows, in
// order, with its sequence number as the client sees it. The entries are in
// UID order: a UID set is found by binary search, so that a FETCH of the new
// mail costs what it returns, not the size of the folder (issue 8).
func (mb *selectedMailbox) forEach(numSet imap.NumSet, f func(seq uint32, e *store.MailboxEntry)) {
	mb.forEachWhere(numSet, nil, f)
}

// forEachWhere is forEach over the entries keep (when not nil) accepts,
// asked first: SEARCH skips what its index rules out for the cost of a
// lookup (issue 18). keep sees the shared entry, without the session's
// own \Seen.
func (mb *selectedMailbox) forEachWhere(numSet imap.NumSet, keep func(e *store.MailboxEntry) bool, f func(seq uint32, e *store.MailboxEntry)) {
	numSet = mb.staticNumSet(numSet)
	visit := func(i int) {
		if keep != nil && !keep(mb.entries[i]) {
			return
		}
		if seq := mb.session.EncodeSeqNum(uint32(i + 1)); seq != 0 { // 0: not announced to the client yet
			f(seq, mb.at(i))
		}
	}
	switch set := numSet.(type) {
	case imap.UIDSet:
		for _, r := range uidIndexRanges(mb.entries, set) {
			for i := r[0]; i < r[1]; i++ {
				visit(i)
			}
		}
	case imap.SeqSet:
		// A client's sequence number is never below the entry's index + 1
		// (pending expunges only raise it): entries past the largest number
		// asked for cannot match.
		var maxSeq uint32
		for _, r := range set {
			maxSeq = max(maxSeq, r.Start, r.Stop)
		}
		for i := range min(len(mb.entries), int(maxSeq)) {
			if keep != nil && !keep(mb.entries[i]) {
				continue
			}
			if seq := mb.session.EncodeSeqNum(uint32(i + 1)); seq != 0 && seqSetHas(set, seq) {
				f(seq, mb.at(i))
			}
		}
	}
}

// seqSetHas reports whether seq is in set, whose ranges are static (no
// "*") but may be in any order and overlap, as a client may send them:
// imap.SeqSet.Contains searches them as if they were sorted.
func seqSetHas(set imap.SeqSet, seq uint32) bool {
	for _, r := range set {
		if r.Start <= seq && seq <= r.Stop {
			return true
		}
	}
	return false
}

// atOrAbove is the index of the first of entries (in UID order) whose UID
// is uid or above, len(entries) when there is none.
func atOrAbove(entries []*store.MailboxEntry, uid uint32) int {
	return sort.Search(len(entries), func(k int) bool { return entries[k].UID >= uid })
}

// uidIndexRanges returns the index ranges [from, to) of the entries (in UID
// order) whose UIDs are in set (no "*"), in order and without overlaps.
func uidIndexRanges(entries []*store.MailboxEntry, set imap.UIDSet) [][2]int {
	var out [][2]int
	for _, r := range set {
		// Above Stop, not at or above Stop+1: a client may name 4294967295.
		lo := atOrAbove(entries, uint32(r.Start))
		hi := sort.Search(len(entries), func(k int) bool { return entries[k].UID > uint32(r.Stop) })
		if lo < hi {
			out = append(out, [2]int{lo, hi})
		}
	}
	slices.SortFunc(out, func(a, b [2]int) int { return a[0] - b[0] })
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && r[0] <= merged[n-1][1] {
			merged[n-1][1] = max(merged[n-1][1], r[1])
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// staticNumSet resolves "*" and "$" (RFC 9051 6.4.4, RFC 5182) against the
// current entries.
func (mb *selectedMailbox) staticNumSet(numSet imap.NumSet) imap.NumSet {
	if imap.IsSearchRes(numSet) {
		return mb.searchRes
	}
	switch set := numSet.(type) {
	case imap.SeqSet:
		set = slices.Clone(set)
		maxSeq := uint32(len(mb.entries))
		for i := range set {
			staticRange(&set[i].Start, &set[i].Stop, maxSeq)
		}
		return set
	case imap.UIDSet:
		set = slices.Clone(set)
		var maxUID uint32
		if n := len(mb.entries); n > 0 {
			maxUID = mb.entries[n-1].UID
		}
		for i := range set {
			start, stop := uint32(set[i].Start), uint32(set[i].Stop)
			staticRange(&start, &stop, maxUID)
			set[i].Start, set[i].Stop = imap.UID(start), imap.UID(stop)
		}
		return set
	}
	return numSet
}

// staticRange replaces "*" (0) by the largest number in use; "n:*" with n
// above it is the same as "*:n" (RFC 9051 6.4.4).
func staticRange(start, stop *uint32, maxNum uint32) {
	if *start == 0 {
		*start = maxNum
	}
	if *stop == 0 {
		*stop = maxNum
	}
	if *start > *stop {
		*start, *stop = *stop, *start
	}
}
