package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-sasl"

	"github.com/supportgate/supportgate/config"
)

// TestSubmissionSignsWithRotatedDKIMKey: the daemon keeps its DKIM signer
// between messages, and a key rotated on disk (rename over the file) signs
// the next reply without a restart (RFC 6376 3.1: a new selector's key or a
// new key for the selector).
func TestSubmissionSignsWithRotatedDKIMKey(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "dkim.pem")
	writeKey := func() string {
		t.Helper()
		pub, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile+".new", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(keyFile+".new", keyFile); err != nil {
			t.Fatal(err)
		}
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	}
	recA := writeKey()
	ts := newTestServer(t, nil, func(c *config.Config) {
		c.DKIM.Selector, c.DKIM.PrivateKeyFile = "sg1", keyFile
	})
	if err := smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"}, customerMail("gina-1@customer.example", "Printer")); err != nil {
		t.Fatal(err)
	}
	agent := sasl.NewPlainClient("", "alice@example.test", "demo-alice")
	reply := func(n string) []byte {
		t.Helper()
		msg := "From: alice@example.test\r\nTo: gina@customer.example\r\nSubject: Re: Printer\r\nIn-Reply-To: <gina-1@customer.example>\r\n\r\nReply " + n + "\r\n"
		if err := smtpSend(ts.submission, agent, "alice@example.test", []string{"gina@customer.example"}, msg); err != nil {
			t.Fatal(err)
		}
		q, err := ts.store.PendingDeliveries(context.Background(), 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range q {
			if bytes.Contains(d.Raw, []byte("Reply "+n)) {
				return d.Raw
			}
		}
		t.Fatalf("reply %s is not queued", n)
		return nil
	}
	verifies := func(raw []byte, record string) bool {
		lookup := func(domain string) ([]string, error) {
			if domain != "sg1._domainkey.example.test" {
				t.Errorf("looked up %q", domain)
			}
			return []string{record}, nil
		}
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{LookupTXT: lookup})
		return err == nil && len(vs) == 1 && vs[0].Err == nil
	}
	if raw := reply("1"); !verifies(raw, recA) {
		t.Fatalf("the first reply is not signed with the configured key:\n%s", raw)
	}
	recB := writeKey()
	if raw := reply("2"); !verifies(raw, recB) || verifies(raw, recA) {
		t.Fatalf("the reply after the rotation is not signed with the new key:\n%s", raw)
	}
}
