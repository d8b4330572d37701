package imapgw

import (
	"fmt"
	"testing"
)

// TestEnvelopeAddresses: RFC 3501 7.4.2 ENVELOPE address lists, with RFC
// 5322 groups between markers (imaptest's fetch-envelope group).
func TestEnvelopeAddresses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;",
			"[{ group  } { g1 d1.org } { g2 d2.org } {   } { group2  } { g3 d3.org } {   }]"},
		{"group:;, group2: (foo) ;", "[{ group  } {   } { group2  } {   }]"},
		{`"A, B" <a@b.org>, c@d.org (Real C)`, "[{A, B a b.org } {Real C c d.org }]"},
		{"<@route:user@domain>", "[{ user domain @route}]"},
		{"<user-from (comment)@ (comment) domain.org>", "[{ user-from domain.org }]"},
		{"broken@, ok@x.org", "[{ ok x.org }]"},
		{`"=?utf-8?q?Gr=C3=BCn?=": a@b.org;`, "[{ Grün  } { a b.org } {   }]"},
	} {
		if got := fmt.Sprint(envelopeAddresses(tc.in)); got != tc.want {
			t.Errorf("envelopeAddresses(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestAddressesContain: SEARCH FROM/TO/CC/BCC match the envelope's
// addresses (RFC 9051 6.4.4), however they are written.
func TestAddressesContain(t *testing.T) {
	for _, tc := range []struct {
		field, s string
		want     bool
	}{
		{"<user-from (comment)@ (comment) domain.org>", "user-from@domain.org", true},
		{"user-from@domain.org (RealFrom)", "realfrom", true},
		{"RealFrom <user-from@domain.org>", "realfrom <user-from@", true},
		{"RealFrom <user-from@domain.org>", "other@domain.org", false},
	} {
		if got := addressesContain(tc.field, tc.s); got != tc.want {
			t.Errorf("addressesContain(%q, %q) = %v", tc.field, tc.s, got)
		}
	}
}

// TestHeaderFields: HEADER.FIELDS and HEADER.FIELDS.NOT on a header as it
// is stored (RFC 9051 6.4.5).
func TestHeaderFields(t *testing.T) {
	head := []byte("From: a@b\r\nSubject: one\r\n two\r\nX-Y: z\r\nfrom: again\r\n\r\n")
	for _, tc := range []struct {
		fields, not []string
		want        string
	}{
		{[]string{"FROM"}, nil, "From: a@b\r\nfrom: again\r\n\r\n"},
		{[]string{"subject"}, nil, "Subject: one\r\n two\r\n\r\n"},
		{nil, []string{"from", "x-y"}, "Subject: one\r\n two\r\n\r\n"},
		{[]string{"xyz"}, nil, "\r\n"},
	} {
		if got := string(headerFields(head, tc.fields, tc.not)); got != tc.want {
			t.Errorf("headerFields(%v, not %v) = %q, want %q", tc.fields, tc.not, got, tc.want)
		}
	}
	if got := string(headerFields([]byte("Subject: no blank line"), []string{"subject"}, nil)); got != "Subject: no blank line\r\n\r\n" {
		t.Errorf("a header without its blank line: %q", got)
	}
}
