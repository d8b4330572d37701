// Package threading decides which conversation a mail belongs to
// (DESIGN.md §4). It does no I/O of its own: headers and tokens come in, a
// decision comes out, and the Message-ID index is reached through the small
// Index interface that the store satisfies.
//
// Implemented so far: rule 1 (signed reply token in the recipient's plus
// part), rule 2 (In-Reply-To and References, newest first, against the index,
// and signed outbound Message-IDs even without the index), and rule 5 (a new
// conversation). Rules 3 and 4 and the reopen/auto-reply rules are the next
// step.
package threading

import (
	"context"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Rule names the rule that threaded a mail.
type Rule string

// The rules of DESIGN.md §4, in the order they are tried.
const (
	RuleReplyToken Rule = "reply-token"
	RuleReferences Rule = "references"
	RuleNew        Rule = "new"
)

// Index finds a conversation by any Message-ID it has seen.
type Index interface {
	ConversationByMessageID(ctx context.Context, ids []string) (conversation int64, found bool, err error)
}

// Input is what threading needs to know of a mail.
type Input struct {
	Recipients []string // envelope recipients (RCPT TO), addresses of our inboxes
	InReplyTo  []string // Message-IDs of In-Reply-To, without angle brackets
	References []string // Message-IDs of References, oldest first, without angle brackets
}

// Decision is where a mail goes: an existing conversation, or a new one when
// Conversation is 0.
type Decision struct {
	Conversation int64
	Rule         Rule
}

// Decide applies the threading rules in order.
func Decide(ctx context.Context, keys Keys, idx Index, in Input) (Decision, error) {
	// Rule 1: a valid token in a recipient's plus part. A wrong MAC is ignored.
	for _, rcpt := range in.Recipients {
		if _, tag := SplitPlus(rcpt); tag != "" {
			if conv, ok := keys.ParseReplyToken(tag); ok {
				return Decision{Conversation: conv, Rule: RuleReplyToken}, nil
			}
		}
	}
	// Rule 2: Message-IDs, newest first. The newest signed id decides without
	// the index, unless an id newer than it is in the index: the index is
	// asked only about the ids before the first signed one (all of them when
	// none is signed), so that the newest known id wins whichever kind it is.
	refs := ReferencedIDs(in.InReplyTo, in.References)
	newer, signedConv := refs, int64(0)
	for i, id := range refs {
		if conv, _, ok := keys.ParseMessageID(id); ok {
			newer, signedConv = refs[:i], conv
			break
		}
	}
	if len(newer) > 0 {
		conv, found, err := idx.ConversationByMessageID(ctx, newer)
		if err != nil {
			return Decision{}, err
		}
		if found {
			return Decision{Conversation: conv, Rule: RuleReferences}, nil
		}
	}
	if signedConv != 0 {
		return Decision{Conversation: signedConv, Rule: RuleReferences}, nil
	}
	return Decision{Rule: RuleNew}, nil
}

// ReferencedIDs returns the Message-IDs a mail refers to, newest first and
// without repeats: In-Reply-To, then References from the last to the first
// (RFC 5322 3.6.4: References lists the parent's ancestors oldest first).
func ReferencedIDs(inReplyTo, references []string) []string {
	out := make([]string, 0, len(inReplyTo)+len(references))
	add := func(id string) {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	for _, id := range inReplyTo {
		add(id)
	}
	for i := len(references) - 1; i >= 0; i-- {
		add(references[i])
	}
	return out
}

// maxMessageIDs bounds how many Message-IDs are taken from one header, so that
// a hostile References header cannot make a mail cost thousands of lookups.
const maxMessageIDs = 100

// ParseMessageIDs returns the msg-ids of an In-Reply-To, References or
// Message-ID header value (RFC 5322 3.6.4), without angle brackets. It is
// lenient as real mail requires: comments and folding are skipped, and a
// value with no angle brackets at all is taken as whitespace-separated ids.
// Of very long lists only the last maxMessageIDs are kept (the newest).
func ParseMessageIDs(value string) []string {
	var ids []string
	rest := value
	for {
		start := strings.IndexByte(rest, '<')
		if start < 0 {
			break
		}
		end := strings.IndexByte(rest[start:], '>')
		if end < 0 {
			break
		}
		if id := cleanID(rest[start+1 : start+end]); id != "" {
			ids = append(ids, id)
		}
		rest = rest[start+end+1:]
	}
	if ids == nil && !strings.ContainsAny(value, "<>") {
		for _, f := range strings.Fields(value) {
			if id := cleanID(f); strings.Contains(id, "@") {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) > maxMessageIDs {
		ids = ids[len(ids)-maxMessageIDs:]
	}
	return ids
}

// ParseMessageID returns the first msg-id of a Message-ID header, or "".
func ParseMessageID(value string) string {
	ids := ParseMessageIDs(value)
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// cleanID removes folding whitespace inside an id and refuses ids that could
// not be written back into a header safely.
func cleanID(s string) string {
	s = strings.Join(strings.Fields(s), "")
	// Invalid UTF-8 (raw Latin-1 bytes, say) is refused too: it cannot be
	// written back into an RFC 6532 header, nor stored as text.
	if len(s) > 250 || !utf8.ValidString(s) {
		return ""
	}
	for _, r := range s {
		// unicode.IsControl adds the C1 controls (U+0080 to U+009F, such as
		// U+009B, a terminal's CSI) to the ASCII ones.
		if r < 0x21 || r == 0x7f || r == '<' || r == '>' || unicode.IsControl(r) {
			return ""
		}
	}
	return s
}

// SplitPlus splits an address into its base address and plus tag:
// "support+abc@example.test" is ("support@example.test", "abc"). The result
// is lower-cased; an address without '@' is returned as is with no tag.
func SplitPlus(addr string) (base, tag string) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr, ""
	}
	local, domain := addr[:at], addr[at:]
	if i := strings.IndexByte(local, '+'); i >= 0 {
		return local[:i] + domain, local[i+1:]
	}
	return addr, ""
}
