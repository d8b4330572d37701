package gateway

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
)

func dsn(ctype, action, status string) string {
	return "From: MAILER-DAEMON@mx.customer.example\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n" +
		"--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n" +
		"--B\r\nContent-Type: " + ctype + "\r\n\r\nReporting-MTA: dns; mx.customer.example\r\n\r\n" +
		"Final-Recipient: rfc822; kim@customer.example\r\nOriginal-Recipient: rfc822;kim@customer.example\r\nAction: " + action +
		"\r\nStatus: " + status + "\r\nDiagnostic-Code: smtp; 550 5.1.1 <kim@customer.example>: Recipient address rejected\r\n\r\n" +
		"--B--\r\n"
}

// TestParseBounce covers what a return path receives: DSNs (failed,
// delayed, RFC 6533), plain bounces, and auto-replies that are no bounce.
func TestParseBounce(t *testing.T) {
	tests := []struct {
		name, raw, envFrom   string
		isBounce             bool
		action, status, diag string
	}{
		{"DSN failed", dsn("message/delivery-status", "failed", "5.1.1"), "", true, "failed", "5.1.1", "550 5.1.1"},
		{"DSN delayed", dsn("message/delivery-status", "delayed", "4.4.1"), "", true, "delayed", "4.4.1", ""},
		{"RFC 6533 global DSN", dsn("message/global-delivery-status", "failed", "5.2.2"), "", true, "failed", "5.2.2", ""},
		{"plain bounce from a mailer daemon", "From: Mail Delivery System <MAILER-DAEMON@x.example>\r\nSubject: failure\r\n\r\nNo such user\r\n", "x@y", true, "failed", "", ""},
		{"plain bounce from the null sender", "From: someone@x.example\r\nSubject: returned\r\n\r\nNo such user\r\n", "", true, "failed", "", ""},
		{"an out-of-office to the return path", "From: kim@customer.example\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\n\r\nAway\r\n", "", false, "", "", ""},
		{"a person writing to the return path", "From: kim@customer.example\r\nSubject: hi\r\n\r\nhello\r\n", "kim@customer.example", false, "", "", ""},
		{"unreadable mail is dropped, not a bounce", "\x00\x01 not mail", "", false, "", "", ""},
	}
	for _, tt := range tests {
		rep := parseBounce([]byte(tt.raw), tt.envFrom)
		if rep.isBounce != tt.isBounce {
			t.Errorf("%s: isBounce = %v", tt.name, rep.isBounce)
			continue
		}
		if !tt.isBounce {
			continue
		}
		f := rep.fieldsFor("kim@customer.example")
		if f.action != tt.action || f.status != tt.status || !strings.Contains(f.diagnostic, tt.diag) {
			t.Errorf("%s: fields %+v", tt.name, f)
		}
	}
}

// TestBounceTransactionKeepsRefusals: a transaction to a return path and an
// inbox hands the inbox's copy to the same code as any inbound mail, so a
// refusal there keeps its 5xx and its sentence instead of becoming a 451
// that the sender would retry for days.
func TestBounceTransactionKeepsRefusals(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) {
		c.Inboxes[0].BlockedSenders = []string{"spammer@bad.example"}
	})
	returnPath := "bounces+" + ts.srv.keys.BounceToken(999) + "@example.test"
	msg := "From: spammer@bad.example\r\nTo: support@example.test\r\nSubject: Offer\r\nMessage-ID: <offer@bad.example>\r\n\r\nBuy.\r\n"
	err := smtpSend(ts.mx, nil, "relay@bad.example", []string{returnPath, "support@example.test"}, msg)
	var refusal *smtp.SMTPError
	if !errors.As(err, &refusal) || refusal.Code != 550 || refusal.EnhancedCode != (smtp.EnhancedCode{5, 7, 1}) {
		t.Fatalf("a blocked sender's mail to a return path and the inbox: %v; want 550 5.7.1", err)
	}
	if _, err := ts.store.MessageByHeaderID(context.Background(), "offer@bad.example"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the blocked mail was stored: %v", err)
	}
}

// FuzzParseBounce: whatever arrives at a return path, parsing it ends, keeps
// the text it hands to the team bounded, and gives single-line fields.
func FuzzParseBounce(f *testing.F) {
	f.Add([]byte(dsn("message/delivery-status", "failed", "5.1.1")), "")
	f.Add([]byte(dsn("message/global-delivery-status", "delayed", "4.4.1")), "x@y")
	if b, err := os.ReadFile(filepath.Join("..", "testdata", "eml", "bounce-dsn.eml")); err == nil {
		f.Add(b, "")
	}
	f.Add([]byte("From: MAILER-DAEMON@x\r\nContent-Type: multipart/report; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822;\r\n\r\n\r\n--b--"), "")
	f.Fuzz(func(t *testing.T, raw []byte, envFrom string) {
		rep := parseBounce(raw, envFrom)
		if len(rep.text) > maxBounceDetail+len("\n[...]") {
			t.Fatalf("text of %d bytes kept", len(rep.text))
		}
		if !rep.isBounce && len(rep.recipients) > 0 {
			t.Fatalf("no bounce, but %d recipient blocks", len(rep.recipients))
		}
		for _, r := range rep.recipients {
			for _, v := range []string{r.final, r.original, r.action, r.status, r.diagnostic} {
				if strings.ContainsAny(v, "\r\n") {
					t.Fatalf("a field spans lines: %q", v)
				}
			}
		}
	})
}
