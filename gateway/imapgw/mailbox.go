package imapgw

import (
	"slices"

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
	entries     []store.MailboxEntry
	uidNext     uint32

	tracker   *imapserver.MailboxTracker
	session   *imapserver.SessionTracker
	searchRes imap.UIDSet // RFC 5182 SEARCHRES "$"
}

func newSelectedMailbox(f folder, uidValidity uint32, readOnly bool, entries []store.MailboxEntry, uidNext uint32) *selectedMailbox {
	t := imapserver.NewMailboxTracker(uint32(len(entries)))
	return &selectedMailbox{
		folder: f, uidValidity: uidValidity, readOnly: readOnly,
		entries: entries, uidNext: uidNext, tracker: t, session: t.NewSession(),
	}
}

func (mb *selectedMailbox) close() { mb.session.Close() }

// update replaces the entries with the store's current ones and queues what
// changed: entries that left (expunges, last first so that earlier sequence
// numbers stay right), flag changes (except of quiet UIDs, which the
// command that changed them reports itself) and new entries (UIDs only
// ascend).
func (mb *selectedMailbox) update(now []store.MailboxEntry, quiet map[uint32]bool) {
	current := make(map[uint32]*store.MailboxEntry, len(now))
	for i := range now {
		current[now[i].UID] = &now[i]
	}
	for i := len(mb.entries) - 1; i >= 0; i-- {
		e := &mb.entries[i]
		n, ok := current[e.UID]
		if !ok {
			mb.entries = slices.Delete(mb.entries, i, i+1)
			mb.tracker.QueueExpunge(uint32(i + 1))
			continue
		}
		if n.Seen != e.Seen || !slices.Equal(n.Flags, e.Flags) {
			e.Seen, e.Flags = n.Seen, n.Flags
			if !quiet[e.UID] {
				mb.tracker.QueueMessageFlags(uint32(i+1), imap.UID(e.UID), entryFlags(e), nil)
			}
		}
	}
	var last uint32
	if n := len(mb.entries); n > 0 {
		last = mb.entries[n-1].UID
	}
	added := false
	for _, e := range now {
		if e.UID > last {
			mb.entries = append(mb.entries, e)
			added = true
		}
	}
	if added {
		mb.tracker.QueueNumMessages(uint32(len(mb.entries)))
	}
	if n := len(mb.entries); n > 0 && mb.entries[n-1].UID >= mb.uidNext {
		mb.uidNext = mb.entries[n-1].UID + 1
	}
}

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

// forEach calls f for every entry of numSet that the client knows, with its
// sequence number as the client sees it.
func (mb *selectedMailbox) forEach(numSet imap.NumSet, f func(seq uint32, e *store.MailboxEntry)) {
	numSet = mb.staticNumSet(numSet)
	for i := range mb.entries {
		seq := mb.session.EncodeSeqNum(uint32(i + 1))
		if seq == 0 {
			continue // not announced to the client yet
		}
		var ok bool
		switch set := numSet.(type) {
		case imap.SeqSet:
			ok = set.Contains(seq)
		case imap.UIDSet:
			ok = set.Contains(imap.UID(mb.entries[i].UID))
		}
		if ok {
			f(seq, &mb.entries[i])
		}
	}
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
