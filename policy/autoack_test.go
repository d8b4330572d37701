package policy

import (
	"bufio"
	"bytes"
	"io"
	"mime/quotedprintable"
	nettextproto "net/textproto"
	"strings"
	"testing"
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/supportgate/supportgate/config"
)

func header(fields ...string) *textproto.Header {
	var h textproto.Header
	for i := 0; i+1 < len(fields); i += 2 {
		h.Add(fields[i], fields[i+1])
	}
	return &h
}

func TestDecideAutoAck(t *testing.T) {
	cfg := testConfig(t)
	cfg.Policy.BlockedSenders = []string{"@spam.example"}
	on, _ := cfg.Inbox("support@example.test")
	on.AutoAcknowledge = true
	off := on
	off.AutoAcknowledge = false
	base := AckInput{Inbox: on, NewConversation: true, ReturnPath: "gina@customer.example", From: "gina@customer.example"}
	tests := []struct {
		name   string
		change func(*AckInput)
		to     string // "" : none
		reason string // a phrase of the reason
	}{
		{"a customer's new request", func(*AckInput) {}, "gina@customer.example", ""},
		{"RFC 3834 4: to the return path, not From", func(in *AckInput) { in.From = "gina@other.example" }, "gina@customer.example", ""},
		{"case is folded", func(in *AckInput) { in.ReturnPath = "Gina@Customer.Example" }, "gina@customer.example", ""},
		{"Auto-Submitted: no is a person", func(in *AckInput) { in.Header = header("Auto-Submitted", "no") }, "gina@customer.example", ""},
		{"Content-Type text/plain", func(in *AckInput) { in.Header = header("Content-Type", "text/plain; charset=utf-8") }, "gina@customer.example", ""},
		{"inbox off", func(in *AckInput) { in.Inbox = off }, "", "does not acknowledge"},
		{"a reply into a conversation", func(in *AckInput) { in.NewConversation = false }, "", "continues"},
		{"null sender", func(in *AckInput) { in.ReturnPath = "" }, "", "null"},
		{"null sender <>", func(in *AckInput) { in.ReturnPath = "<>" }, "", "null"},
		{"Auto-Submitted auto-replied", func(in *AckInput) { in.Header = header("Auto-Submitted", "auto-replied") }, "", "automatic"},
		{"Auto-Submitted auto-generated", func(in *AckInput) { in.Header = header("Auto-Submitted", "Auto-Generated (vacation)") }, "", "automatic"},
		{"Precedence bulk", func(in *AckInput) { in.Header = header("Precedence", "bulk") }, "", "automatic"},
		{"Precedence list", func(in *AckInput) { in.Header = header("Precedence", "list") }, "", "automatic"},
		{"Precedence junk", func(in *AckInput) { in.Header = header("Precedence", "junk") }, "", "automatic"},
		{"X-Autoreply", func(in *AckInput) { in.Header = header("X-Autoreply", "yes") }, "", "automatic"},
		{"Exchange suppression", func(in *AckInput) { in.Header = header("X-Auto-Response-Suppress", "All") }, "", "automatic"},
		{"List-Id", func(in *AckInput) { in.Header = header("List-Id", "<users.lists.example>") }, "", "mailing list"},
		{"List-Unsubscribe", func(in *AckInput) { in.Header = header("List-Unsubscribe", "<mailto:u@lists.example>") }, "", "mailing list"},
		{"List-Post", func(in *AckInput) { in.Header = header("List-Post", "<mailto:l@lists.example>") }, "", "mailing list"},
		{"a DSN", func(in *AckInput) {
			in.Header = header("Content-Type", `Multipart/Report; report-type=delivery-status; boundary="b"`)
		}, "", "report"},
		{"MAILER-DAEMON", func(in *AckInput) { in.ReturnPath = "MAILER-DAEMON@mx.customer.example" }, "", "robot"},
		{"From MAILER-DAEMON", func(in *AckInput) { in.From = "mailer-daemon@customer.example" }, "", "robot"},
		{"owner-", func(in *AckInput) { in.ReturnPath = "owner-users@lists.example" }, "", "robot"},
		{"-request", func(in *AckInput) { in.ReturnPath = "users-request@lists.example" }, "", "robot"},
		{"noreply", func(in *AckInput) { in.ReturnPath = "noreply@shop.example" }, "", "robot"},
		{"VERP bounces", func(in *AckInput) { in.ReturnPath = "bounces+123-abc@esp.example" }, "", "robot"},
		{"an agent", func(in *AckInput) { in.ReturnPath, in.From = "alice@example.test", "alice@example.test" }, "", "agent"},
		{"an agent's From", func(in *AckInput) { in.From = "Bob@example.test" }, "", "agent"},
		{"a support address", func(in *AckInput) { in.ReturnPath = "billing+5-x@example.test" }, "", "support address"},
		{"blocked", func(in *AckInput) { in.ReturnPath = "x@spam.example" }, "", "blocked"},
		{"DMARC or SPF failed", func(in *AckInput) { in.AuthFailed = true }, "", "not authenticated"},
		{"quarantined", func(in *AckInput) { in.Quarantined = true }, "", "spam"},
		{"CR in the return path", func(in *AckInput) { in.ReturnPath = "gina\r@customer.example" }, "", "plain address"},
		{"space in the return path", func(in *AckInput) { in.ReturnPath = `"gina x"@customer.example` }, "", "plain address"},
		{"no domain", func(in *AckInput) { in.ReturnPath = "gina@" }, "", "plain address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			tt.change(&in)
			got := DecideAutoAck(cfg, in)
			if got.To != tt.to || !strings.Contains(got.Reason, tt.reason) || (tt.to == "") == (got.Reason == "") {
				t.Errorf("DecideAutoAck = %+v, want To %q, a reason with %q", got, tt.to, tt.reason)
			}
		})
	}
}

