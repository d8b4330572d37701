package dkimsign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// writeEd25519Key writes a fresh Ed25519 key to file (through a rename when
// viaRename) and returns its DKIM record (RFC 8463 4).
func writeEd25519Key(t *testing.T, file string, viaRename bool) string {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	target := file
	if viaRename {
		target = file + ".new"
	}
	if err := os.WriteFile(target, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if viaRename {
		if err := os.Rename(target, file); err != nil {
			t.Fatal(err)
		}
	}
	return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
}

// verifiesWith reports whether signed carries a DKIM signature that record
// verifies.
func verifiesWith(t *testing.T, signed []byte, record string) bool {
	t.Helper()
	lookup := func(string) ([]string, error) { return []string{record}, nil }
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(signed), &dkim.VerifyOptions{LookupTXT: lookup})
	return err == nil && len(vs) == 1 && vs[0].Err == nil
}

// TestDKIMKeysReadOnceAndReloadRotated: an unchanged key file is read once
// (the same signer is handed out again); a key rotated by rename, or
// rewritten in place, signs the next message without a restart; a key file
// that disappears is an error, not a silent fallback to the old key.
func TestDKIMKeysReadOnceAndReloadRotated(t *testing.T) {
	file := filepath.Join(t.TempDir(), "dkim.pem")
	recA := writeEd25519Key(t, file, false)
	var keys Keys
	sign := func() ([]byte, *Signer) {
		t.Helper()
		s, err := keys.Signer("sg1", file)
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Sign([]byte(dkimMessage), "example.test")
		if err != nil {
			t.Fatal(err)
		}
		return out, s
	}
	signed, s1 := sign()
	if !verifiesWith(t, signed, recA) {
		t.Fatal("the first key's signature does not verify")
	}
	if _, s2 := sign(); s2 != s1 {
		t.Error("an unchanged key file was read and parsed again")
	}

	// Rotation by rename (what `mv new.pem dkim.pem` does).
	recB := writeEd25519Key(t, file, true)
	signed, s3 := sign()
	if s3 == s1 || !verifiesWith(t, signed, recB) || verifiesWith(t, signed, recA) {
		t.Fatal("the key rotated by rename is not used")
	}

	// Rewritten in place: the same size (Ed25519 PEM files all are) and
	// inode; only the modification time tells. It is set forward, as the
	// clock would have moved between two real rotations.
	recC := writeEd25519Key(t, file, false)
	later := time.Now().Add(time.Second)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	signed, s4 := sign()
	if s4 == s3 || !verifiesWith(t, signed, recC) || verifiesWith(t, signed, recB) {
		t.Fatal("the key rewritten in place is not used")
	}

	// A selector change is a new signer even for the same file.
	s5, err := keys.Signer("sg2", file)
	if err != nil || s5.Selector != "sg2" {
		t.Fatalf("selector change: %+v, %v", s5, err)
	}

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Signer("sg2", file); err == nil {
		t.Error("a removed key file still signs with the old key")
	}
}
