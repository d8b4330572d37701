package config

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultAutoAcknowledgeText is inbox.auto_acknowledge_text when it is left
// out. The placeholders are replaced when the acknowledgement is written
// (policy.AutoAck): {id} by the conversation's number, {subject} by the
// customer's subject, {inbox} by the inbox's name.
const DefaultAutoAcknowledgeText = `Hello,

thank you for writing to {inbox}. We have received your message
"{subject}" and opened request #{id} for it.

A member of our team will answer you as soon as possible. To add anything,
simply reply to this message and keep #{id} in the subject.

This is an automatic acknowledgement.
`

// maxAutoAckText bounds inbox.auto_acknowledge_text, in bytes.
const maxAutoAckText = 8192

// autoAckText validates inbox.auto_acknowledge_text; nil is the default.
// The text is a message body, so line breaks and tabs are allowed (CRLF is
// taken as LF); any other control character is refused, as is an unknown
// placeholder, so that a typo does not reach customers as "{subjcet}".
func (v *validator) autoAckText(path string, value *string) string {
	if value == nil {
		return DefaultAutoAcknowledgeText
	}
	text := strings.ReplaceAll(*value, "\r\n", "\n")
	switch {
	case strings.TrimSpace(text) == "":
		v.errorf(path, "inbox.auto_acknowledge_text is empty; leave it out to use the default text")
		return DefaultAutoAcknowledgeText
	case len(text) > maxAutoAckText:
		v.errorf(path, "inbox.auto_acknowledge_text is %d bytes long; it may be at most %d", len(text), maxAutoAckText)
		return DefaultAutoAcknowledgeText
	case !utf8.ValidString(text):
		v.errorf(path, "inbox.auto_acknowledge_text is not valid UTF-8")
		return DefaultAutoAcknowledgeText
	}
	for _, r := range text {
		if r != '\n' && r != '\t' && (unicode.IsControl(r) || r == '\u2028' || r == '\u2029') {
			v.errorf(path, "inbox.auto_acknowledge_text contains a control character (%q); only line breaks and tabs are allowed", r)
			return DefaultAutoAcknowledgeText
		}
	}
	for _, name := range placeholders(text) {
		switch name {
		case "id", "subject", "inbox":
		default:
			v.errorf(path, "inbox.auto_acknowledge_text has the placeholder {%s}, which is unknown; use {id} (the request number), {subject} or {inbox} (the inbox's name)", name)
			return DefaultAutoAcknowledgeText
		}
	}
	return text
}

// placeholders returns the names of the {name} placeholders in text, where
// a name is one or more ASCII letters or '_'; other braces are plain text.
func placeholders(text string) []string {
	var out []string
	for rest := text; ; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			return out
		}
		rest = rest[open+1:]
		n := strings.IndexFunc(rest, func(r rune) bool { return !(r == '_' || r < 0x80 && unicode.IsLetter(r)) })
		if n > 0 && rest[n] == '}' {
			out = append(out, rest[:n])
		}
	}
}
