package opensslrsa

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"testing"
)

// needOpenSSL skips where libcrypto.so.3 is missing, but under CI (which
// installs libssl3) a missing library is a failure.
func needOpenSSL(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and OpenSSL is not available: %v", err)
		}
		t.Skip(err)
	}
}

// testKeys are generated once: 2048 bits as the benchmark's DKIM key, and
// 1024 and 3072 for other sizes.
var testKeys = sync.OnceValue(func() map[int]*rsa.PrivateKey {
	keys := map[int]*rsa.PrivateKey{}
	for _, bits := range []int{1024, 2048, 3072} {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			panic(err)
		}
		keys[bits] = k
	}
	return keys
})

// TestSignaturesEqualGo: PKCS #1 v1.5 is deterministic, so OpenSSL's
// signature of a digest is byte for byte Go's, for every key size, and it
// verifies with crypto/rsa.
func TestSignaturesEqualGo(t *testing.T) {
	needOpenSSL(t)
	for bits, key := range testKeys() {
		s, err := NewSigner(key)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			digest := sha256.Sum256([]byte(fmt.Sprintf("message %d of %d bits", i, bits)))
			got, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
			if err != nil {
				t.Fatalf("%d bits: %v", bits, err)
			}
			want, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%d bits: OpenSSL's signature differs from Go's", bits)
			}
			if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], got); err != nil {
				t.Fatalf("%d bits: %v", bits, err)
			}
		}
		if pub, ok := s.Public().(*rsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
			t.Fatalf("%d bits: Public() is %T, not the key's public half", bits, s.Public())
		}
	}
}

// TestOtherHashesGoToGo: a SHA-1 digest (rsa-sha1, RFC 8301 forbids it for
// signing but the interface allows it) and PSS are signed by crypto/rsa and
// verify.
func TestOtherHashesGoToGo(t *testing.T) {
	needOpenSSL(t)
	key := testKeys()[2048]
	s, err := NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	d1 := sha1.Sum([]byte("x"))
	sig, err := s.Sign(rand.Reader, d1[:], crypto.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA1, d1[:], sig); err != nil {
		t.Fatal(err)
	}
	d2 := sha256.Sum256([]byte("y"))
	pss := &rsa.PSSOptions{Hash: crypto.SHA256}
	sig, err = s.Sign(rand.Reader, d2[:], pss)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPSS(&key.PublicKey, crypto.SHA256, d2[:], sig, pss); err != nil {
		t.Fatal(err)
	}
	// A SHA-256 "digest" of the wrong length is not handed to OpenSSL.
	if _, err := s.Sign(rand.Reader, []byte("short"), crypto.SHA256); err == nil {
		t.Fatal("a 5-byte SHA-256 digest was signed")
	}
}

// TestConcurrentSigning: one Signer used by many goroutines at once (the
// submission sessions share the DKIM key) gives correct signatures; run with
// -race.
func TestConcurrentSigning(t *testing.T) {
	needOpenSSL(t)
	key := testKeys()[2048]
	s, err := NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				d := sha256.Sum256([]byte(fmt.Sprintf("%d/%d", g, i)))
				sig, err := s.Sign(nil, d[:], crypto.SHA256)
				if err == nil {
					err = rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, d[:], sig)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestMissingLibrary: a library that is not there is an error naming it,
// not a crash, so that callers fall back to Go.
func TestMissingLibrary(t *testing.T) {
	err := load("libcrypto-that-does-not-exist.so.0")
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("libcrypto-that-does-not-exist.so.0")) {
		t.Fatalf("load of a missing library: %v", err)
	}
}

// BenchmarkSign compares OpenSSL and Go on the benchmark's DKIM key size.
func BenchmarkSign(b *testing.B) {
	needOpenSSL(b)
	key := testKeys()[2048]
	s, err := NewSigner(key)
	if err != nil {
		b.Fatal(err)
	}
	d := sha256.Sum256([]byte("bench"))
	b.Run("openssl", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Sign(nil, d[:], crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
