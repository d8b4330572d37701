package imapgw

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/searchtext"
	"github.com/supportgate/supportgate/store/sqlite"
)

// indexCorpus: encoded words in several charsets, quoted and escaped names,
// groups, transfer encodings, nested multiparts and a part that is not text.
var indexCorpus = []string{
	"From: \"M\u00fcller, J\u00f6rg\" <joerg@kunde.de>\r\nTo: support@example.com\r\n" +
		"Subject: =?UTF-8?Q?Rechnung_f=C3=BCr_M=C3=A4rz?=\r\n\r\nHallo Welt, die Bestellung 4711 fehlt.\r\n",
	"From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.org>\r\nTo: support@example.com\r\nCc: boss@example.net, \"A \\\"quoted\\\" one\" <q@example.net>\r\n" +
		"Subject: Invoice overdue\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"UGF5bWVudCByZWZlcmVuY2UgWFlaLTk5\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Payment</p>\r\n--b--\r\n",
	"From: nobody@x.test\r\nTo: team: a@example.com, b@example.com;\r\nSubject: =?utf-8?B?0J/RgNC40LLQtdGCINC80LjRgA==?=\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"caf=C3=A9 cr=C3=A8me =E6=97=A5=E6=9C=AC=E8=AA=9E\r\n",
	"From: files@example.com\r\nTo: support@example.com\r\nSubject: Attachment\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: multipart/related; boundary=n\r\n\r\n--n\r\n" +
		"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nna=EFve see attached\r\n--n--\r\n--m\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nc2VjcmV0d29yZA==\r\n--m--\r\n",
	"From: Plain Sender <plain@example.com>\r\nSubject: no body type\r\n\r\nJust some TEXT with UPPER and lower.\r\n",
	// A signed message: TEXT reads its other fields, not its signature's.
	"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=sel;\r\n b=Q7zKwv9XsigPart+Aa==; bh=Hq3bodyHash=\r\n" +
		"From: signed@example.org\r\nX-Mailer: Quillpen 7\r\nSubject: signed\r\n\r\nSigned text.\r\n",
}

// indexStrings are what the needles are cut from: text the corpus holds,
// decoded or as written, and some it does not.
var indexStrings = []string{
	"M\u00fcller, J\u00f6rg <joerg@kunde.de>", "Rechnung f\u00fcr M\u00e4rz", "=?UTF-8?Q?Rechnung", "Payment reference XYZ-99",
	"caf\u00e9 cr\u00e8me \u65e5\u672c\u8a9e", "Invoice overdue", "Andr\u00e9 <andre@example.org>", "A \"quoted\" one <q@",
	"team: a@example.com", "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440", "na\u00efve see", "secretword",
	"X-Supportgate-Kind: inbound", "X-Supportgate-Conversation: 3", "Plain Sender <plain@", "some TEXT with UPPER",
	"text/plain; charset=utf-8", "nothing like this", "Quillpen 7", "Q7zKwv9XsigPart",
}

