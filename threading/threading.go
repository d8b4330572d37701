// Package threading decides which conversation a mail belongs to
// (DESIGN.md §4), and what the mail may do to it. It does no I/O of its
// own: headers and tokens come in, a decision comes out, and the store is
// reached through the small Index interface declared here, which store.Store
// satisfies. The types it decides about come from package domain, so
// threading imports no store and links no engine.
//
// The rules, in order: (1) a signed reply token in a recipient's plus part;
// (2) the Message-IDs of In-Reply-To and References, newest first, against
// the index of every Message-ID a conversation has seen, and signed outbound
// Message-IDs even when the index lost them; (3) the "[#id]" subject tag, only
// from the conversation's owner or a participant; (4) continuity, per inbox
// and off by default; (5) a new conversation. A token, signed Message-ID or
// tag naming a conversation that does not exist is ignored, never an error.
package threading

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/supportgate/supportgate/domain"
)

// Rule names the rule that threaded a mail.
type Rule string

// The rules of DESIGN.md §4, in the order they are tried.
const (
	RuleReplyToken Rule = "reply-token"
	RuleReferences Rule = "references"
	RuleSubjectTag Rule = "subject-tag"
	RuleContinuity Rule = "continuity"
	RuleNew        Rule = "new"
)

// Index is what threading reads of the store.
type Index interface {
	// ConversationByMessageID returns the conversation of the first of ids
	// found in the Message-ID index.
	ConversationByMessageID(ctx context.Context, ids []string) (conversation int64, found bool, err error)
	// Conversation returns a conversation, or an error wrapping domain.ErrNotFound.
	Conversation(ctx context.Context, id int64) (domain.Conversation, error)
	// ContinuityCandidate returns the newest open conversation of an owner
	// in an inbox with that normalized subject, updated at or after since.
	ContinuityCandidate(ctx context.Context, inbox, owner, normSubject string, since time.Time) (conversation int64, found bool, err error)
}

// Input is what threading needs to know of a mail.
type Input struct {
	Recipients []string // envelope recipients (RCPT TO), addresses of our inboxes
	InReplyTo  []string // Message-IDs of In-Reply-To, without angle brackets
	References []string // Message-IDs of References, oldest first, without angle brackets

	Inbox   string // the inbox the mail arrived for
	Sender  string // the From address, lower case
	Subject string // the Subject header as it came (encoded words allowed)
	Now     time.Time
	// ContinuityWindow is the inbox's continuity_window; 0 turns rule 4 off.
	ContinuityWindow time.Duration
	// Agent: the mail comes from an authenticated agent (submission), whom a
	// subject tag is enough for.
	Agent bool
}

// Decision is where a mail goes: an existing conversation (Conv), or a new
// one when Conv.ID is 0.
type Decision struct {
	Conv domain.Conversation
	Rule Rule
	// Side is the side conversation a side token among the recipients
	// names (DESIGN.md §14), 0 for none.
	Side int
	// Merged: the token names a conversation merged into Conv since, whose
	// side conversations were numbered anew there.
	Merged bool
}

// Decide applies the threading rules in order.
func Decide(ctx context.Context, keys Keys, idx Index, in Input) (Decision, error) {
	// found loads a candidate; a conversation that does not exist is no match.
	found := func(id int64, rule Rule) (Decision, bool, error) {
		c, err := idx.Conversation(ctx, id)
		if errors.Is(err, domain.ErrNotFound) {
			return Decision{}, false, nil
		}
		if err != nil {
			return Decision{}, false, err
		}
		return Decision{Conv: c, Rule: rule}, true, nil
	}

	// Rule 1: a valid token in a recipient's plus part, of the inbox that
	// address belongs to. A wrong MAC is ignored.
	for _, rcpt := range in.Recipients {
		base, tag := SplitPlus(rcpt)
		conv, ok := keys.ParseReplyToken(tag)
		side := 0
		if !ok {
			conv, side, ok = keys.ParseSideToken(tag)
		}
		if tag == "" || !ok {
			continue
		}
		d, ok, err := found(conv, RuleReplyToken)
		if err != nil {
			return Decision{}, err
		}
		if ok && strings.EqualFold(d.Conv.Inbox, base) {
			d.Side, d.Merged = side, d.Conv.ID != conv
			return d, nil
		}
	}

	// Rule 2: Message-IDs, newest first. The newest signed id decides without
	// the index, unless an id newer than it is in the index: the index is
	// asked only about the ids before the first signed one (all of them when
	// none is signed), so that the newest known id wins whichever kind it is.
	refs := ReferencedIDs(in.InReplyTo, in.References)
	newer, signed := refs, []int64(nil)
	for i, id := range refs {
		if conv, _, ok := keys.ParseMessageID(id); ok {
			if signed == nil {
				newer = refs[:i]
			}
			signed = append(signed, conv)
		}
	}
	if len(newer) > 0 {
		conv, ok, err := idx.ConversationByMessageID(ctx, newer)
		if err != nil {
			return Decision{}, err
		}
		if ok {
			if d, ok, err := found(conv, RuleReferences); err != nil || ok {
				return d, err
			}
		}
	}
	for _, conv := range signed {
		if d, ok, err := found(conv, RuleReferences); err != nil || ok {
			return d, err
		}
	}
	if len(signed) > 0 && len(newer) < len(refs) {
		// Signed ids of conversations this store does not have (a restored
		// backup): the older plain ids may still be known.
		conv, ok, err := idx.ConversationByMessageID(ctx, refs[len(newer):])
		if err != nil {
			return Decision{}, err
		}
		if ok {
			if d, ok, err := found(conv, RuleReferences); err != nil || ok {
				return d, err
			}
		}
	}

	// Rule 3: "[#id]" only from the owner or a participant; anyone else
	// copying a tag into a subject starts a new conversation.
	if conv, ok := SubjectTag(in.Subject); ok && in.Sender != "" {
		d, ok, err := found(conv, RuleSubjectTag)
		if err != nil {
			return Decision{}, err
		}
		if ok && (in.Agent || strings.EqualFold(d.Conv.Owner, in.Sender) || containsFold(d.Conv.Participants, in.Sender)) {
			return d, nil
		}
	}

	// Rule 4: continuity, when the inbox turns it on.
	if norm := NormalizeSubject(in.Subject); in.ContinuityWindow > 0 && norm != "" && in.Sender != "" {
		conv, ok, err := idx.ContinuityCandidate(ctx, in.Inbox, in.Sender, norm, in.Now.Add(-in.ContinuityWindow))
		if err != nil {
			return Decision{}, err
		}
		if ok {
			if d, ok, err := found(conv, RuleContinuity); err != nil || ok {
				return d, err
			}
		}
	}

	// Rule 5.
	return Decision{Rule: RuleNew}, nil
}

func containsFold(l []string, s string) bool {
	return slices.ContainsFunc(l, func(x string) bool { return strings.EqualFold(x, s) })
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
