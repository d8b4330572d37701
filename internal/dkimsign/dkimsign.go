// Package dkimsign signs the mail supportgate sends with DKIM (RFC 6376):
// submission signs an agent's reply before it is recorded and queued, so
// every attempt sends the same bytes, and the admin commands check and
// describe the key. It owns the key files' parsing and their reload on
// rotation; it imports no other supportgate package but opensslrsa
// (DESIGN.md §12: gateway and the admin commands use it, the queue never
// signs).
package dkimsign

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/textproto"
	"os"
	"strings"
	"sync"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/supportgate/supportgate/internal/opensslrsa"
)

// signedHeaders are the fields a DKIM signature covers when present (RFC
// 6376 5.4.1): what the recipient reads and what threads the reply.
var signedHeaders = []string{
	"From", "Reply-To", "Subject", "Date", "To", "Cc", "Message-ID", "In-Reply-To", "References",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
	"Thread-Index", "Thread-Topic", "Auto-Submitted",
}

// Signer signs outgoing mail with one selector and key (RFC 6376).
type Signer struct {
	Selector string
	// Key is an *opensslrsa.Signer for RSA when the system's OpenSSL 3 is
	// there (3.7x faster than Go's crypto/rsa, same signatures), else the
	// *rsa.PrivateKey; or an ed25519.PrivateKey.
	Key crypto.Signer
	// Engine names what signs: "openssl", "go" (RSA without OpenSSL: the
	// reason is in EngineNote) or "ed25519".
	Engine, EngineNote string
}

// Load reads a PEM private key (PKCS#8, PKCS#1 RSA, or an Ed25519 seed
// in PKCS#8) for selector.
func Load(selector, keyFile string) (*Signer, error) {
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("dkim: reading the private key: %w", err)
	}
	key, err := ParseKey(keyFile, data)
	if err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		fast, ferr := opensslrsa.NewSigner(k)
		if ferr != nil {
			return &Signer{Selector: selector, Key: k, Engine: "go", EngineNote: ferr.Error()}, nil
		}
		return &Signer{Selector: selector, Key: fast, Engine: "openssl"}, nil
	default:
		return &Signer{Selector: selector, Key: k, Engine: "ed25519"}, nil
	}
}

// ParseKey parses data, the contents of the file name, as a DKIM
// private key: PEM, PKCS#8 ("PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY"),
// RSA of 1024 bits or more, or Ed25519. It returns an *rsa.PrivateKey or
// an ed25519.PrivateKey. Its errors are sentences that name the file and
// say what it holds instead (a certificate, a public key), never the
// parser's ASN.1 detail alone.
func ParseKey(name string, data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s holds no PEM block; a DKIM private key starts with \"-----BEGIN PRIVATE KEY-----\" (`supportgate dkim-keygen FILE` makes one)", name)
	}
	var key any
	var err error
	switch block.Type {
	case "CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE":
		return nil, fmt.Errorf("%s holds a certificate, not a private key; DKIM signs with a private key of its own, not the TLS certificate (`supportgate dkim-keygen FILE` makes one)", name)
	case "PUBLIC KEY", "RSA PUBLIC KEY":
		return nil, fmt.Errorf("%s holds a public key; DKIM signs with the private key (the public key goes into DNS)", name)
	case "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%s holds an encrypted private key; supportgate needs it unencrypted (openssl pkcs8 -in FILE -out NEW), readable by supportgate only", name)
	case "EC PRIVATE KEY":
		return nil, fmt.Errorf("%s holds an ECDSA key, which DKIM does not define; use RSA or Ed25519", name)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%s holds a PEM block of type %q, not a private key (\"PRIVATE KEY\" or \"RSA PRIVATE KEY\")", name, block.Type)
	}
	if err != nil && strings.Contains(err.Error(), "-bit keys are insecure") {
		// Go itself refuses RSA keys under 1024 bits (GODEBUG rsa1024min).
		return nil, fmt.Errorf("%s: the RSA key is too short: fewer than 1024 bits (RFC 8301 3.2 asks for 1024 at least; dkim-keygen makes 2048)", name)
	}
	if err != nil {
		// The parser's own words only when they are words: an ASN.1
		// structure error says nothing to an admin.
		detail := ""
		if !strings.Contains(err.Error(), "asn1:") {
			detail = " (" + err.Error() + ")"
		}
		return nil, fmt.Errorf("%s: its %q block is damaged: it cannot be read as a private key%s", name, block.Type, detail)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 1024 {
			return nil, fmt.Errorf("%s: an RSA key of %d bits is too short (RFC 8301 3.2 asks for 1024 at least)", name, k.N.BitLen())
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("%s: the key is neither RSA nor Ed25519, the kinds DKIM signs with", name)
}

// Keys hands out the signer of a key file and keeps it between
// messages: the file is read and parsed again only when it changed (its
// size, modification time or identity, so that a rotation by rename is
// seen), so that a rotated key is used from the next message on without a
// restart, and an unchanged one costs a stat per message instead of a read
// and a parse (2.3% of the daemon's CPU in the outbound benchmark, issue 8).
// A key file that cannot be read or parsed is an error, as for Load:
// the last good key is not used in its place, since its DNS record may be
// what the rotation removed. The zero value is ready for use; it is safe
// for concurrent use.
type Keys struct {
	mu       sync.Mutex
	selector string
	file     string
	info     os.FileInfo // of file when signer was read
	signer   *Signer
}

// Signer returns the signer of keyFile for selector, reading the file only
// when it is not the one read last time.
func (k *Keys) Signer(selector, keyFile string) (*Signer, error) {
	st, err := os.Stat(keyFile)
	if err != nil {
		return nil, fmt.Errorf("dkim: reading the private key: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.signer != nil && k.selector == selector && k.file == keyFile && sameFile(k.info, st) {
		return k.signer, nil
	}
	signer, err := Load(selector, keyFile)
	if err != nil {
		k.signer = nil
		return nil, err
	}
	// st was taken before the read: a change during it is seen at the next
	// message, never missed.
	k.selector, k.file, k.info, k.signer = selector, keyFile, st, signer
	return signer, nil
}

// sameFile reports whether b describes the file a described, unchanged.
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// Sign returns raw with a DKIM-Signature for domain prepended. The
// signature is computed once, before the message is queued, so every retry
// sends the same bytes. Canonicalization is relaxed/relaxed (RFC 6376 3.4),
// which survives the whitespace changes relays make; From is signed twice
// so that no second From can be added (RFC 6376 8.15).
func (s *Signer) Sign(raw []byte, domain string) ([]byte, error) {
	keys, err := presentHeaders(raw)
	if err != nil {
		return nil, err
	}
	opts := &dkim.SignOptions{
		Domain:                 domain,
		Selector:               s.Selector,
		Signer:                 s.Key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             append(keys, "From"),
	}
	var out bytes.Buffer
	if err := dkim.Sign(&out, bytes.NewReader(raw), opts); err != nil {
		return nil, fmt.Errorf("dkim: signing: %w", err)
	}
	return out.Bytes(), nil
}

// presentHeaders returns the signedHeaders that raw has, each once per
// occurrence.
func presentHeaders(raw []byte) ([]string, error) {
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw))).ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return nil, fmt.Errorf("dkim: reading the header: %w", err)
	}
	var keys []string
	for _, k := range signedHeaders {
		for range h.Values(k) {
			keys = append(keys, k)
		}
	}
	if h.Get("From") == "" {
		return nil, errors.New("dkim: the message has no From header")
	}
	return keys, nil
}
