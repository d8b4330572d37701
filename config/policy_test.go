package config

import (
	"strings"
	"testing"
)

func TestPolicyKeys(t *testing.T) {
	c, err := Parse("p.toml", []byte(`[policy]
blocked_senders = ["Spam@Evil.example", "@junk.example"]

[[inbox]]
address = "support@example.test"
show_events = true
blocked_senders = ["pest@customer.example"]
max_attachment_bytes = 1000
refused_attachment_types = ["application/x-msdownload", "video/*"]
`))
	if err != nil {
		t.Fatal(err)
	}
	in := c.Inboxes[0]
	if !in.ShowEvents || in.MaxAttachmentBytes != 1000 {
		t.Errorf("inbox %+v", in)
	}
	for addr, want := range map[string]bool{
		"spam@evil.example": true, "SPAM@EVIL.EXAMPLE": true, "other@evil.example": false,
		"a@junk.example": true, "a@sub.junk.example": false, "pest@customer.example": true, "ok@customer.example": false, "": false,
	} {
		if got := c.Blocked(in, addr); got != want {
			t.Errorf("Blocked(%q) = %v", addr, got)
		}
	}
	for typ, want := range map[string]bool{"application/x-msdownload": true, "Video/MP4": true, "application/pdf": false, "video": false} {
		if got := in.RefusedAttachmentType(typ); got != want {
			t.Errorf("RefusedAttachmentType(%q) = %v", typ, got)
		}
	}
	_, err = Parse("p.toml", []byte(`[policy]
blocked_senders = ["not an address"]

[[inbox]]
address = "support@example.test"
max_attachment_bytes = -1
refused_attachment_types = ["pdf", "text/plain; charset=x"]
`))
	for _, want := range []string{"p.toml:2: policy.blocked_senders has \"not an address\"", "p.toml:6: inbox.max_attachment_bytes is -1",
		`p.toml:7: inbox.refused_attachment_types has "pdf"`, `has "text/plain; charset=x"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// TestAuthFailureKey: inbox.auth_failure defaults to "flag", takes the four
// values and refuses anything else with its line.
func TestAuthFailureKey(t *testing.T) {
	c, err := Parse("a.toml", []byte(`[[inbox]]
address = "support@example.test"

[[inbox]]
address = "billing@example.test"
auth_failure = "quarantine"

[[inbox]]
address = "sales@example.test"
auth_failure = "reject"

[[inbox]]
address = "info@example.test"
auth_failure = "accept"
`))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{AuthFailureFlag, AuthFailureQuarantine, AuthFailureReject, AuthFailureAccept} {
		if got := c.Inboxes[i].AuthFailure; got != want {
			t.Errorf("inbox %d: auth_failure %q, want %q", i, got, want)
		}
	}
	_, err = Parse("a.toml", []byte(`[[inbox]]
address = "support@example.test"
auth_failure = "bounce"
`))
	if want := `a.toml:3: inbox.auth_failure is "bounce"; it must be "accept", "flag", "quarantine" or "reject"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v lacks %q", err, want)
	}
}
