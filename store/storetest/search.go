package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/searchtext"
)

// The SEARCH index (issue 18, DESIGN.md §13 "A million messages"): it
// narrows SUBJECT, FROM, TO, CC, BODY and TEXT to candidates, and never
// loses a message that matches (RFC 9051 6.4.4: case-insensitive
// substrings of the decoded header fields, addresses and text parts).
func searchCases() []testCase {
	return []testCase{
		{"SearchCandidates", testSearchCandidates},
	}
}

// searchCorpus are messages with encoded words, non-ASCII text, quoted
// names, transfer encodings and a part that is not text.
var searchCorpus = []string{
	"From: \"M\u00fcller, J\u00f6rg\" <joerg@kunde.de>\r\nTo: support@example.com\r\n" +
		"Subject: =?UTF-8?Q?Rechnung_f=C3=BCr_M=C3=A4rz?=\r\nMessage-ID: <s1@x>\r\n\r\n" +
		"Hallo Welt, die Bestellung 4711 fehlt.\r\n",
	"From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.org>\r\nTo: support@example.com\r\nCc: boss@example.net\r\n" +
		"Subject: Invoice overdue\r\nMessage-ID: <s2@x>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"UGF5bWVudCByZWZlcmVuY2UgWFlaLTk5\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Payment</p>\r\n--b--\r\n",
	"From: nobody@x.test\r\nTo: help@example.com\r\nSubject: Hello\r\nMessage-ID: <s3@x>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"caf=C3=A9 cr=C3=A8me\r\n",
	"From: files@example.com\r\nTo: support@example.com\r\nSubject: Attachment\r\nMessage-ID: <s4@x>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--m\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nc2VjcmV0d29yZA==\r\n--m--\r\n",
}

func testSearchCandidates(t *testing.T, s store.Store) {
	ctx := t.Context()
	ids := make([]int64, len(searchCorpus))
	for i, raw := range searchCorpus {
		in := newInbound(inboxA, fmt.Sprintf("s%d@x", i+1), i+1)
		in.Raw = []byte(raw)
		ids[i] = mustInbound(t, s, in).Message
	}
	key := func(f searchtext.Field, v string) searchtext.Key { return searchtext.Key{Field: f, Value: v} }
	text := func(v string) searchtext.Key { return searchtext.Key{Text: true, Value: v} }
	tests := []struct {
		keys []searchtext.Key
		want []int // corpus indexes that match
	}{
		{[]searchtext.Key{key(searchtext.Subject, "M\u00c4RZ")}, []int{0}},
		{[]searchtext.Key{key(searchtext.Subject, "invoice")}, []int{1}},
		{[]searchtext.Key{key(searchtext.From, "J\u00f6rg")}, []int{0}},
		{[]searchtext.Key{key(searchtext.From, "j\u00f6rg <joerg@")}, []int{0}}, // name <address>
		{[]searchtext.Key{key(searchtext.From, "andr\u00e9")}, []int{1}},
		{[]searchtext.Key{key(searchtext.From, "nobody@x")}, []int{2}},
		{[]searchtext.Key{key(searchtext.To, "support@")}, []int{0, 1, 3}},
		{[]searchtext.Key{key(searchtext.Cc, "boss@")}, []int{1}},
		{[]searchtext.Key{key(searchtext.Body, "bestellung 4711")}, []int{0}},
		{[]searchtext.Key{key(searchtext.Body, "xyz-99")}, []int{1}},
		{[]searchtext.Key{key(searchtext.Body, "CR\u00c8ME")}, []int{2}},
		{[]searchtext.Key{key(searchtext.Body, "secretword")}, nil}, // not a text part
		{[]searchtext.Key{text("andre@example")}, []int{1}},
		{[]searchtext.Key{text("payment")}, []int{1}},
		{[]searchtext.Key{text("hello")}, []int{2}},
		{[]searchtext.Key{key(searchtext.From, "nobody"), key(searchtext.Body, "caf\u00e9")}, []int{2}},
		{[]searchtext.Key{key(searchtext.From, "nobody"), key(searchtext.Body, "bestellung")}, nil},
	}
	for _, tc := range tests {
		got, found, err := s.SearchCandidates(ctx, tc.keys)
		if err != nil || !found {
			t.Fatalf("SearchCandidates(%+v): %v %v", tc.keys, found, err)
		}
		var want []int64
		for _, i := range tc.want {
			want = append(want, ids[i])
		}
		slices.Sort(got)
		// Every match is a candidate; on this corpus, nothing else is.
		if !slices.Equal(got, want) {
			t.Errorf("SearchCandidates(%+v) = %v, want %v", tc.keys, got, want)
		}
	}
	if _, found, err := s.SearchCandidates(ctx, []searchtext.Key{key(searchtext.Subject, "in")}); err != nil || found {
		t.Errorf("a string shorter than a trigram narrowed: %v %v", found, err)
	}
}
