package dkimsign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/supportgate/supportgate/internal/opensslrsa"
)

const dkimMessage = "From: \"Alice via Support\" <support@example.test>\r\nTo: customer@example.com\r\n" +
	"Subject: Your printer\r\nMessage-ID: <sg.1.2.abc@mail.example.test>\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
	"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nX-Mozilla-Noise: 1\r\n\r\nHello,\r\n\r\nit works now.\r\n"

// TestDKIMSignaturesVerify signs with RSA and Ed25519 keys read from PEM
// files, then verifies with go-msgauth against the published key records.
func TestDKIMSignaturesVerify(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(edKey)
	for _, tc := range []struct {
		name, pemType string
		der           []byte
		record        string
		engine        string
	}{
		{"rsa-pkcs1", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey), "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(rsaPub), "openssl"},
		{"ed25519-pkcs8", "PRIVATE KEY", pkcs8, "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(edPub), "ed25519"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "dkim.pem")
			if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: tc.pemType, Bytes: tc.der}), 0o600); err != nil {
				t.Fatal(err)
			}
			signer, err := Load("sg1", file)
			if err != nil {
				t.Fatal(err)
			}
			// RSA signs through OpenSSL where it is (always under CI,
			// which installs libssl3), else through Go's crypto/rsa.
			want := tc.engine
			if want == "openssl" && opensslrsa.Available() != nil && os.Getenv("CI") != "true" {
				want = "go"
			}
			if signer.Engine != want {
				t.Errorf("signing engine %q (%s), want %q", signer.Engine, signer.EngineNote, want)
			}
			signed, err := signer.Sign([]byte(dkimMessage), "example.test")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasSuffix(signed, []byte(dkimMessage)) {
				t.Fatal("signing changed the message instead of prepending a header")
			}
			lookup := func(domain string) ([]string, error) {
				if domain != "sg1._domainkey.example.test" {
					t.Errorf("looked up %q", domain)
				}
				return []string{tc.record}, nil
			}
			vs, err := dkim.VerifyWithOptions(bytes.NewReader(signed), &dkim.VerifyOptions{LookupTXT: lookup})
			if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.test" {
				t.Fatalf("verification: %+v, %v", vs, err)
			}
			for _, h := range []string{"From", "To", "Subject", "Message-Id", "Date"} {
				found := false
				for _, k := range vs[0].HeaderKeys {
					found = found || http1Canon(k) == h
				}
				if !found {
					t.Errorf("%s is not signed (h=%v)", h, vs[0].HeaderKeys)
				}
			}
			// A changed body or subject no longer verifies.
			for _, tamper := range [][2]string{{"it works now", "it works NOT"}, {"Your printer", "Your invoice"}} {
				bad := bytes.Replace(signed, []byte(tamper[0]), []byte(tamper[1]), 1)
				vs, err := dkim.VerifyWithOptions(bytes.NewReader(bad), &dkim.VerifyOptions{LookupTXT: lookup})
				if err != nil || len(vs) != 1 || vs[0].Err == nil {
					t.Errorf("tampered %q verified: %+v, %v", tamper[0], vs, err)
				}
			}
		})
	}
}

func TestLoadDKIMRefusesBadKeys(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"none.pem": []byte("not a key"),
		"cert.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}),
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o600)
		if _, err := Load("sg1", p); err == nil {
			t.Errorf("Load(%s) succeeded", name)
		}
	}
	if _, err := Load("sg1", filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

func http1Canon(k string) string {
	switch k {
	case "message-id", "Message-ID":
		return "Message-Id"
	}
	if k == "" {
		return k
	}
	b := []byte(k)
	up := true
	for i, c := range b {
		if up && c >= 'a' && c <= 'z' {
			b[i] = c - 32
		} else if !up && c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
		up = c == '-'
	}
	return string(b)
}
