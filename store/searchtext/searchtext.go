// Package searchtext is the search index's view of a message (DESIGN.md §13,
// "A million messages"): the trigrams of what IMAP SEARCH SUBJECT, FROM, TO,
// CC, BODY and TEXT compare (RFC 9051 6.4.4: case-insensitive substrings),
// as tokens both engines index (SQLite FTS4, PostgreSQL tsvector/GIN).
//
// The index narrows; it never decides. A message that holds a string holds
// every trigram of it in the same field, so the messages whose index holds
// a query's trigrams are a superset of those that match, and the IMAP side
// confirms each by its own evaluation. Strings shorter than a trigram are
// not narrowed.
package searchtext

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	gomessage "github.com/emersion/go-message"

	"github.com/supportgate/supportgate/internal/mailaddr"
	"github.com/supportgate/supportgate/internal/mimeparts"
)

// Field is what a key compares.
type Field byte

// The indexed fields; each token starts with its field's letter.
const (
	Subject Field = 's'
	From    Field = 'f'
	To      Field = 't'
	Cc      Field = 'c'
	Header  Field = 'h' // every header field of every part (TEXT)
	Body    Field = 'b' // the text parts (BODY, TEXT)
)

// MaxTokens bounds one message's tokens (a PostgreSQL tsvector holds 1 MB);
// a message with more is left unindexed, and always a candidate.
const MaxTokens = 40000

// MaxQueryTrigrams bounds the trigrams of one key an engine asks its index
// (Spread): any of a string's trigrams narrow soundly, and a few rare ones
// narrow well, where every frequent one costs a long posting list.
const MaxQueryTrigrams = 12

// bodyLimit is what the IMAP evaluation reads of a part (imapgw).
const bodyLimit = 16 << 20

// Doc returns the distinct tokens of a message's stored bytes, or ok false
// when it has more than MaxTokens.
func Doc(raw []byte) (tokens []string, ok bool) {
	// A set of packed runes per field: a uint64 key hashes fastest.
	sets := map[Field]map[uint64]struct{}{}
	size := 0
	addLower := func(f Field, lower string) {
		set := sets[f]
		if set == nil {
			set = make(map[uint64]struct{}, 64)
			sets[f] = set
		}
		each(f, lower, func(t trigram) {
			if _, ok := set[t.runes]; !ok {
				set[t.runes] = struct{}{}
				size++
			}
		})
	}
	add := func(f Field, s string) { addLower(f, strings.ToLower(s)) }
	ent, _ := gomessage.Read(bytes.NewReader(raw))
	if ent == nil {
		return nil, true
	}
	for _, f := range []Field{Subject, From, To, Cc} {
		key := map[Field]string{Subject: "Subject", From: "From", To: "To", Cc: "Cc"}[f]
		fields := ent.Header.FieldsByKey(key)
		for fields.Next() {
			add(f, fieldText(fields))
			if f != Subject {
				for _, form := range mailaddr.Forms(fields.Value()) {
					add(f, form)
				}
			}
		}
	}
	// What bodyContains in imapgw reads: every part's header fields, and
	// the text leaves, to a bounded depth (mimeparts.Walk).
	mimeparts.Walk(ent, func(part *gomessage.Entity) bool {
		fields := part.Header.Fields()
		for fields.Next() {
			if Searched(fields.Key()) {
				add(Header, fieldText(fields))
			}
		}
		if t, _, _ := part.Header.ContentType(); t != "" && !strings.HasPrefix(t, "text/") {
			return true
		}
		b, _ := io.ReadAll(io.LimitReader(part.Body, bodyLimit))
		addLower(Body, string(bytes.ToLower(b))) // as imapgw's bodyContains
		return size <= MaxTokens
	})
	if size > MaxTokens {
		return nil, false
	}
	tokens = make([]string, 0, size)
	buf := make([]byte, 0, 16*size)
	for f, set := range sets {
		for v := range set {
			start := len(buf)
			buf = trigram{f, v}.append(buf)
			tokens = append(tokens, string(buf[start:]))
		}
	}
	return tokens, true
}