// TestSearchIndexNeverLosesAMatch: for every key the index narrows and
// needles cut from the corpus (both cases), every message the IMAP
// evaluation matches is among the index's candidates, so SEARCH's results
// are those of the evaluation alone (RFC 9051 6.4.4).
func TestSearchIndexNeverLosesAMatch(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var entries []store.MailboxEntry
	served := map[int64][]byte{}
	for i, raw := range indexCorpus {
		res, err := st.AddInbound(ctx, store.Inbound{Inbox: "support@example.com", Owner: "c@example.com", Subject: "s",
			Sender: "c@example.com", MessageIDHeader: fmt.Sprintf("ix%d@x", i), Raw: []byte(raw), Received: time.Unix(1e9, 0)})
		if err != nil {
			t.Fatal(err)
		}
		e := store.MailboxEntry{Message: res.Message, Conversation: res.Conversation, Kind: store.KindInbound, Size: int64(len(raw))}
		// The fields added when served vary, in runs as in a folder
		// (narrowing.holds remembers the last value).
		switch i % 4 {
		case 1:
			e.Kind, e.ReplyTo = store.KindReply, "Help Team <help-desk@example.com>"
		case 2:
			e.Kind, e.HiddenBCC = store.KindSide, []string{"boss@example.org"}
		case 3:
			e.SenderRole = store.SenderParticipant
		}
		entries = append(entries, e)
		served[e.Message] = joinServed(servedHeader(e), servedBody(e, []byte(raw)))
	}
	var needles []string
	for _, s := range append(slices.Clone(indexStrings), "Help Team", "help-desk@", "boss@example", "reply", "participant") {
		for _, v := range []string{s, strings.ToUpper(s)} {
			r := []rune(v)
			for n := 3; n <= 6; n++ {
				for i := 0; i+n <= len(r); i++ {
					needles = append(needles, string(r[i:i+n]))
				}
			}
			needles = append(needles, v)
		}
	}
	keys := []struct {
		name  string
		crit  func(string) *imap.SearchCriteria
		index func(string) searchtext.Key
	}{
		{"SUBJECT", func(s string) *imap.SearchCriteria {
			return &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: s}}}
		}, func(s string) searchtext.Key { return searchtext.Key{Field: searchtext.Subject, Value: s} }},
		{"FROM", func(s string) *imap.SearchCriteria {
			return &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: s}}}
		}, func(s string) searchtext.Key { return searchtext.Key{Field: searchtext.From, Value: s} }},
		{"TO", func(s string) *imap.SearchCriteria {
			return &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "To", Value: s}}}
		}, func(s string) searchtext.Key { return searchtext.Key{Field: searchtext.To, Value: s} }},
		{"CC", func(s string) *imap.SearchCriteria {
			return &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Cc", Value: s}}}
		}, func(s string) searchtext.Key { return searchtext.Key{Field: searchtext.Cc, Value: s} }},
		{"BODY", func(s string) *imap.SearchCriteria { return &imap.SearchCriteria{Body: []string{s}} },
			func(s string) searchtext.Key { return searchtext.Key{Field: searchtext.Body, Value: s} }},
		{"TEXT", func(s string) *imap.SearchCriteria { return &imap.SearchCriteria{Text: []string{s}} },
			func(s string) searchtext.Key { return searchtext.Key{Text: true, Value: s} }},
	}
	matched, narrowed := 0, 0
	for _, k := range keys {
		for _, s := range needles {
			ids, found, err := st.SearchCandidates(ctx, []searchtext.Key{k.index(s)})
			if err != nil {
				t.Fatal(err)
			}
			if !found {
				continue
			}
			var text []string
			if k.name == "TEXT" {
				text = []string{strings.ToLower(s)}
			}
			n := newNarrowing(ids, text)
			for i := range entries {
				e := &entries[i]
				if !matchContent(served[e.Message], k.crit(s)) {
					if !n.allows(e) {
						narrowed++
					}
					continue
				}
				matched++
				if !n.allows(e) {
					t.Errorf("%s %q matches message %d, which the index does not allow", k.name, s, i)
				}
			}
		}
	}
	if matched == 0 || narrowed == 0 {
		t.Fatalf("nothing checked: %d matches, %d messages narrowed away", matched, narrowed)
	}
	t.Logf("%d matches kept, %d non-matches narrowed away", matched, narrowed)
}

// TestTextSkipsSignatures: SEARCH TEXT reads a message's header fields but
// not its signatures' (searchtext.Searched), in the evaluation as in the
// index, so that what it finds does not depend on whether a message was
// indexed.
func TestTextSkipsSignatures(t *testing.T) {
	raw := []byte(indexCorpus[len(indexCorpus)-1])
	for needle, want := range map[string]bool{"quillpen 7": true, "signed text": true, "q7zkwv9xsigpart": false, "hq3bodyhash": false} {
		if got := matchContent(raw, &imap.SearchCriteria{Text: []string{needle}}); got != want {
			t.Errorf("TEXT %q matched %v, want %v", needle, got, want)
		}
		q, _ := searchtext.Build([]searchtext.Key{{Text: true, Value: needle}})
		tokens, _ := searchtext.Doc(raw)
		have := map[string]bool{}
		for _, tok := range tokens {
			have[tok] = true
		}
		indexed := false
		for _, alt := range q[0] {
			all := true
			for _, tok := range alt {
				all = all && have[tok]
			}
			indexed = indexed || all
		}
		if indexed != want {
			t.Errorf("TEXT %q: the index holds it %v, want %v", needle, indexed, want)
		}
	}
}

// TestIDSet checks both forms of the candidates set against a map.
func TestIDSet(t *testing.T) {
	for _, ids := range [][]int64{nil, {0}, {1, 63, 64, 65, 1000}, {5, maxBitsetID + 7}, {-3, 9}} {
		set := newIDSet(ids)
		want := map[int64]bool{}
		for _, id := range ids {
			want[id] = true
		}
		for _, id := range []int64{-3, -1, 0, 1, 2, 5, 9, 62, 63, 64, 65, 66, 999, 1000, 1001, maxBitsetID + 7, 1 << 40} {
			if set.has(id) != want[id] {
				t.Errorf("set of %v: has(%d) = %v", ids, id, set.has(id))
			}
		}
	}
}
