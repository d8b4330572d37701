package imapgw

import (
	"maps"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/supportgate/supportgate/store"
)

// folderSummary is what SELECT and STATUS need of a snapshot besides its
// length and UIDNEXT: the flags its entries show (SELECT's FLAGS, RFC 9051
// 7.3.5), how many lack \Seen or have \Deleted (STATUS UNSEEN and DELETED)
// and the first without \Seen (RFC 3501 6.3.1, OK [UNSEEN n]).
//
// SELECT and STATUS used to walk the entries for these, 0.01 s at a million
// and again for every session and every STATUS (issue 18). A snapshot now
// computes its summary once, and a snapshot made from another whose summary
// was known derives its own from it and the entries that changed
// (views.current), so that a SELECT or STATUS of a folder already pictured
// costs what changed since, not the size of the folder (DESIGN.md §13).
type folderSummary struct {
	unseen, deleted int
	// firstUnseen is the UID of the first entry without \Seen; 0: none.
	firstUnseen uint32
	// flags counts the entries showing each flag, by its lower case;
	// order is every flag counted once, as first seen, in the order seen.
	flags map[string]int
	order []string
}

// summary returns the snapshot's summary, computed from its entries the
// first time it is asked when it was not derived. Safe for concurrent use:
// two sessions computing it at once store the same.
func (s *snapshot) summary() *folderSummary {
	if sum := s.sum.Load(); sum != nil {
		return sum
	}
	sum := summarize(s.entries)
	s.sum.CompareAndSwap(nil, sum)
	return s.sum.Load()
}

// summarize computes the summary of entries (in UID order).
func summarize(entries []*store.MailboxEntry) *folderSummary {
	sum := &folderSummary{flags: map[string]int{}}
	for _, e := range entries {
		sum.add(e, +1)
		if !e.Seen && sum.firstUnseen == 0 {
			sum.firstUnseen = e.UID
		}
	}
	return sum
}

// add counts e in the summary (by +1) or takes it out (by -1); firstUnseen
// is left to the caller.
func (sum *folderSummary) add(e *store.MailboxEntry, by int) {
	if !e.Seen {
		sum.unseen += by
	}
	for i, f := range e.Flags {
		k := strings.ToLower(f)
		if slices.ContainsFunc(e.Flags[:i], func(g string) bool { return strings.EqualFold(g, f) }) {
			continue // an entry counts once for a flag
		}
		if _, ok := sum.flags[k]; !ok {
			sum.order = append(sum.order, f)
		}
		sum.flags[k] += by
		if k == `\deleted` {
			sum.deleted += by
		}
	}
}

// derive is the summary of now, the entries of a snapshot made from one
// whose summary is sum: those at gone of the old entries left (they were
// replaced) and came are entries now has that the old ones did not (their
// replacements and new entries). It costs the entries that changed, and a
// walk from the old first unseen entry only when that one left or was seen.
func (sum *folderSummary) derive(old []*store.MailboxEntry, gone []int, came []*store.MailboxEntry, now []*store.MailboxEntry) *folderSummary {
	out := &folderSummary{unseen: sum.unseen, deleted: sum.deleted, flags: maps.Clone(sum.flags), order: slices.Clone(sum.order)}
	for _, i := range gone {
		out.add(old[i], -1)
	}
	for _, e := range came {
		out.add(e, +1)
	}
	if out.unseen == 0 {
		return out
	}
	// The old first unseen entry, if it is still there without \Seen;
	// otherwise the first unseen one after it. Every entry before it was
	// seen and, unless it came now, still is.
	if fu := sum.firstUnseen; fu != 0 {
		for i := atOrAbove(now, fu); i < len(now); i++ {
			if !now[i].Seen {
				out.firstUnseen = now[i].UID
				break
			}
		}
	}
	for _, e := range came {
		if !e.Seen && (out.firstUnseen == 0 || e.UID < out.firstUnseen) {
			out.firstUnseen = e.UID
		}
	}
	return out
}

// shown returns the flags the entries show, each once, as first seen.
func (sum *folderSummary) shown() []imap.Flag {
	out := make([]imap.Flag, 0, len(sum.order))
	for _, f := range sum.order {
		if sum.flags[strings.ToLower(f)] > 0 {
			out = append(out, imap.Flag(f))
		}
	}
	return out
}

// firstUnseenSeq is the sequence number of the first entry without \Seen
// among entries (the snapshot's), 0 when there is none.
func (sum *folderSummary) firstUnseenSeq(entries []*store.MailboxEntry) uint32 {
	if sum.firstUnseen == 0 {
		return 0
	}
	return uint32(atOrAbove(entries, sum.firstUnseen) + 1)
}
