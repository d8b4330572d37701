package config

import (
	"strconv"
	"strings"
	"testing"
)

func TestAutoAcknowledgeKeys(t *testing.T) {
	c, err := Parse("a.toml", []byte(team))
	if err != nil {
		t.Fatal(err)
	}
	if in := c.Inboxes[0]; in.AutoAcknowledge || in.AutoAcknowledgeText != DefaultAutoAcknowledgeText {
		t.Errorf("defaults: auto_acknowledge %v, text %q", in.AutoAcknowledge, in.AutoAcknowledgeText)
	}
	if c.Limits.MaxAutoAcksPerSenderPerDay != 1 {
		t.Errorf("max_auto_acknowledgements_per_sender_per_day defaults to %d, want 1", c.Limits.MaxAutoAcksPerSenderPerDay)
	}
	for _, name := range placeholders(DefaultAutoAcknowledgeText) {
		if name != "id" && name != "subject" && name != "inbox" {
			t.Errorf("the default text uses the unknown placeholder {%s}", name)
		}
	}
	if !strings.Contains(DefaultAutoAcknowledgeText, "#{id}") {
		t.Error("the default text does not give the request number")
	}

	doc := strings.Replace(team, `address = "support@example.test"`, `address = "support@example.test"
auto_acknowledge = true
auto_acknowledge_text = """
Request {id} ({subject}) reached {inbox}.\r
Braces {like this} and {} stay.
"""`, 1)
	c, err = Parse("a.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := "Request {id} ({subject}) reached {inbox}.\nBraces {like this} and {} stay.\n"
	if in := c.Inboxes[0]; !in.AutoAcknowledge || in.AutoAcknowledgeText != want {
		t.Errorf("auto_acknowledge %v, text %q, want %q", in.AutoAcknowledge, in.AutoAcknowledgeText, want)
	}
}

func TestAutoAcknowledgeErrors(t *testing.T) {
	inbox := func(line string) string {
		return "[[inbox]]\naddress = \"support@example.test\"\n" + line + " #<-\n[[agent]]\nemail = \"alice@example.test\"\npassword_hash = \"" + hash + "\"\n"
	}
	for _, tc := range []struct{ name, doc, phrase string }{
		{"not a bool", inbox(`auto_acknowledge = "yes"`), "inbox.auto_acknowledge must be true or false"},
		{"empty text", inbox(`auto_acknowledge_text = "  "`), "inbox.auto_acknowledge_text is empty"},
		{"unknown placeholder", inbox(`auto_acknowledge_text = "Ticket {ticket}"`), "the placeholder {ticket}, which is unknown"},
		{"a control character", inbox(`auto_acknowledge_text = "Hi\u0000there"`), "control character"},
		{"a lone CR", inbox(`auto_acknowledge_text = "Hi\rBcc: x@y"`), "control character"},
		{"an escape", inbox(`auto_acknowledge_text = "Hi\u001b[31m"`), "control character"},
		{"too long", inbox(`auto_acknowledge_text = "` + strings.Repeat("x", 9000) + `"`), "at most 8192"},
		{"unknown key", inbox(`auto_ack = true`), `unknown key "inbox.auto_ack"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("a.toml", []byte(tc.doc))
			if err == nil {
				t.Fatal("accepted")
			}
			want := "a.toml:" + strconv.Itoa(markedLine(tc.doc)) + ": "
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.phrase) {
				t.Errorf("error %q, want %q and %q", err, want, tc.phrase)
			}
		})
	}
}
