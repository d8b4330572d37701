package imapgw

import (
	"bytes"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/supportgate/supportgate/policy"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/searchtext"
)

// Search implements SEARCH and UID SEARCH (RFC 9051 6.4.4): the SEARCH
// index narrows the candidates (searchindex.go); the evaluation here
// decides.
func (m *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (_ *imap.SearchData, err error) {
	mbox, err := m.selected()
	if err != nil {
		return nil, err
	}
	withModSeq := usesModSeq(criteria)
	if withModSeq { // RFC 7162 3.1.5
		announce := m.enableCondStore()
		defer func() {
			if err == nil {
				err = announce()
			}
		}()
	}
	if err := m.refresh(nil); err != nil {
		return nil, err
	}
	mbox.staticCriteria(criteria)
	narrowed, err := m.narrow(criteria)
	if err != nil {
		return nil, m.internal("searching failed", err)
	}
	var data imap.SearchData
	var seqs imap.SeqSet
	var uids imap.UIDSet
	var searchErr error
	// RFC 7162 3.1.5 and RFC 4731 3.2: the highest mod-sequence of the
	// messages found, or of those MIN and MAX return.
	var allModSeq, minModSeq, maxModSeq uint64
	var keep func(*store.MailboxEntry) bool
	if narrowed != nil {
		keep = narrowed.allows
	}
	mbox.forEachWhere(imap.SeqSet{{Start: 1, Stop: 0}}, keep, func(seq uint32, e *store.MailboxEntry) {
		if searchErr != nil {
			return
		}
		c := searchCandidate{seq: seq, entry: *e, recent: mbox.recent.has(e.UID), load: func() ([]byte, error) { return m.served(*e) }}
		ok, err := c.matches(criteria)
		if err != nil {
			searchErr = err
			return
		}
		if !ok {
			return
		}
		uids.AddNum(imap.UID(e.UID))
		seqs.AddNum(seq)
		num := seq
		if kind == imapserver.NumKindUID {
			num = e.UID
		}
		ms := modSeq(e)
		allModSeq = max(allModSeq, ms)
		if data.Min == 0 || num < data.Min {
			data.Min, minModSeq = num, ms
		}
		if num > data.Max {
			data.Max, maxModSeq = num, ms
		}
		data.Count++
	})
	if searchErr != nil {
		return nil, m.internal("searching failed", searchErr)
	}
	if withModSeq {
		data.ModSeq = allModSeq
		if !options.ReturnAll && !options.ReturnCount && (options.ReturnMin || options.ReturnMax) {
			data.ModSeq = 0
			if options.ReturnMin {
				data.ModSeq = minModSeq
			}
			if options.ReturnMax {
				data.ModSeq = max(data.ModSeq, maxModSeq)
			}
		}
	}
	if kind == imapserver.NumKindUID {
		data.All = uids
	} else {
		data.All = seqs
	}
	if options.ReturnSave {
		mbox.searchRes = uids
	}
	return &data, nil
}

// usesModSeq reports whether a search has the MODSEQ key anywhere.
func usesModSeq(c *imap.SearchCriteria) bool {
	if c.ModSeq != nil {
		return true
	}
	for i := range c.Not {
		if usesModSeq(&c.Not[i]) {
			return true
		}
	}
	for i := range c.Or {
		if usesModSeq(&c.Or[i][0]) || usesModSeq(&c.Or[i][1]) {
			return true
		}
	}
	return false
}

// staticCriteria resolves "*" and "$" in the sets of a search.
func (mb *selectedMailbox) staticCriteria(c *imap.SearchCriteria) {
	var seqs []imap.SeqSet
	for _, s := range c.SeqNum {
		switch set := mb.staticNumSet(s).(type) {
		case imap.SeqSet:
			seqs = append(seqs, set)
		case imap.UIDSet: // "$" is a UID set
			c.UID = append(c.UID, set)
		}
	}
	c.SeqNum = seqs
	for i := range c.UID {
		c.UID[i] = mb.staticNumSet(c.UID[i]).(imap.UIDSet)
	}
	for i := range c.Not {
		mb.staticCriteria(&c.Not[i])
	}
	for i := range c.Or {
		mb.staticCriteria(&c.Or[i][0])
		mb.staticCriteria(&c.Or[i][1])
	}
}

// searchCandidate is one message under test; its bytes are read only when a
// criterion needs them, and once.
type searchCandidate struct {
	seq    uint32
	entry  store.MailboxEntry
	recent bool // \Recent in this session: SEARCH RECENT, NEW, OLD
	load   func() ([]byte, error)
	buf    []byte
}

func (c *searchCandidate) bytes() ([]byte, error) {
	if c.buf == nil {
		b, err := c.load()
		if err != nil {
			return nil, err
		}
		c.buf = b
	}
	return c.buf, nil
}

// matches implements RFC 9051 6.4.4: every criterion must hold.
func (c *searchCandidate) matches(cr *imap.SearchCriteria) (bool, error) {
	e := c.entry
	for _, set := range cr.SeqNum {
		if !set.Contains(c.seq) {
			return false, nil
		}
	}
	for _, set := range cr.UID {
		if !set.Contains(imap.UID(e.UID)) {
			return false, nil
		}
	}
	if !inDateRange(e.Received, cr.Since, cr.Before) {
		return false, nil
	}
	for _, f := range cr.Flag {
		if !c.hasFlag(f) {
			return false, nil
		}
	}
	for _, f := range cr.NotFlag {
		if c.hasFlag(f) {
			return false, nil
		}
	}
	size := servedSize(e)
	if cr.Larger != 0 && size <= cr.Larger || cr.Smaller != 0 && size >= cr.Smaller {
		return false, nil
	}
	// RFC 7162 3.1.5: a mod-sequence at least this; one per message here,
	// whatever the flag an entry name asks about.
	if cr.ModSeq != nil && modSeq(&e) < cr.ModSeq.ModSeq {
		return false, nil
	}
	if len(cr.Header) > 0 || !cr.SentSince.IsZero() || !cr.SentBefore.IsZero() || len(cr.Body) > 0 || len(cr.Text) > 0 {
		buf, err := c.bytes()
		if err != nil {
			return false, err
		}
		if !matchContent(buf, cr) {
			return false, nil
		}
	}
	for i := range cr.Not {
		ok, err := c.matches(&cr.Not[i])
		if err != nil || ok {
			return false, err
		}
	}
	for i := range cr.Or {
		a, err := c.matches(&cr.Or[i][0])
		if err != nil {
			return false, err
		}
		if !a {
			b, err := c.matches(&cr.Or[i][1])
			if err != nil || !b {
				return false, err
			}
		}
	}
	return true, nil
}

func (c *searchCandidate) hasFlag(f imap.Flag) bool {
	if strings.EqualFold(string(f), `\Recent`) {
		return c.recent
	}
	return hasFlag(&c.entry, f)
}

func hasFlag(e *store.MailboxEntry, f imap.Flag) bool {
	if strings.EqualFold(string(f), string(imap.FlagSeen)) {
		return e.Seen
	}
	for _, g := range e.Flags {
		if strings.EqualFold(g, string(f)) {
			return true
		}
	}
	return false
}

// inDateRange compares dates only, ignoring time and zone (RFC 9051 6.4.4).
func inDateRange(t, since, before time.Time) bool {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return (since.IsZero() || !d.Before(since)) && (before.IsZero() || d.Before(before))
}

// matchContent checks the criteria that need the message: header fields,
// sent date, body and text, case-insensitively as substrings.
func matchContent(buf []byte, cr *imap.SearchCriteria) bool {
	ent, err := gomessage.Read(bytes.NewReader(buf))
	if ent == nil {
		return false
	}
	_ = err // unknown charsets and encodings still let us read what we can
	h := mail.Header{Header: ent.Header}
	for _, hf := range cr.Header {
		switch strings.ToLower(hf.Key) {
		case "from", "to", "cc", "bcc":
			// RFC 9051 6.4.4: a substring of the envelope's addresses,
			// or of the field as it reads.
			if !fieldContains(ent.Header.FieldsByKey(hf.Key), hf.Value) && !addressFieldsContain(ent.Header.FieldsByKey(hf.Key), hf.Value) {
				return false
			}
		default:
			if !fieldContains(ent.Header.FieldsByKey(hf.Key), hf.Value) {
				return false
			}
		}
	}
	if !cr.SentSince.IsZero() || !cr.SentBefore.IsZero() {
		t, err := h.Date()
		if err != nil || !inDateRange(t, cr.SentSince, cr.SentBefore) {
			return false
		}
	}
	for _, s := range cr.Body {
		if !bodyContains(buf, s, false) {
			return false
		}
	}
	for _, s := range cr.Text {
		if !bodyContains(buf, s, true) {
			return false
		}
	}
	return true
}

func fieldContains(fields gomessage.HeaderFields, s string) bool {
	return fieldsContain(fields, s, nil)
}

// fieldsContain reports whether one of fields holds s, ignoring case; only
// the fields whose keys read accepts when it is not nil (TEXT skips the
// signatures: searchtext.Searched).
func fieldsContain(fields gomessage.HeaderFields, s string, read func(key string) bool) bool {
	s = strings.ToLower(s)
	for fields.Next() {
		if read != nil && !read(fields.Key()) {
			continue
		}
		v, err := fields.Text()
		if err != nil {
			v = fields.Value()
		}
		if s == "" || strings.Contains(strings.ToLower(v), s) {
			return true
		}
	}
	return false
}

func addressFieldsContain(fields gomessage.HeaderFields, s string) bool {
	s = strings.ToLower(s)
	for fields.Next() {
		if addressesContain(fields.Value(), s) {
			return true
		}
	}
	return false
}

// bodyContains searches the decoded text parts (and, for TEXT, the header).
func bodyContains(buf []byte, s string, withHeader bool) bool {
	ent, _ := gomessage.Read(bytes.NewReader(buf))
	if ent == nil {
		return false
	}
	needle := strings.ToLower(s)
	found := false
	// DESIGN.md §8: to a bounded depth, in time linear in the size.
	policy.WalkParts(ent, func(part *gomessage.Entity) bool {
		if withHeader && fieldsContain(part.Header.Fields(), needle, searchtext.Searched) {
			found = true
			return false
		}
		// The walk reads multipart containers itself; only text leaves are searched.
		if t, _, _ := part.Header.ContentType(); t != "" && !strings.HasPrefix(t, "text/") {
			return true
		}
		b, _ := io.ReadAll(io.LimitReader(part.Body, 16<<20))
		found = bytes.Contains(bytes.ToLower(b), []byte(needle))
		return !found
	})
	return found
}
