package threading

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

// testSecret is the secret under which the tokens and signed Message-IDs of
// testdata/eml are valid (see testdata/eml/README.md).
const testSecret = "supportgate testdata secret: never use in production"

func testKeys() Keys { return NewKeys([]byte(testSecret)) }

func otherKeys() Keys { return NewKeys([]byte("another secret of at least 32 bytes, for tests")) }

// The tokens of testdata/eml, computed once from testSecret.
const (
	corpusReplyToken  = "42-zdnjah3cwgd4czz4"
	corpusBounceToken = "1234-2fjopf46aibvyqz6"
	corpusMessageID7  = "sg.42.7.qhkxc7bq6gaikyii@mail.example.test"
	corpusMessageID8  = "sg.42.8.hd2finys2nixuf52@mail.example.test"
	corpusMessageID9  = "sg.42.9.4gsjsv4avdngds3y@mail.example.test"
)

func TestCorpusTokensAreValid(t *testing.T) {
	k := testKeys()
	if got := k.ReplyToken(42); got != corpusReplyToken {
		t.Errorf("ReplyToken(42) = %q; testdata/eml uses %q", got, corpusReplyToken)
	}
	if got := k.BounceToken(1234); got != corpusBounceToken {
		t.Errorf("BounceToken(1234) = %q; testdata/eml uses %q", got, corpusBounceToken)
	}
	for m, want := range map[int64]string{7: corpusMessageID7, 8: corpusMessageID8, 9: corpusMessageID9} {
		if got := k.MessageID(42, m, "mail.example.test"); got != want {
			t.Errorf("MessageID(42, %d) = %q; testdata/eml uses %q", m, got, want)
		}
	}
}

func TestReplyTokenRoundTrip(t *testing.T) {
	k := testKeys()
	for _, conv := range []int64{1, 2, 9, 10, 42, 99999, 1 << 31, math.MaxInt64} {
		tok := k.ReplyToken(conv)
		if tok != strings.ToLower(tok) {
			t.Errorf("ReplyToken(%d) = %q is not lower case", conv, tok)
		}
		if !strings.HasPrefix(tok, strconv.FormatInt(conv, 10)+"-") || len(tok) != len(strconv.FormatInt(conv, 10))+1+macLen {
			t.Errorf("ReplyToken(%d) = %q, want <conversation>-<%d chars>", conv, tok, macLen)
		}
		for _, variant := range []string{tok, strings.ToUpper(tok)} {
			got, ok := k.ParseReplyToken(variant)
			if !ok || got != conv {
				t.Errorf("ParseReplyToken(%q) = %d, %v; want %d, true", variant, got, ok, conv)
			}
		}
		if got, ok := otherKeys().ParseReplyToken(tok); ok {
			t.Errorf("ParseReplyToken(%q) under another secret = %d, true; want false", tok, got)
		}
	}
}

func TestParseReplyTokenRejects(t *testing.T) {
	k := testKeys()
	tok42 := k.ReplyToken(42)
	_, mac42, _ := strings.Cut(tok42, "-")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct {
		name, token string
	}{
		{"empty", ""},
		{"no dash", "42" + mac42},
		{"only dash", "-"},
		{"no mac", "42-"},
		{"no number", "-" + mac42},
		{"wrong mac first char", "42-" + flip(mac42, 0)},
		{"wrong mac last char", "42-" + flip(mac42, macLen-1)},
		{"truncated mac", "42-" + mac42[:macLen-1]},
		{"longer mac", "42-" + mac42 + "a"},
		{"mac of another conversation", "43-" + mac42},
		{"tampered number", "420-" + mac42},
		{"leading zero", "042-" + mac42},
		{"leading zero with its own mac", "042-" + k.mac("reply", "042")},
		{"plus sign", "+42-" + mac42},
		{"plus sign with its own mac", "+42-" + k.mac("reply", "+42")},
		{"zero", "0-" + k.mac("reply", "0")},
		{"negative", "-42-" + mac42},
		{"negative with its own mac", "-42-" + k.mac("reply", "-42")},
		{"overflow", "9223372036854775808-" + k.mac("reply", "9223372036854775808")},
		{"spaces", " 42-" + mac42},
		{"trailing space", tok42 + " "},
		{"second dash", "42-" + mac42 + "-x"},
		{"bounce token of the same number", k.BounceToken(42)},
		{"mac of the message-id purpose", "42-" + k.mac("msgid", "42")},
		{"garbage", "\x00\xff<>@%"},
		{"unicode digits", "٤٢-" + mac42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, ok := k.ParseReplyToken(tt.token); ok || got != 0 {
				t.Errorf("ParseReplyToken(%q) = %d, %v; want 0, false", tt.token, got, ok)
			}
		})
	}
}

