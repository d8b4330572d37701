package imapgw

import (
	"slices"

	"github.com/supportgate/supportgate/store"
)

// convIndex maps each conversation to the UIDs of its entries in a view's
// newest snapshot (in UID order), so that a change of a few conversations
// finds their entries by binary search. replacedIndexes walked the whole
// folder instead: 8 ms of a 13 ms STORE in a folder of 921,000 entries
// (issue 18). A view builds it from its snapshot the first time a change
// needs it, and keeps it up to date with every snapshot made from that one
// (views.current); a full read drops it.
type convIndex struct {
	of    *snapshot // the snapshot it describes
	uids  map[int64][]uint32
	built int // how many times it was built from a snapshot's entries (for tests)
}

// indexFor returns the index of s, built from its entries unless ci
// describes it already.
func (ci *convIndex) indexFor(s *snapshot) map[int64][]uint32 {
	if ci.of != s || ci.uids == nil {
		ci.uids = map[int64][]uint32{}
		ci.add(s.entries)
		ci.of = s
		ci.built++
	}
	return ci.uids
}

// add records entries (in UID order, above every UID recorded).
func (ci *convIndex) add(entries []*store.MailboxEntry) {
	for _, e := range entries {
		ci.uids[e.Conversation] = append(ci.uids[e.Conversation], e.UID)
	}
}

// moveTo records that s was made from the snapshot ci describes by
// replacing the entries of the conversations replaced with repl and adding
// added; when ci describes another snapshot, or none, it is dropped.
func (ci *convIndex) moveTo(from, s *snapshot, replaced map[int64]bool, repl, added []*store.MailboxEntry) {
	if ci.of != from || ci.uids == nil {
		ci.drop()
		return
	}
	for c := range replaced {
		delete(ci.uids, c)
	}
	ci.add(repl)
	ci.add(added)
	ci.of = s
}

// drop forgets the index (a full read).
func (ci *convIndex) drop() { ci.of, ci.uids = nil, nil }

// replacedIndexes returns the indexes in s's entries of the entries of
// the replaced conversations, in order.
func (ci *convIndex) replacedIndexes(s *snapshot, replaced map[int64]bool) []int {
	index := ci.indexFor(s)
	var idx []int
	for c := range replaced {
		for _, uid := range index[c] {
			i := atOrAbove(s.entries, uid)
			// The entry must still be of c: what the walk of the folder
			// found, should an entry ever change conversation without
			// its old one being replaced too.
			if i < len(s.entries) && s.entries[i].UID == uid && s.entries[i].Conversation == c {
				idx = append(idx, i)
			}
		}
	}
	slices.Sort(idx)
	return idx
}
