package main

// Helpers for the outbound end-to-end tests: DKIM keys with their published
// records, verification with go-msgauth, and a self-signed certificate for
// a peer on 127.0.0.1.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// dkimKey writes a DKIM private key of kind "rsa" or "ed25519" as PEM into
// dir and returns the file and the TXT record to publish at
// <selector>._domainkey.<domain> (RFC 6376 3.6.1).
func dkimKey(t *testing.T, dir, kind string) (file, record string) {
	t.Helper()
	var der, pub []byte
	var pemType, k string
	switch kind {
	case "rsa":
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		der, pemType, k = x509.MarshalPKCS1PrivateKey(key), "RSA PRIVATE KEY", "rsa"
		if pub, err = x509.MarshalPKIXPublicKey(&key.PublicKey); err != nil {
			t.Fatal(err)
		}
	case "ed25519":
		edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if der, err = x509.MarshalPKCS8PrivateKey(edKey); err != nil {
			t.Fatal(err)
		}
		// RFC 8463 4.2: the record holds the raw 32-byte public key.
		pemType, k, pub = "PRIVATE KEY", "ed25519", edPub
	default:
		t.Fatalf("unknown DKIM key kind %q", kind)
	}
	file = filepath.Join(dir, "dkim-"+kind+".pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, "v=DKIM1; k=" + k + "; p=" + base64.StdEncoding.EncodeToString(pub)
}

// withDKIM adds a [dkim] table (selector sg1, keyFile) to the configuration.
func withDKIM(t *testing.T, cfg, keyFile string) {
	t.Helper()
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "\n[dkim]\nselector = \"sg1\"\nprivate_key_file = %q\n", keyFile); err != nil {
		t.Fatal(err)
	}
}

// verifyDKIM verifies raw with go-msgauth, the key record of
// sg1._domainkey.example.test served by a custom TXT lookup, and fails the
// test unless exactly one signature, of d=example.test, verifies.
func verifyDKIM(t *testing.T, raw []byte, record string) {
	t.Helper()
	lookup := func(name string) ([]string, error) {
		if name != "sg1._domainkey.example.test" {
			return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
		}
		return []string{record}, nil
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil {
		t.Fatalf("DKIM verification: %v", err)
	}
	if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.test" {
		t.Fatalf("DKIM verification: %+v (err %v), want one valid signature of example.test\n%s", vs, func() error {
			if len(vs) > 0 {
				return vs[0].Err
			}
			return nil
		}(), raw)
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and localhost
// (its own CA) into dir and returns the files and the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, cert tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "relay.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}