func parseAck(t *testing.T, raw []byte) (mail.Header, string) {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) || bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\r")) {
		t.Fatalf("bare CR or LF in %q", raw)
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		t.Fatalf("unreadable header: %v\n%s", err, raw)
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Errorf("a line of %d characters", len(line))
		}
	}
	body, err := io.ReadAll(quotedprintable.NewReader(br))
	if err != nil {
		t.Fatal(err)
	}
	return mail.Header{Header: gomessage.Header{Header: h}}, string(body)
}

func TestAutoAckMessage(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)
	base := AutoAck{
		InboxName: "Example Support", InboxAddress: "support@example.test",
		ReplyTo: "support+42-abc@example.test", To: "gina@customer.example",
		MessageID: "sg.42.7.mac@mail.example.test", Conversation: 42,
		Subject: "Printer on fire", SubjectTag: "[#42]",
		InReplyTo: "orig@customer.example", References: []string{"root@customer.example"},
		Text: config.DefaultAutoAcknowledgeText, Now: now,
	}
	tests := []struct {
		name     string
		change   func(*AutoAck)
		fields   map[string]string // decoded values
		absent   []string
		inBody   []string
		notFound []string // anywhere in the bytes
	}{
		{"RFC 3834 fields", func(*AutoAck) {}, map[string]string{
			"From":                     `"Example Support" <support@example.test>`,
			"Reply-To":                 "<support+42-abc@example.test>",
			"To":                       "<gina@customer.example>",
			"Subject":                  "Auto: Printer on fire [#42]",
			"Message-Id":               "<sg.42.7.mac@mail.example.test>",
			"In-Reply-To":              "<orig@customer.example>",
			"References":               "<root@customer.example> <orig@customer.example>",
			"Auto-Submitted":           "auto-replied",
			"X-Auto-Response-Suppress": "All",
			"Content-Type":             "text/plain; charset=utf-8",
			"Date":                     "Sat, 21 Nov 2026 09:30:00 +0000",
		}, nil, []string{"request #42", `"Printer on fire"`, "Example Support"}, nil},
		{"no subject tag, a Re: stripped", func(a *AutoAck) { a.SubjectTag, a.Subject = "", "RE: AW: Invoice" },
			map[string]string{"Subject": "Auto: Invoice"}, nil, nil, nil},
		{"tag already in the subject", func(a *AutoAck) { a.Subject = "Help [#42]" },
			map[string]string{"Subject": "Auto: Help [#42]"}, nil, nil, nil},
		{"no subject", func(a *AutoAck) { a.Subject = "" },
			map[string]string{"Subject": "Auto: your request #42 [#42]"}, nil, []string{"(no subject)"}, nil},
		{"no Message-ID in the original", func(a *AutoAck) { a.InReplyTo = "" },
			nil, []string{"In-Reply-To", "References"}, nil, nil},
		{"a broken Message-ID is left out", func(a *AutoAck) { a.InReplyTo = "x>\r\nBcc: victim@x.example" },
			nil, []string{"In-Reply-To", "Bcc"}, nil, []string{"victim"}},
		{"CR/LF in the subject adds no field", func(a *AutoAck) { a.Subject = "hi\r\nBcc: victim@x.example\r\n\r\nbody" },
			map[string]string{"Subject": "Auto: hi  Bcc: victim@x.example    body [#42]"}, []string{"Bcc"}, nil, []string{"\r\nBcc"}},
		{"CR/LF in the inbox name adds no field", func(a *AutoAck) { a.InboxName = "Support\r\nBcc: victim@x.example" },
			nil, []string{"Bcc"}, nil, []string{"\r\nBcc"}},
		{"non-ASCII subject and name are encoded", func(a *AutoAck) { a.Subject, a.InboxName = "Drucker brennt – größer", "Équipe" },
			map[string]string{"Subject": "Auto: Drucker brennt – größer [#42]"}, nil, []string{"Drucker brennt – größer", "Équipe"}, []string{"größer"}},
		{"a long subject is cut", func(a *AutoAck) { a.Subject = strings.Repeat("週", 400) },
			map[string]string{"Subject": "Auto: " + strings.Repeat("週", 200) + "… [#42]"}, nil, nil, nil},
		{"the admin's text and placeholders", func(a *AutoAck) { a.Text = "Ticket {id} for {subject} at {inbox}.\nBye {unknown}" },
			nil, nil, []string{"Ticket 42 for Printer on fire at Example Support.\r\nBye {unknown}"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := base
			tt.change(&a)
			raw := a.Message()
			h, body := parseAck(t, raw)
			for k, want := range tt.fields {
				got := h.Get(k)
				if k == "Subject" {
					got, _ = h.Subject()
				}
				if got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			for _, k := range tt.absent {
				if h.Has(k) {
					t.Errorf("%s is present: %q", k, h.Get(k))
				}
			}
			for _, s := range tt.inBody {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q:\n%s", s, body)
				}
			}
			for _, s := range tt.notFound {
				if bytes.Contains(raw, []byte(s)) {
					t.Errorf("%q is in the message:\n%s", s, raw)
				}
			}
		})
	}
}

