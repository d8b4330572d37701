package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseActions(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    []Action
		lines   int
		wantErr string
	}{
		{"none", "Hello\r\n#tag x\r\n", nil, 0, ""},
		{"top lines", "#tag billing urgent\r\n#assign me\r\n\r\nHello\r\n", []Action{{ActionTag, []string{"billing", "urgent"}}, {ActionAssign, []string{"me"}}}, 3, ""},
		{"leading blank lines", "\r\n\r\n#close\r\nBye\r\n", []Action{{ActionClose, nil}}, 3, ""},
		{"LF only", "#spam\n", []Action{{ActionSpam, nil}}, 1, ""},
		{"unknown word ends the actions", "#tag a\r\n#hashtag fun\r\n#close\r\n", []Action{{ActionTag, []string{"a"}}}, 1, ""},
		{"case-insensitive word", "#ReadOnly ON\r\n", []Action{{ActionReadOnly, []string{"ON"}}}, 1, ""},
		{"all kinds", "#untag a\n#open\n#uncc x@y.example\n#follow\n#follow b@y.example\n#unfollow\n", []Action{
			{ActionUntag, []string{"a"}}, {ActionOpen, nil}, {ActionUncc, []string{"x@y.example"}}, {ActionFollow, nil},
			{ActionFollow, []string{"b@y.example"}}, {ActionUnfollow, nil}}, 6, ""},
		{"assign needs one", "#assign\r\n", nil, 0, "#assign takes one"},
		{"close takes nothing", "#close now\r\n", nil, 0, "#close takes nothing"},
		{"bad tag", "#tag with/slash\r\n", nil, 0, "is not a tag"},
		{"bad readonly", "#readonly maybe\r\n", nil, 0, "on or off"},
		{"bad address", "#uncc nobody\r\n", nil, 0, "not an email address"},
		{"only actions", "#close", []Action{{ActionClose, nil}}, 1, ""},
		{"send, side, merge", "#send\r\n#side\r\n#merge #12\r\n\r\nHi\r\n", []Action{{ActionSend, nil}, {ActionSide, nil}, {ActionMerge, []string{"#12"}}}, 4, ""},
		{"merge needs a number", "#merge twelve\r\n", nil, 0, "write the number of the conversation"},
		{"merge needs one", "#merge\r\n", nil, 0, "#merge takes one conversation number"},
		{"send takes nothing", "#send now\r\n", nil, 0, "#send takes nothing"},
	}
	for _, tt := range tests {
		actions, lines, err := ParseActions(tt.text)
		var ae *ActionError
		if tt.wantErr != "" {
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(actions, tt.want) || len(lines) != tt.lines {
			t.Errorf("%s: got %+v, %d lines, %v; want %+v, %d lines", tt.name, actions, len(lines), err, tt.want, tt.lines)
		}
	}
}

const thunderbirdAlternative = "From: alice@example.test\r\nTo: c@x\r\nSubject: Re: x\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative;\r\n boundary=\"------------abc123\"\r\n\r\n" +
	"This is a multi-part message in MIME format.\r\n" +
	"--------------abc123\r\nContent-Type: text/plain; charset=UTF-8; format=flowed\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" +
	"#tag billing\r\n#close\r\n\r\nYour refund is on its way.\r\n\r\n" +
	"--------------abc123\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
	"<html><body><p>#tag billing<br>\r\n#close</p>\r\n<p>Your refund is on its way.</p>\r\n</body></html>\r\n\r\n" +
	"--------------abc123--\r\n"

func TestMessageTextAndStrip(t *testing.T) {
	text, ok := MessageText([]byte(thunderbirdAlternative))
	if !ok || !strings.HasPrefix(text, "#tag billing\r\n#close\r\n") {
		t.Fatalf("MessageText = %q, %v", text, ok)
	}
	actions, lines, err := ParseActions(text)
	if err != nil || len(actions) != 2 {
		t.Fatalf("ParseActions: %v %v", actions, err)
	}
	out := string(StripActionLines([]byte(thunderbirdAlternative), lines))
	if strings.Contains(out, "#tag") || strings.Contains(out, "#close") {
		t.Errorf("actions left in:\n%s", out)
	}
	for _, keep := range []string{"Content-Type: text/plain; charset=UTF-8; format=flowed\r\nContent-Transfer-Encoding: 7bit\r\n\r\nYour refund is on its way.\r\n\r\n--------------abc123\r\n",
		"<p>Your refund is on its way.</p>", "--------------abc123--\r\n", "This is a multi-part message in MIME format.\r\n"} {
		if !strings.Contains(out, keep) {
			t.Errorf("lost %q:\n%s", keep, out)
		}
	}

	// Plain 7bit single part: only the action lines go, byte for byte.
	plain := "Subject: x\r\n\r\n#assign bob@example.test\r\n\r\nHello  \r\nBye\r\n"
	text, _ = MessageText([]byte(plain))
	_, lines, _ = ParseActions(text)
	if got := string(StripActionLines([]byte(plain), lines)); got != "Subject: x\r\n\r\nHello  \r\nBye\r\n" {
		t.Errorf("plain strip = %q", got)
	}

	// Base64 text is decoded, stripped and encoded again.
	b64 := "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nI3NwYW0KSGVsbG8K\r\n"
	text, ok = MessageText([]byte(b64))
	if !ok || text != "#spam\nHello\n" {
		t.Fatalf("base64 text = %q", text)
	}
	_, lines, _ = ParseActions(text)
	if got := string(StripActionLines([]byte(b64), lines)); !strings.HasSuffix(got, "\r\n\r\nSGVsbG8K\r\n") {
		t.Errorf("base64 strip = %q", got)
	}

	// HTML only.
	htmlOnly := "Content-Type: text/html; charset=utf-8\r\n\r\n<div>#untag vip</div><div>Hi &amp; bye</div>\r\n"
	text, _ = MessageText([]byte(htmlOnly))
	actions, lines, _ = ParseActions(text)
	if len(actions) != 1 || actions[0].Kind != ActionUntag {
		t.Fatalf("HTML-only actions %+v from %q", actions, text)
	}
	if got := string(StripActionLines([]byte(htmlOnly), lines)); strings.Contains(got, "#untag") || !strings.Contains(got, "<div>Hi &amp; bye</div>") {
		t.Errorf("HTML strip = %q", got)
	}
}

func FuzzStripActionLines(f *testing.F) {
	f.Add([]byte(thunderbirdAlternative))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n#close\r\n--x--\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		text, ok := MessageText(raw)
		if !ok {
			return
		}
		if _, lines, err := ParseActions(text); err == nil {
			StripActionLines(raw, lines)
		}
	})
}
