package threading

import (
	"strings"
	"testing"
)

func TestRecipientBounceTokenRoundTrip(t *testing.T) {
	k := NewKeys([]byte(strings.Repeat("k", 32)))
	other := NewKeys([]byte(strings.Repeat("o", 32)))
	tok := k.RecipientBounceToken(42, 3)
	if !strings.HasPrefix(tok, "42-3-") || strings.ToLower(tok) != tok {
		t.Fatalf("token %q: want 42-3-<lowercase mac>", tok)
	}
	if msg, n, ok := k.ParseBounceToken(tok); !ok || msg != 42 || n != 3 {
		t.Fatalf("ParseBounceToken(%q) = %d, %d, %v; want 42, 3, true", tok, msg, n, ok)
	}
	// Mail servers may fold the local part to upper case.
	if msg, n, ok := k.ParseBounceToken(strings.ToUpper(tok)); !ok || msg != 42 || n != 3 {
		t.Fatalf("upper-cased token: %d, %d, %v", msg, n, ok)
	}
	// The message-only token of BounceToken still parses, with recipient 0.
	if msg, n, ok := k.ParseBounceToken(k.BounceToken(7)); !ok || msg != 7 || n != 0 {
		t.Fatalf("ParseBounceToken(BounceToken(7)) = %d, %d, %v", msg, n, ok)
	}
	mac := tok[strings.LastIndex(tok, "-")+1:]
	for _, bad := range []string{
		other.RecipientBounceToken(42, 3), // another secret
		"42-4-" + mac,                     // another recipient under the same MAC
		"43-3-" + mac,                     // another message
		"042-3-" + mac,                    // not canonical
		"42-03-" + mac,
		"42-0-" + k.mac("bounce-rcpt", "42-0"),
		"42-3",
		"42--" + mac,
		"",
		"a-b-c",
		k.ReplyToken(42),                   // a reply token is not a bounce token
		"42-" + k.mac("bounce-rcpt", "42"), // purposes do not mix
		"42-3-" + k.mac("bounce", "42-3"),  // nor here
	} {
		if msg, n, ok := k.ParseBounceToken(bad); ok {
			t.Errorf("ParseBounceToken(%q) = %d, %d, true; want false", bad, msg, n)
		}
	}
}