func TestZeroKeysNeverValidate(t *testing.T) {
	var zero Keys
	tok := zero.ReplyToken(5) // signs under the empty secret
	if _, ok := zero.ParseReplyToken(tok); ok {
		t.Errorf("the zero Keys accepted its own token %q", tok)
	}
	id := zero.MessageID(5, 6, "h.example")
	if _, _, ok := zero.ParseMessageID(id); ok {
		t.Errorf("the zero Keys accepted its own Message-ID %q", id)
	}
	if _, ok := NewKeys(nil).ParseReplyToken(tok); ok {
		t.Errorf("NewKeys(nil) accepted %q", tok)
	}
}

func TestNewKeysCopiesSecret(t *testing.T) {
	secret := []byte(testSecret)
	k := NewKeys(secret)
	tok := k.ReplyToken(7)
	secret[0] ^= 0xff
	if _, ok := k.ParseReplyToken(tok); !ok {
		t.Error("changing the caller's slice after NewKeys changed the keys")
	}
}

func TestBounceTokenDistinct(t *testing.T) {
	k := testKeys()
	for _, n := range []int64{1, 42, 1234, math.MaxInt64} {
		b, r := k.BounceToken(n), k.ReplyToken(n)
		if b == r {
			t.Errorf("BounceToken(%d) == ReplyToken(%d) == %q", n, n, b)
		}
		if !strings.HasPrefix(b, strconv.FormatInt(n, 10)+"-") || b != strings.ToLower(b) {
			t.Errorf("BounceToken(%d) = %q, want <message>-<lower-case mac>", n, b)
		}
		if got, ok := k.ParseReplyToken(b); ok {
			t.Errorf("ParseReplyToken(BounceToken(%d)) = %d, true; a bounce token must not thread as a reply token", n, got)
		}
	}
	if k.BounceToken(1) == k.BounceToken(2) || otherKeys().BounceToken(1) == k.BounceToken(1) {
		t.Error("BounceToken does not depend on the message and the secret")
	}
}

func TestMessageIDRoundTrip(t *testing.T) {
	k := testKeys()
	tests := []struct {
		conv, msg int64
		host      string
	}{
		{1, 1, "mail.example.test"},
		{42, 7, "mail.example.test"},
		{123456, 987654321, "mx.acme.example"},
		{math.MaxInt64, math.MaxInt64, "localhost"},
	}
	for _, tt := range tests {
		id := k.MessageID(tt.conv, tt.msg, tt.host)
		if want := "sg." + strconv.FormatInt(tt.conv, 10) + "." + strconv.FormatInt(tt.msg, 10) + "."; !strings.HasPrefix(id, want) || !strings.HasSuffix(id, "@"+tt.host) {
			t.Errorf("MessageID(%d, %d, %q) = %q, want %s<mac>@%s", tt.conv, tt.msg, tt.host, id, want, tt.host)
		}
		if strings.ContainsAny(id, "<> \t\r\n") {
			t.Errorf("MessageID = %q has brackets or whitespace", id)
		}
		if got := ParseMessageID("<" + id + ">"); got != id {
			t.Errorf("ParseMessageID(<%s>) = %q; the id does not survive a header", id, got)
		}
		conv, msg, ok := k.ParseMessageID(id)
		if !ok || conv != tt.conv || msg != tt.msg {
			t.Errorf("ParseMessageID(%q) = %d, %d, %v; want %d, %d, true", id, conv, msg, ok, tt.conv, tt.msg)
		}
		// The host is not signed: a signed id threads whatever host name it
		// was written under (a renamed server still threads old replies).
		left, _, _ := strings.Cut(id, "@")
		if _, _, ok := k.ParseMessageID(left + "@old-name.example"); !ok {
			t.Errorf("ParseMessageID with another host name refused %q", left)
		}
		if _, _, ok := otherKeys().ParseMessageID(id); ok {
			t.Errorf("ParseMessageID(%q) under another secret = true", id)
		}
	}
}