// signatureFields are header fields whose values are signatures, not text a
// person searches for: base64 of a hash encrypted with a key (RFC 6376 3.5
// b= and bh=, RFC 8617 4.1). Each holds hundreds of random trigrams, most of
// a signed reply's tokens, and made every reply's indexing cost several
// times its text's (issue 18). TEXT does not search them, in the index or
// in the evaluation (imapgw), as Dovecot's FTS leaves such fields out with
// fts_header_excludes.
var signatureFields = map[string]bool{
	"dkim-signature":          true,
	"x-google-dkim-signature": true,
	"arc-seal":                true,
	"arc-message-signature":   true,
}

// Searched reports whether SEARCH TEXT reads the header field named key.
func Searched(key string) bool { return !signatureFields[strings.ToLower(key)] }

// fieldText is a field as imapgw's fieldContains reads it.
func fieldText(f gomessage.HeaderFields) string {
	v, err := f.Text()
	if err != nil {
		v = f.Value()
	}
	return v
}

// Key is one SEARCH key the index can narrow: the messages whose Field
// holds Value (TEXT is Header or Body).
type Key struct {
	Text  bool // TEXT: the header or the body
	Field Field
	Value string
}

// Query is what an engine asks its index: every clause holds; a clause
// holds when all the tokens of any one of its alternatives are indexed for
// the message.
type Query [][][]string

// Build returns the query of keys, and false when none narrows (every
// value is shorter than a trigram).
func Build(keys []Key) (Query, bool) {
	var q Query
	for _, k := range keys {
		fields := []Field{k.Field}
		if k.Text {
			fields = []Field{Header, Body}
		}
		var clause [][]string
		for _, f := range fields {
			var ts []string
			trigrams(f, strings.ToLower(k.Value), func(t string) { ts = append(ts, t) })
			if len(ts) == 0 {
				clause = nil
				break
			}
			clause = append(clause, dedupe(ts))
		}
		if clause != nil {
			q = append(q, clause)
		}
	}
	return q, len(q) > 0
}

// Narrows reports whether the index narrows a search for s.
func Narrows(s string) bool {
	n := 0
	for range strings.ToLower(s) {
		if n++; n >= 3 {
			return true
		}
	}
	return false
}

func dedupe(ts []string) []string {
	seen := map[string]bool{}
	out := ts[:0]
	for _, t := range ts {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// Spread keeps at most n of ts, spread across the string.
func Spread(ts []string, n int) []string {
	if len(ts) <= n {
		return ts
	}
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, ts[i*(len(ts)-1)/(n-1)])
	}
	return out
}

// trigram is three consecutive runes of a field, packed.
type trigram struct {
	field Field
	runes uint64 // 21 bits a rune
}

// append writes the token of t: the field's letter and the three runes in
// base 36, ASCII letters and digits, one word to both engines' tokenizers.
func (t trigram) append(b []byte) []byte {
	return strconv.AppendUint(append(b, byte(t.field)), t.runes, 36)
}

// each calls f with every three consecutive runes of s (lower case, as
// valid UTF-8: strings.ToLower and bytes.ToLower give it, so that a
// substring starts and ends on rune boundaries).
func each(field Field, s string, f func(trigram)) {
	var v uint64
	n := 0
	for i := 0; i < len(s); {
		c := rune(s[i])
		if c < utf8.RuneSelf {
			i++
		} else {
			var size int
			c, size = utf8.DecodeRuneInString(s[i:])
			i += size
		}
		v = (v<<21 | uint64(c)) & (1<<63 - 1)
		if n++; n >= 3 {
			f(trigram{field, v})
		}
	}
}

// trigrams calls f with the token of every trigram of s.
func trigrams(field Field, s string, f func(string)) {
	var buf []byte
	each(field, s, func(t trigram) {
		buf = t.append(buf[:0])
		f(string(buf))
	})
}
