package config

import (
	"fmt"
	"mime"
	"slices"
	"strings"
)

// Policy is the [policy] table: rules for every inbox.
type Policy struct {
	// BlockedSenders is blocked_senders: addresses ("spam@x.example") or
	// whole domains ("@x.example"), lower case. Their mail is refused with
	// 550 5.7.1 and agents cannot write to them (DESIGN.md §7).
	BlockedSenders []string
}

type filePolicy struct {
	BlockedSenders []string `toml:"blocked_senders"`
}

// Values of Inbox.AuthFailure: what the MX does with a message that fails
// SPF or DMARC (DESIGN.md §8).
const (
	AuthFailureAccept     = "accept"     // stored as any other; the result is in Authentication-Results
	AuthFailureFlag       = "flag"       // stored, with a team-only event (default)
	AuthFailureQuarantine = "quarantine" // a conversation it starts goes to Spam; otherwise flag
	AuthFailureReject     = "reject"     // refused with 550 5.7.1
)

// authFailure validates inbox.auth_failure; nil is the default.
func (v *validator) authFailure(path string, value *string) string {
	if value == nil {
		return AuthFailureFlag
	}
	switch *value {
	case AuthFailureAccept, AuthFailureFlag, AuthFailureQuarantine, AuthFailureReject:
		return *value
	}
	v.errorf(path, `inbox.auth_failure is %q; it must be "accept", "flag", "quarantine" or "reject"`, *value)
	return AuthFailureFlag
}

// Blocked reports whether an address is blocked, globally or in inbox.
func (c *Config) Blocked(inbox Inbox, addr string) bool {
	addr = strings.ToLower(strings.TrimSpace(addr))
	if addr == "" {
		return false
	}
	_, domain, _ := strings.Cut(addr, "@")
	match := func(patterns []string) bool {
		return slices.ContainsFunc(patterns, func(p string) bool { return p == addr || p == "@"+domain })
	}
	return match(c.Policy.BlockedSenders) || match(inbox.BlockedSenders)
}

// blockedSenders validates a blocked_senders list at path.
func (v *validator) blockedSenders(path, name string, list []string) []string {
	var out []string
	for i, p := range list {
		entry := strings.ToLower(strings.TrimSpace(p))
		check := entry
		if strings.HasPrefix(entry, "@") {
			check = "x" + entry
		}
		if _, why := normalizeAddress(check); why != "" {
			v.errorf(fmt.Sprintf("%s.%d", path, i), `%s has %q, which is neither an address nor "@domain": %s`, name, p, why)
			continue
		}
		if !slices.Contains(out, entry) {
			out = append(out, entry)
		}
	}
	return out
}

// attachmentTypes validates refused_attachment_types: MIME types such as
// "application/x-msdownload", or a whole top-level type as "video/*".
func (v *validator) attachmentTypes(path, name string, list []string) []string {
	var out []string
	for i, t := range list {
		mt := strings.ToLower(strings.TrimSpace(t))
		typ, sub, _ := strings.Cut(mt, "/")
		if sub == "*" {
			sub = "x" // a wildcard subtype: check the top-level type alone
		}
		if _, params, err := mime.ParseMediaType(typ + "/" + sub); err != nil || len(params) > 0 || sub == "" {
			v.errorf(fmt.Sprintf("%s.%d", path, i), `%s has %q, which is not a MIME type like "application/zip" or "video/*"`, name, t)
			continue
		}
		out = append(out, mt)
	}
	return out
}

// RefusedAttachmentType reports whether a MIME type is refused in inbox.
func (in Inbox) RefusedAttachmentType(mediaType string) bool {
	mediaType = strings.ToLower(mediaType)
	typ, _, ok := strings.Cut(mediaType, "/")
	return ok && slices.ContainsFunc(in.RefusedAttachmentTypes, func(p string) bool { return p == mediaType || p == typ+"/*" })
}
