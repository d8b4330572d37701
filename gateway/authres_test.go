package gateway

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRemoveForgedAuthResults(t *testing.T) {
	const host = "mail.example.test"
	body := "\r\nbody\r\nAuthentication-Results: mail.example.test; dkim=pass\r\n"
	tests := []struct {
		name, header, want string
		removed            int
	}{
		{"ours", "Authentication-Results: mail.example.test; dkim=pass header.d=bank.example\r\nFrom: a@x\r\n",
			"From: a@x\r\n", 1},
		{"case", "AUTHENTICATION-RESULTS: MAIL.Example.TEST; spf=pass\r\nFrom: a@x\r\n", "From: a@x\r\n", 1},
		{"trailing dot", "Authentication-Results: mail.example.test.; spf=pass\r\nFrom: a@x\r\n", "From: a@x\r\n", 1},
		{"version", "Authentication-Results: mail.example.test 1; spf=pass\r\nFrom: a@x\r\n", "From: a@x\r\n", 1},
		{"comment first", "Authentication-Results: (from (nested) us)  mail.example.test; spf=pass\r\nFrom: a@x\r\n", "From: a@x\r\n", 1},
		{"quoted", "Authentication-Results: \"mail.example.test\"; spf=pass\r\nFrom: a@x\r\n", "From: a@x\r\n", 1},
		{"folded", "From: a@x\r\nAuthentication-Results:\r\n\tmail.example.test;\r\n\tdkim=pass\r\nSubject: s\r\n", "From: a@x\r\nSubject: s\r\n", 1},
		{"space before colon", "Authentication-Results : mail.example.test; spf=pass\r\n", "", 1},
		{"no results", "Authentication-Results: mail.example.test; none\r\nTo: b@y\r\n", "To: b@y\r\n", 1},
		{"two forged, one foreign kept", "Authentication-Results: mail.example.test; a=1\r\nAuthentication-Results: mx.google.com; dkim=pass\r\nAuthentication-Results: Mail.Example.Test; b=2\r\n",
			"Authentication-Results: mx.google.com; dkim=pass\r\n", 2},
		{"another host", "Authentication-Results: mx.customer.example; spf=pass\r\n", "Authentication-Results: mx.customer.example; spf=pass\r\n", 0},
		{"a longer name", "Authentication-Results: mail.example.test.evil.example; spf=pass\r\n", "Authentication-Results: mail.example.test.evil.example; spf=pass\r\n", 0},
		{"a prefix of ours", "Authentication-Results: example.test; spf=pass\r\n", "Authentication-Results: example.test; spf=pass\r\n", 0},
		{"ARC is not ours to strip", "ARC-Authentication-Results: i=1; mail.example.test; spf=pass\r\n", "ARC-Authentication-Results: i=1; mail.example.test; spf=pass\r\n", 0},
		{"other field naming us", "X-Authentication-Results: mail.example.test; spf=pass\r\n", "X-Authentication-Results: mail.example.test; spf=pass\r\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := removeForgedAuthResults([]byte(tt.header+body), host)
			if string(got) != tt.want+body || n != tt.removed {
				t.Errorf("got %q (%d removed), want %q (%d)", got, n, tt.want+body, tt.removed)
			}
		})
	}
	// No header, no body: nothing to do, nothing broken.
	for _, raw := range []string{"", "\r\n", "\r\nAuthentication-Results: mail.example.test; x\r\n", "Authentication-Results: mail.example.test; x"} {
		got, _ := removeForgedAuthResults([]byte(raw), host)
		if strings.HasPrefix(raw, "\r\n") || raw == "" {
			if string(got) != raw {
				t.Errorf("%q became %q", raw, got)
			}
		} else if string(got) != "" {
			t.Errorf("%q became %q", raw, got)
		}
	}
}

// TestMXRemovesForgedAuthResults: over a real MX socket, a message carrying
// an Authentication-Results in our name is stored with ours only; a foreign
// one stays.
func TestMXRemovesForgedAuthResults(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	host := ts.srv.cfg().Server.Hostname
	msg := "Authentication-Results: " + strings.ToUpper(host) + "; dkim=pass header.d=bank.example; dmarc=pass\r\n" +
		"Authentication-Results: mx.relay.example; spf=pass\r\n" + customerMail("forged-ar@customer.example", "Urgent transfer")
	if err := smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m, err := ts.store.MessageByHeaderID(ctx, "forged-ar@customer.example")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ts.store.MessageRaw(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored := string(raw)
	if n := strings.Count(strings.ToLower(stored), "authentication-results: "+host); n != 1 {
		t.Errorf("%d Authentication-Results in our name, want 1 (ours):\n%s", n, stored)
	}
	if !strings.HasPrefix(string(afterTrace(t, raw)), "Authentication-Results: "+host+";") || strings.Contains(stored, "bank.example") {
		t.Errorf("the forged results survived, or ours is not first:\n%s", stored)
	}
	if !strings.Contains(stored, "Authentication-Results: mx.relay.example; spf=pass\r\n") {
		t.Errorf("another server's results were removed:\n%s", stored)
	}
}

// FuzzRemoveForgedAuthResults: whatever arrives, nothing claiming our name
// is left (a second pass removes nothing), the body is untouched and only
// whole header fields are dropped.
func FuzzRemoveForgedAuthResults(f *testing.F) {
	f.Add([]byte("Authentication-Results: mail.example.test; dkim=pass\r\nFrom: a@x\r\n\r\nbody\r\n"))
	f.Add([]byte("From: a@x\r\nAuthentication-Results:\r\n\t(c) \"MAIL.example.test.\" 1;\r\n\tspf=pass\r\n\r\n"))
	f.Add([]byte("Authentication-Results: mx.google.com; dkim=pass\nX: y\n\nbody"))
	f.Add([]byte("\r\nAuthentication-Results: mail.example.test; dkim=pass\r\n"))
	const host = "mail.example.test"
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, n := removeForgedAuthResults(raw, host)
		if again, m := removeForgedAuthResults(out, host); m != 0 || !bytes.Equal(again, out) {
			t.Fatalf("a second pass over %q removed %d more", out, m)
		}
		if n == 0 && !bytes.Equal(out, raw) {
			t.Fatalf("nothing removed but %q became %q", raw, out)
		}
		if body := raw[headerEnd(raw):]; !bytes.HasSuffix(out, body) || len(out) > len(raw) {
			t.Fatalf("%q became %q: the body changed or bytes were added", raw, out)
		}
	})
}
