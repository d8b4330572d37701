package imapgw

import (
	"sort"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/supportgate/supportgate/store"
)

// QRESYNC (RFC 7162 3.2), on top of CONDSTORE: a client that had a folder
// before learns at SELECT what left it and which flags changed since,
// instead of fetching the flags of every message again.
//
// The store does not keep when an entry left a view (a view is a query
// over conversations, DESIGN.md §13, not a list of messages with
// tombstones), so VANISHED (EARLIER) names every UID the client asked about
// that is not in the folder now, whatever the mod-sequence: RFC 7162 5.1
// calls such a server compliant, and a client ignores the UIDs it did not
// have. Flag changes are exact: each entry has its mod-sequence.

// ResyncSelected implements imapserver.SessionQResync: after SELECT
// (QRESYNC (uidvalidity modseq [known-uids])) with the folder's UIDVALIDITY,
// VANISHED (EARLIER) for the known UIDs no longer there, then what
// UID FETCH known-uids (FLAGS) (CHANGEDSINCE modseq) returns (RFC 7162
// 3.2.5.1). The sequence match data only helps a server that keeps
// tombstones; it is not needed here.
func (m *session) ResyncSelected(w *imapserver.FetchWriter, q *imap.SelectQResync) error {
	mbox, err := m.selected()
	if err != nil {
		return err
	}
	known := q.KnownUIDs
	if len(known) == 0 {
		known = imap.UIDSet{{Start: 1, Stop: 0}} // 1:*, RFC 7162 3.2.5
	}
	if err := w.WriteVanishedEarlier(vanished(mbox.entries, known, mbox.uidNext)); err != nil {
		return err
	}
	return m.Fetch(w, known, &imap.FetchOptions{UID: true, Flags: true, ModSeq: true, ChangedSince: q.ModSeq})
}

// HighestModSeq implements imapserver.SessionHighestModSeq, for the tagged
// OK of an EXPUNGE (RFC 7162 3.2.7): the selected folder's HIGHESTMODSEQ
// as the session last read it.
func (m *session) HighestModSeq() uint64 {
	if m.mbox == nil {
		return 0
	}
	return max(m.mbox.highestModSeq, 1)
}

// vanished returns the UIDs of set below uidNext that are not among
// entries (in UID order), as ranges: the VANISHED (EARLIER) of set. A
// range's 0 is "*", the largest UID given so far (uidNext-1).
func vanished(entries []*store.MailboxEntry, set imap.UIDSet, uidNext uint32) imap.UIDSet {
	if uidNext <= 1 {
		return nil
	}
	last := uidNext - 1
	var out imap.UIDSet
	add := func(lo, hi uint32) {
		if n := len(out); n > 0 && uint32(out[n-1].Stop)+1 >= lo {
			out[n-1].Stop = imap.UID(max(uint32(out[n-1].Stop), hi))
			return
		}
		out = append(out, imap.UIDRange{Start: imap.UID(lo), Stop: imap.UID(hi)})
	}
	ranges := make([][2]uint32, 0, len(set))
	for _, r := range set {
		lo, hi := uint32(r.Start), uint32(r.Stop)
		if lo == 0 {
			lo = last
		}
		if hi == 0 {
			hi = last
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if lo > last {
			continue
		}
		ranges = append(ranges, [2]uint32{lo, min(hi, last)})
	}
	sort.Slice(ranges, func(i, j int) bool { return ranges[i][0] < ranges[j][0] })
	var covered uint32 // the UIDs up to it were looked at
	for _, r := range ranges {
		lo, hi := max(r[0], covered+1), r[1]
		if lo > hi {
			continue
		}
		covered = hi
		// The gaps between the entries of [lo, hi].
		i := atOrAbove(entries, lo)
		next := lo
		for ; i < len(entries) && entries[i].UID <= hi; i++ {
			if u := entries[i].UID; u > next {
				add(next, u-1)
			}
			next = entries[i].UID + 1
		}
		if next <= hi {
			add(next, hi)
		}
	}
	return out
}
