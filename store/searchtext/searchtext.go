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

	gomessage "github.com/emersion/go-message"

	"github.com/supportgate/supportgate/internal/mailaddr"
	"github.com/supportgate/supportgate/policy"
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

// maxQueryTrigrams bounds the trigrams of one key asked of the index: any
// of a string's trigrams narrow soundly, and a few rare ones narrow well.
const maxQueryTrigrams = 12

// bodyLimit is what the IMAP evaluation reads of a part (imapgw).
const bodyLimit = 16 << 20

// Doc returns the distinct tokens of a message's stored bytes, or ok false
// when it has more than MaxTokens.
func Doc(raw []byte) (tokens []string, ok bool) {
	set := map[string]struct{}{}
	addLower := func(f Field, lower string) {
		trigrams(f, lower, func(t string) { set[t] = struct{}{} })
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
	// the text leaves, to a bounded depth (policy.WalkParts).
	policy.WalkParts(ent, func(part *gomessage.Entity) bool {
		fields := part.Header.Fields()
		for fields.Next() {
			add(Header, fieldText(fields))
		}
		if t, _, _ := part.Header.ContentType(); t != "" && !strings.HasPrefix(t, "text/") {
			return true
		}
		b, _ := io.ReadAll(io.LimitReader(part.Body, bodyLimit))
		addLower(Body, string(bytes.ToLower(b))) // as imapgw's bodyContains
		return len(set) <= MaxTokens
	})
	if len(set) > MaxTokens {
		return nil, false
	}
	tokens = make([]string, 0, len(set))
	for t := range set {
		tokens = append(tokens, t)
	}
	return tokens, true
}

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
			clause = append(clause, spread(dedupe(ts), maxQueryTrigrams))
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

// spread keeps at most n of ts, spread across the string.
func spread(ts []string, n int) []string {
	if len(ts) <= n {
		return ts
	}
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, ts[i*(len(ts)-1)/(n-1)])
	}
	return out
}

// trigrams calls f with the token of every three consecutive runes of s
// (lower case, as valid UTF-8: strings.ToLower and bytes.ToLower give it, so
// that a substring starts and ends on rune boundaries). A token is the
// field's letter and the three runes packed in base 36: ASCII letters and
// digits, one token to both engines' tokenizers.
func trigrams(field Field, s string, f func(string)) {
	var r [3]uint64
	n := 0
	for _, c := range s {
		r[0], r[1], r[2] = r[1], r[2], uint64(c)
		if n++; n < 3 {
			continue
		}
		v := r[0]<<42 | r[1]<<21 | r[2]
		f(string(field) + strconv.FormatUint(v, 36))
	}
}
