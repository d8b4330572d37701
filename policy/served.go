package policy

import (
	"bytes"
	"strings"
)

// IsClientKeyword reports whether an IMAP keyword is one that mail clients
// set by themselves for their own bookkeeping (DESIGN.md §6): junk
// classification (Thunderbird's Junk and NonJunk, RFC 5788's $Junk,
// $NotJunk and $Phishing), $Forwarded, $MDNSent (RFC 5788, RFC 3503) and
// the submission marks $SubmitPending and $Submitted (RFC 5550). They are
// kept per agent, like \Seen: never a conversation tag, never an action.
// Keywords are case-insensitive (RFC 9051 2.3.2).
func IsClientKeyword(k string) bool {
	switch strings.ToLower(k) {
	case "junk", "nonjunk", "$junk", "$notjunk", "$phishing", "$forwarded", "$mdnsent", "$submitpending", "$submitted":
		return true
	}
	return false
}

// WithoutField returns msg without the header fields called name (any
// case, with their folded continuation lines), and how many bytes they
// took. The body, and a message without a header/body separator past the
// header, are left as they are. msg itself is never changed.
//
// The IMAP copy of an agent's message carries a Reply-To of its own
// (DESIGN.md §6) instead of the stored one; this is the cut, computed once
// when the message is stored (for the served size) and again when it is
// served, from the same bytes.
func WithoutField(msg []byte, name string) ([]byte, int) {
	var out []byte
	cut, i := 0, 0
	dropping := false
	for i < len(msg) {
		end := bytes.IndexByte(msg[i:], '\n')
		if end < 0 {
			end = len(msg)
		} else {
			end += i + 1
		}
		line := msg[i:end]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break // the end of the header
		}
		if line[0] != ' ' && line[0] != '\t' { // RFC 5322 2.2.3: a new field
			colon := bytes.IndexByte(line, ':')
			dropping = colon > 0 && strings.EqualFold(strings.TrimRight(string(line[:colon]), " \t"), name)
		}
		if dropping {
			if out == nil {
				out = append(make([]byte, 0, len(msg)), msg[:i]...)
			}
			cut += len(line)
		} else if out != nil {
			out = append(out, line...)
		}
		i = end
	}
	if out == nil {
		return msg, 0
	}
	return append(out, msg[i:]...), cut
}
