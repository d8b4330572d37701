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
type narrowing struct {
	ids  map[int64]struct{}
	text []string // TEXT values, lower case: also searched in servedHeader
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
	n := &narrowing{ids: make(map[int64]struct{}, len(ids)), text: text}
	for _, id := range ids {
		n.ids[id] = struct{}{}
	}
	return n, nil
}

// allows reports whether e may match: a private message (bytes of its own,
// not indexed) always may.
func (n *narrowing) allows(e *store.MailboxEntry) bool {
	if n == nil || e.Message == 0 {
		return true
	}
	if _, ok := n.ids[e.Message]; ok {
		return true
	}
	if len(n.text) == 0 {
		return false
	}
	// TEXT also reads the values of the fields added when served
	// (servedHeader), which the index of the stored bytes does not hold:
	// every value it may add is tried, without building the header.
	for _, s := range n.text {
		for _, v := range [...]string{string(e.Kind), string(e.SenderRole), e.ReplyTo} {
			if valueHolds(v, s) {
				return true
			}
		}
		// A substring of a decimal number is digits: the number is
		// written out only for such a string.
		if digits(s) && strings.Contains(strconv.FormatInt(e.Conversation, 10), s) {
			return true
		}
		if len(e.HiddenBCC) > 0 && valueHolds(strings.Join(e.HiddenBCC, ", "), s) {
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
