// Package mailaddr parses RFC 5322 address fields the way IMAP serves and
// searches them (RFC 3501 7.4.2 ENVELOPE, RFC 9051 6.4.4 SEARCH FROM/TO/CC):
// shared by gateway/imapgw and the search index (store/searchtext), so that
// the index finds every message the IMAP evaluation would.
package mailaddr

import (
	"mime"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/mail"
)

// EnvelopeAddresses parses an address field for ENVELOPE (RFC 3501 7.4.2,
// RFC 5322 3.4): mailboxes, and groups between their markers. A mailbox
// that cannot be parsed, or has no domain, is left out.
func EnvelopeAddresses(v string) []imap.Address {
	v = strings.NewReplacer("\r\n", "", "\n", "").Replace(v) // unfolded
	var out []imap.Address
	for _, it := range splitAddresses(v) {
		if it.group {
			out = append(out, imap.Address{Mailbox: decodePhrase(it.name)})
		}
		for _, m := range it.members {
			if a, ok := parseMailbox(m); ok {
				out = append(out, a)
			}
		}
		if it.group {
			out = append(out, imap.Address{})
		}
	}
	return out
}

// addressItem is a mailbox (members holds it alone) or a group.
type addressItem struct {
	group   bool
	name    string
	members []string
}

// splitAddresses splits an address list at its top-level commas, and groups
// ("name: a, b;") into their members, minding quoted strings, comments and
// angle brackets (a source route has a colon).
func splitAddresses(v string) []addressItem {
	var items []addressItem
	var cur strings.Builder
	var group *addressItem
	quoted, escaped, angle, comment := false, false, false, 0
	flush := func() {
		s := strings.TrimSpace(cur.String())
		cur.Reset()
		if s == "" {
			return
		}
		if group != nil {
			group.members = append(group.members, s)
		} else {
			items = append(items, addressItem{members: []string{s}})
		}
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case escaped:
			escaped = false
		case (quoted || comment > 0) && c == '\\':
			escaped = true
		case quoted:
			quoted = c != '"'
		case comment > 0:
			switch c {
			case '(':
				comment++
			case ')':
				comment--
			}
		case c == '"':
			quoted = true
		case c == '(':
			comment++
		case angle:
			angle = c != '>'
		case c == '<':
			angle = true
		case c == ',':
			flush()
			continue
		case c == ':' && group == nil:
			group = &addressItem{group: true, name: cur.String()}
			cur.Reset()
			continue
		case c == ';' && group != nil:
			flush()
			items = append(items, *group)
			group = nil
			continue
		}
		cur.WriteByte(c)
	}
	flush()
	if group != nil { // a group without its ';'
		items = append(items, *group)
	}
	return items
}

// parseMailbox parses one mailbox, with an obsolete source route
// ("<@route:user@domain>", RFC 5322 4.4) kept as the address's adl.
func parseMailbox(s string) (imap.Address, bool) {
	var adl string
	if i := strings.Index(s, "<@"); i >= 0 {
		if j := strings.IndexByte(s[i:], ':'); j > 0 {
			adl = s[i+1 : i+j]
			s = s[:i+1] + s[i+j+1:]
		}
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		// Comments and spaces inside the address ("<user (c)@ (c) host>",
		// RFC 5322 CFWS), which the parser refuses.
		if a, err = mail.ParseAddress(withoutCFWS(s)); err != nil {
			return imap.Address{}, false
		}
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at <= 0 || at == len(a.Address)-1 {
		return imap.Address{}, false // no domain: ENVELOPE would read it as a group marker
	}
	return imap.Address{Name: a.Name, Mailbox: a.Address[:at], Host: a.Address[at+1:], Adl: adl}, true
}

// withoutCFWS removes the comments of a mailbox, outside quoted strings,
// and the spaces inside its angle brackets.
func withoutCFWS(s string) string {
	var b strings.Builder
	quoted, escaped, angle, comment := false, false, false, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case (quoted || comment > 0) && c == '\\':
			escaped = true
		case quoted:
			quoted = c != '"'
		case comment > 0:
			switch c {
			case '(':
				comment++
			case ')':
				comment--
			}
			continue
		case c == '"':
			quoted = true
		case c == '(':
			comment++
			continue
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case angle && (c == ' ' || c == '\t'):
			continue
		}
		if comment == 0 {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Contain reports whether an address field holds s (lower case) as RFC
// 9051 6.4.4 means for FROM, TO, CC and BCC, a substring of the field's
// envelope structure: of a display name, of an address (local@domain,
// without the comments and spaces it may be written with), or of
// "name <address>".
func Contain(v, s string) bool {
	for _, t := range Forms(v) {
		if strings.Contains(strings.ToLower(t), s) {
			return true
		}
	}
	return false
}

// Forms are the strings of an address field that Contain searches.
func Forms(v string) []string {
	var out []string
	for _, a := range EnvelopeAddresses(v) {
		addr := a.Mailbox
		if a.Host != "" {
			addr += "@" + a.Host
		}
		out = append(out, a.Name, addr, a.Name+" <"+addr+">")
	}
	return out
}

// decodePhrase is a group's display name: unquoted and RFC 2047-decoded.
func decodePhrase(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = strings.ReplaceAll(s[1:len(s)-1], `\`, "")
	}
	if d, err := (&mime.WordDecoder{}).DecodeHeader(s); err == nil {
		s = d
	}
	return s
}
