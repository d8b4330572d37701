package threading

import (
	"mime"
	"regexp"
	"strconv"
	"strings"

	"github.com/emersion/go-message/charset"
)

// wordDecoder decodes RFC 2047 encoded words in any charset go-message knows.
var wordDecoder = mime.WordDecoder{CharsetReader: charset.Reader}

// replyPrefix matches one reply or forward prefix as mail clients write
// them in many languages: Re, Aw (German), Sv (Nordic), Fwd/Fw, WG
// (German forward), Tr (French forward), Antw (Dutch), Rv/Vs, Odp
// (Polish), Res (Portuguese), Ref; numbered as Re[2]:, Re(2): or Re^2:;
// with ASCII or full-width colons.
var replyPrefix = regexp.MustCompile(`(?i)^(re|aw|sv|fwd|fw|wg|tr|antw|antwort|rv|vs|odp|res|ref|réf|rif|enc)\s*(\[\d+\]|\(\d+\)|\^\d+)?\s*[:：]`)

// bracketPrefix matches a leading bracketed tag: a mailing list's
// "[list-name]", a helpdesk's "[#123]" or "[Ticket #123]".
var bracketPrefix = regexp.MustCompile(`^\[[^\]]{0,64}\]`)

// subjectTag matches supportgate's subject tag, "[#<conversation>]".
var subjectTag = regexp.MustCompile(`\[#(\d{1,18})\]`)

// DecodeSubject decodes RFC 2047 encoded words; what cannot be decoded is
// kept as it is.
func DecodeSubject(s string) string {
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// NormalizeSubject reduces a subject to what stays the same across a
// thread, for comparisons (DESIGN.md §4 rule 4): encoded words decoded,
// reply/forward prefixes and bracketed tags stripped however stacked, our
// own "[#id]" tag removed wherever it is, case folded, whitespace collapsed.
func NormalizeSubject(s string) string {
	s = subjectTag.ReplaceAllString(DecodeSubject(s), " ")
	s = strings.Join(strings.Fields(s), " ")
	for {
		before := s
		if loc := replyPrefix.FindStringIndex(s); loc != nil {
			s = s[loc[1]:]
		} else if loc := bracketPrefix.FindStringIndex(s); loc != nil && loc[1] < len(s) {
			s = s[loc[1]:] // a subject that is only a tag stays
		}
		s = strings.TrimSpace(s)
		if s == before {
			break
		}
	}
	return strings.ToLower(s)
}

// SubjectTag returns the conversation named by the first "[#<id>]" in a
// subject (DESIGN.md §4 rule 3), and false if there is none.
func SubjectTag(subject string) (int64, bool) {
	m := subjectTag.FindStringSubmatch(DecodeSubject(subject))
	if m == nil {
		return 0, false
	}
	id, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || id <= 0 {
		return 0, false
	}
	return id, true
}

// Tag returns the subject tag of a conversation, "[#<id>]".
func Tag(conversation int64) string {
	return "[#" + strconv.FormatInt(conversation, 10) + "]"
}