func TestParseMessageIDRejects(t *testing.T) {
	k := testKeys()
	good := k.MessageID(42, 7, "mail.example.test")
	mac := strings.TrimSuffix(strings.TrimPrefix(good, "sg.42.7."), "@mail.example.test")
	tests := []struct {
		name, id string
	}{
		{"empty", ""},
		{"no at", "sg.42.7." + mac},
		{"with brackets", "<" + good + ">"},
		{"foreign gmail", "CAJx7Wq3pZ8mN1vB5cX9kL2hG4fD6sA0qW3eR7tY1uI5oP9@mail.gmail.com"},
		{"foreign outlook", "AS8PR04MB8247A1B2C3D4E5F6A7B8C9D0E1F2A@AS8PR04MB8247.eurprd04.prod.outlook.com"},
		{"foreign with sg prefix", "sg.something@example.com"},
		{"other prefix", "xg.42.7." + mac + "@h"},
		{"upper-case prefix", "SG.42.7." + mac + "@h"},
		{"too few parts", "sg.42." + mac + "@h"},
		{"too many parts", "sg.42.7.1." + mac + "@h"},
		{"tampered conversation", "sg.43.7." + mac + "@h"},
		{"tampered message", "sg.42.8." + mac + "@h"},
		{"swapped numbers", "sg.7.42." + mac + "@h"},
		{"leading zero", "sg.042.7." + k.mac("msgid", "042.7") + "@h"},
		{"zero conversation", "sg.0.7." + k.mac("msgid", "0.7") + "@h"},
		{"zero message", "sg.42.0." + k.mac("msgid", "42.0") + "@h"},
		{"negative", "sg.-42.7." + k.mac("msgid", "-42.7") + "@h"},
		{"plus sign", "sg.+42.7." + k.mac("msgid", "+42.7") + "@h"},
		{"empty mac", "sg.42.7.@h"},
		{"truncated mac", "sg.42.7." + mac[:macLen-1] + "@h"},
		// Purpose separation: a MAC made for a reply token or a bounce
		// token over the very same value is not a Message-ID MAC.
		{"reply mac over the same value", "sg.42.7." + k.mac("reply", "42.7") + "@h"},
		{"bounce mac over the same value", "sg.42.7." + k.mac("bounce", "42.7") + "@h"},
		{"reply token's mac", "sg.42.7." + strings.TrimPrefix(k.ReplyToken(42), "42-") + "@h"},
		{"garbage", "\x00@\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv, msg, ok := k.ParseMessageID(tt.id)
			if ok || conv != 0 || msg != 0 {
				t.Errorf("ParseMessageID(%q) = %d, %d, %v; want 0, 0, false", tt.id, conv, msg, ok)
			}
		})
	}
}

func TestPurposeSeparation(t *testing.T) {
	k := testKeys()
	for _, v := range []string{"1", "42", "42.7"} {
		if k.mac("reply", v) == k.mac("msgid", v) || k.mac("reply", v) == k.mac("bounce", v) || k.mac("msgid", v) == k.mac("bounce", v) {
			t.Errorf("two purposes share a MAC over %q", v)
		}
	}
	// The separator keeps "reply"+"1" and "reply1"+"" apart.
	if k.mac("reply", "1") == k.mac("reply1", "") {
		t.Error("purpose and value are not separated")
	}
}

