package admin

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/supportgate/supportgate/internal/dkimsign"
)

// dkimRSABits is the size of the RSA keys dkim-keygen makes: 2048 bits,
// what RFC 8301 recommends and what fits one DNS TXT record.
const dkimRSABits = 2048

// GenerateDKIMKey writes a new DKIM private key of kind "rsa" (2048 bits)
// or "ed25519" to file, PEM PKCS#8 with mode 0600, and returns the DKIM
// TXT record of its public key. An existing file is never overwritten.
func GenerateDKIMKey(kind, file string) (record string, err error) {
	var key crypto.Signer
	switch kind {
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, dkimRSABits)
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return "", fmt.Errorf("the key type is %q; it must be rsa or ed25519", kind)
	}
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	record, err = DKIMRecord(key.Public())
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("%s exists; dkim-keygen never overwrites a key (its record may be published): choose another file name, e.g. for a new selector", file)
	}
	if err != nil {
		return "", fmt.Errorf("creating %s: %s", file, reason(err))
	}
	_, err = f.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
		return "", fmt.Errorf("writing %s: %w", file, err)
	}
	return record, nil
}

// DKIMRecord returns the DKIM TXT record (RFC 6376 3.6.1, RFC 8463) that
// publishes pub: "v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo, base64>" or
// "v=DKIM1; k=ed25519; p=<the 32 bytes, base64>".
func DKIMRecord(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k), nil
	}
	return "", fmt.Errorf("a %T key has no DKIM record", pub)
}

// DKIMRecordOfFile reads a DKIM private key file and returns its record.
func DKIMRecordOfFile(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s cannot be read: %s", file, reason(err))
	}
	key, err := dkimsign.ParseKey(file, data)
	if err != nil {
		return "", err
	}
	return DKIMRecord(key.Public())
}