// FuzzAutoAckMessage: whatever the customer's subject, Message-IDs and the
// configured name and text hold, the acknowledgement parses as one header
// with exactly the fields it writes (nothing injected), every line within
// RFC 5322's 998 characters.
func FuzzAutoAckMessage(f *testing.F) {
	f.Add("Printer on fire", "Example Support", "orig@customer.example", "root@customer.example", "Thanks {subject} #{id}")
	f.Add("x\r\nBcc: victim@example.com", "Evil\r\nX-Injected: 1", "a>\r\nX-Injected: 2", "<b@c>\nX: y", "{inbox}\r\n.\r\n")
	f.Add("=?UTF-8?B?w6k=?= \x00\x7f", "Caf\xc3\xa9", "", "", "")
	f.Fuzz(func(t *testing.T, subject, name, inReplyTo, ref, text string) {
		a := AutoAck{
			InboxName: name, InboxAddress: "support@example.test", ReplyTo: "support+42-abc@example.test",
			To: "gina@customer.example", MessageID: "sg.42.7.mac@mail.example.test", Conversation: 42,
			Subject: subject, SubjectTag: "[#42]", InReplyTo: inReplyTo, References: []string{ref},
			Text: text, Now: time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC),
		}
		raw := a.Message()
		for i, line := range bytes.Split(raw, []byte("\r\n")) {
			if len(line) > 998 || bytes.ContainsAny(line, "\r\n") {
				t.Fatalf("line %d of %q is too long or holds a bare CR/LF", i, raw)
			}
		}
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			t.Fatalf("the acknowledgement does not parse: %v\n%q", err, raw)
		}
		written := map[string]bool{"Date": true, "From": true, "Reply-To": true, "To": true, "Subject": true,
			"Message-Id": true, "In-Reply-To": true, "References": true, "Auto-Submitted": true,
			"X-Auto-Response-Suppress": true, "Mime-Version": true, "Content-Type": true, "Content-Transfer-Encoding": true}
		for f := h.Fields(); f.Next(); {
			if !written[nettextproto.CanonicalMIMEHeaderKey(f.Key())] {
				t.Fatalf("field %q injected:\n%q", f.Key(), raw)
			}
		}
	})
}
