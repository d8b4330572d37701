package imapgw

import (
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/searchtext"
)

// narrowing is what the store's SEARCH index allows (DESIGN.md §13, "A
// million messages"): the messages that may match the header and text keys
// every match must satisfy. It only skips messages; each it lets through is
// evaluated as before (searchCandidate.matches), so results do not change
// (RFC 9051 6.4.4).
//
// allows is asked of every entry of the folder, so it is made cheap: the
// candidates are a bitset, and what each value of the fields added when
// served may hold is decided once per value. At 921,000 entries asking a
// map and lower-casing those values for each entry was most of a SEARCH:
// 0.05 s for FROM and 0.13 s for TEXT (issue 18).
type narrowing struct {
	ids  idSet
	text []string // TEXT values, lower case: also searched in servedHeader
	// digits: a TEXT value is all digits, which the conversation's number
	// may hold.
	digits bool
	// served remembers, by value, whether a field added when served may
	// hold a TEXT value; last is the value asked last and its answer, for
	// the runs of entries of one kind, role or Reply-To.
	served    map[string]bool
	last      [3]string
	lastHolds [3]bool
}

// newNarrowing returns the narrowing to the candidates ids, and the TEXT
// values text (lower case).
func newNarrowing(ids []int64, text []string) *narrowing {
	n := &narrowing{ids: newIDSet(ids), text: text, served: map[string]bool{}}
	for _, s := range text {
		// A substring of a decimal number is digits: the number is
		// written out only for such a string.
		n.digits = n.digits || digits(s)
	}
	return n
}

// idSet is a set of message ids: a bitset when the largest is small enough
// (message ids are dense), else a map.
type idSet struct {
	bits []uint64
	m    map[int64]struct{}
}

// maxBitsetID bounds the bitset: 2^27 ids are 16 MiB of bits.
const maxBitsetID = 1 << 27

func newIDSet(ids []int64) idSet {
	var top, bottom int64
	for _, id := range ids {
		top, bottom = max(top, id), min(bottom, id)
	}
	if top < maxBitsetID && bottom >= 0 {
		bits := make([]uint64, top/64+1)
		for _, id := range ids {
			bits[id/64] |= 1 << (id % 64)
		}
		return idSet{bits: bits}
	}
	m := make(map[int64]struct{}, len(ids))
	for _, id := range ids {
		m[id] = struct{}{}
	}
	return idSet{m: m}
}

func (s idSet) has(id int64) bool {
	if s.m != nil {
		_, ok := s.m[id]
		return ok
	}
	return id >= 0 && id/64 < int64(len(s.bits)) && s.bits[id/64]&(1<<(id%64)) != 0
}

// indexedFields are the header keys the index covers.
var indexedFields = map[string]searchtext.Field{
	"subject": searchtext.Subject, "from": searchtext.From, "to": searchtext.To, "cc": searchtext.Cc,
}

// narrow asks the index about cr's top-level keys (those every match holds:
// not under NOT or OR); nil means every message is a candidate.
func (m *session) narrow(cr *imap.SearchCriteria) (*narrowing, error) {
	var keys []searchtext.Key
	var text []string
	for _, hf := range cr.Header {
		if f, ok := indexedFields[strings.ToLower(hf.Key)]; ok && searchtext.Narrows(hf.Value) {
			keys = append(keys, searchtext.Key{Field: f, Value: hf.Value})
		}
	}
	for _, s := range cr.Body {
		if searchtext.Narrows(s) {
			keys = append(keys, searchtext.Key{Field: searchtext.Body, Value: s})
		}
	}
	for _, s := range cr.Text {
		if searchtext.Narrows(s) {
			keys = append(keys, searchtext.Key{Text: true, Value: s})
			text = append(text, strings.ToLower(s))
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	ids, found, err := m.srv.opts.Store.SearchCandidates(m.ctx, keys)
	if err != nil || !found {
		return nil, err
	}
	return newNarrowing(ids, text), nil
}

// allows reports whether e may match: a private message (bytes of its own,
// not indexed) always may.
func (n *narrowing) allows(e *store.MailboxEntry) bool {
	if n == nil || e.Message == 0 || n.ids.has(e.Message) {
		return true
	}
	if len(n.text) == 0 {
		return false
	}
	// TEXT also reads the values of the fields added when served
	// (servedHeader), which the index of the stored bytes does not hold:
	// every value it may add is tried, without building the header.
	if n.holds(0, string(e.Kind)) || n.holds(1, string(e.SenderRole)) || e.ReplyTo != "" && n.holds(2, e.ReplyTo) {
		return true
	}
	if n.digits {
		number := strconv.FormatInt(e.Conversation, 10)
		for _, s := range n.text {
			if digits(s) && strings.Contains(number, s) {
				return true
			}
		}
	}
	return len(e.HiddenBCC) > 0 && n.holdsText(strings.Join(e.HiddenBCC, ", "))
}

// holds reports whether the value v of served field i may hold a TEXT
// value, decided once per value.
func (n *narrowing) holds(i int, v string) bool {
	if n.last[i] == v && v != "" {
		return n.lastHolds[i]
	}
	h, ok := n.served[v]
	if !ok {
		h = n.holdsText(v)
		n.served[v] = h
	}
	n.last[i], n.lastHolds[i] = v, h
	return h
}

// holdsText reports whether v may hold one of the TEXT values.
func (n *narrowing) holdsText(v string) bool {
	for _, s := range n.text {
		if valueHolds(v, s) {
			return true
		}
	}
	return false
}

// valueHolds reports whether a header value may hold s (lower case) as
// fieldContains reads it: an encoded word is read decoded, so it may.
func valueHolds(v, s string) bool {
	return strings.Contains(v, "=?") || strings.Contains(strings.ToLower(v), s)
}

func digits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
