package threading

import "strings"

// Header gives a message's header fields by name; go-message's
// textproto.Header satisfies it.
type Header interface {
	Get(key string) string
}

// autoReplyRules say when a header field marks a message as automatic
// (DESIGN.md §4): such mail is threaded and stored, but never reopens a
// conversation, never adds participants and never triggers an answer.
// A rule with no values matches any non-empty value.
var autoReplyRules = []struct {
	field  string
	values []string // lower case; a match when the field's first token is one of them
	not    []string // a match when the first token is anything but these
}{
	{field: "Auto-Submitted", not: []string{"no"}},                  // RFC 3834 5
	{field: "Precedence", values: []string{"bulk", "junk", "list"}}, // RFC 3834 3.1.8, common practice
	{field: "X-Autoreply"},                                          // vacation programs
	{field: "X-Autorespond"},
	{field: "X-Auto-Response-Suppress"}, // Exchange; per DESIGN.md §4
}

// IsAutoReply reports whether a message is automatic: by its header, or
// because its envelope sender is null (RFC 5321 4.5.5: bounces and other
// notifications).
func IsAutoReply(h Header, mailFrom string) bool {
	if strings.TrimSpace(mailFrom) == "" || mailFrom == "<>" {
		return true
	}
	for _, r := range autoReplyRules {
		v := strings.ToLower(strings.TrimSpace(h.Get(r.field)))
		if v == "" {
			continue
		}
		token := ""
		if f := strings.FieldsFunc(v, func(c rune) bool { return c == ';' || c == ' ' || c == '\t' }); len(f) > 0 {
			token = f[0]
		}
		switch {
		case r.values == nil && r.not == nil:
			return true
		case r.not != nil && !contains(r.not, token):
			return true
		case contains(r.values, token):
			return true
		}
	}
	return false
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