func corpusTokenSeeds() []string {
	k := testKeys()
	return []string{
		"", "-", "0-", "1-a", corpusReplyToken, strings.ToUpper(corpusReplyToken), corpusBounceToken,
		k.ReplyToken(1), k.ReplyToken(math.MaxInt64), "042-" + k.mac("reply", "042"),
		"-1-" + k.mac("reply", "-1"), "9223372036854775808-aaaaaaaaaaaaaaaa",
	}
}

func FuzzParseReplyToken(f *testing.F) {
	for _, s := range corpusTokenSeeds() {
		f.Add(s)
	}
	for _, rcpt := range corpusRecipients(f) {
		if _, tag := SplitPlus(rcpt); tag != "" {
			f.Add(tag)
		}
	}
	k := testKeys()
	f.Fuzz(func(t *testing.T, token string) {
		conv, ok := k.ParseReplyToken(token)
		if !ok {
			if conv != 0 {
				t.Fatalf("ParseReplyToken(%q) = %d, false; want 0 when it fails", token, conv)
			}
			return
		}
		if conv <= 0 {
			t.Fatalf("ParseReplyToken(%q) = %d, true; conversations are positive", token, conv)
		}
		// A token that parses is the token we would write, up to case.
		if re := k.ReplyToken(conv); re != strings.ToLower(token) {
			t.Fatalf("ParseReplyToken(%q) = %d, but ReplyToken(%d) = %q", token, conv, conv, re)
		}
		if again, ok := k.ParseReplyToken(k.ReplyToken(conv)); !ok || again != conv {
			t.Fatalf("ReplyToken(%d) does not parse back: %d, %v", conv, again, ok)
		}
	})
}

func FuzzParseMessageID(f *testing.F) {
	k := testKeys()
	for _, s := range []string{"", "@", "sg.1.1.a@h", corpusMessageID7, corpusMessageID8, corpusMessageID9,
		k.MessageID(math.MaxInt64, 1, "h"), "sg.042.7." + k.mac("msgid", "042.7") + "@h"} {
		f.Add(s)
	}
	for _, id := range corpusMessageIDs(f) {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		conv, msg, ok := k.ParseMessageID(id)
		if !ok {
			if conv != 0 || msg != 0 {
				t.Fatalf("ParseMessageID(%q) = %d, %d, false; want zeros when it fails", id, conv, msg)
			}
			return
		}
		if conv <= 0 || msg <= 0 {
			t.Fatalf("ParseMessageID(%q) = %d, %d, true; both are positive", id, conv, msg)
		}
		_, host, _ := strings.Cut(id, "@")
		if re := k.MessageID(conv, msg, host); re != id && re != strings.ToLower(id[:strings.IndexByte(id, '@')])+"@"+host {
			t.Fatalf("ParseMessageID(%q) = %d, %d, but MessageID gives %q", id, conv, msg, re)
		}
	})
}

func TestSideToken(t *testing.T) {
	k := NewKeys([]byte("0123456789abcdef0123456789abcdef"))
	tok := k.SideToken(42, 3)
	if conv, side, ok := k.ParseSideToken(tok); !ok || conv != 42 || side != 3 {
		t.Fatalf("ParseSideToken(%q) = %d, %d, %v", tok, conv, side, ok)
	}
	if _, ok := k.ParseReplyToken(tok); ok {
		t.Errorf("a side token is taken for a conversation's token")
	}
	for _, bad := range []string{"", "42s3", "42s03-" + tok[5:], "42s4" + tok[4:], k.ReplyToken(42), "0s1-x", "42s-x"} {
		if _, _, ok := k.ParseSideToken(bad); ok {
			t.Errorf("ParseSideToken(%q) accepted", bad)
		}
	}
}
