// Package opensslrsa signs RSA PKCS #1 v1.5 SHA-256 digests (what DKIM's
// rsa-sha256 needs, RFC 6376 3.3.1) with the system's OpenSSL 3 libcrypto,
// loaded at run time with dlopen.
//
// Why: RSA-2048 signing is where an outbound reply's CPU goes. Go's
// constant-time crypto/rsa takes about 1 ms per signature on the benchmark
// machine, OpenSSL 0.25 ms, and DKIM signing was 44-49% of the daemon's CPU
// in the outbound benchmark (issue 8). A maintained binding
// (github.com/golang-fips/openssl) is not reachable from our module proxy;
// this is the smallest binding that does the one operation, and it can be
// swapped for that one without changing callers.
//
// Nothing is needed at build time but cgo and the C library: no OpenSSL
// headers and no link to libcrypto. When libcrypto.so.3 cannot be loaded,
// NewSigner returns an error and callers keep Go's signer. PKCS #1 v1.5
// signatures are deterministic, so both give the same bytes (the tests
// check it).
package opensslrsa

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

// Opaque OpenSSL types; only pointers cross this file.
typedef struct sg_evp_pkey sg_evp_pkey;
typedef struct sg_evp_pkey_ctx sg_evp_pkey_ctx;
typedef struct sg_evp_md sg_evp_md;

enum {
	SG_EVP_PKEY_RSA = 6,      // NID_rsaEncryption
	SG_RSA_PKCS1_PADDING = 1, // RSA_PKCS1_PADDING
};

static sg_evp_pkey *(*p_d2i_PrivateKey)(int, sg_evp_pkey **, const unsigned char **, long);
static void (*p_EVP_PKEY_free)(sg_evp_pkey *);
static sg_evp_pkey_ctx *(*p_EVP_PKEY_CTX_new)(sg_evp_pkey *, void *);
static void (*p_EVP_PKEY_CTX_free)(sg_evp_pkey_ctx *);
static int (*p_EVP_PKEY_sign_init)(sg_evp_pkey_ctx *);
static int (*p_EVP_PKEY_CTX_set_rsa_padding)(sg_evp_pkey_ctx *, int);
static int (*p_EVP_PKEY_CTX_set_signature_md)(sg_evp_pkey_ctx *, const sg_evp_md *);
static const sg_evp_md *(*p_EVP_sha256)(void);
static int (*p_EVP_PKEY_sign)(sg_evp_pkey_ctx *, unsigned char *, size_t *, const unsigned char *, size_t);
static void (*p_ERR_clear_error)(void);

// sg_load opens the library and resolves every function; 0 on success.
// Called once (sync.Once on the Go side).
static int sg_load(const char *name) {
	void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) return -1;
#define SG_SYM(f) if ((*(void **)(&p_##f) = dlsym(lib, #f)) == NULL) return -2;
	SG_SYM(d2i_PrivateKey)
	SG_SYM(EVP_PKEY_free)
	SG_SYM(EVP_PKEY_CTX_new)
	SG_SYM(EVP_PKEY_CTX_free)
	SG_SYM(EVP_PKEY_sign_init)
	SG_SYM(EVP_PKEY_CTX_set_rsa_padding)
	SG_SYM(EVP_PKEY_CTX_set_signature_md)
	SG_SYM(EVP_sha256)
	SG_SYM(EVP_PKEY_sign)
	SG_SYM(ERR_clear_error)
#undef SG_SYM
	return 0;
}

// sg_key parses a PKCS #1 RSAPrivateKey DER and wipes the buffer.
static sg_evp_pkey *sg_key(unsigned char *der, long len) {
	const unsigned char *p = der;
	sg_evp_pkey *k = p_d2i_PrivateKey(SG_EVP_PKEY_RSA, NULL, &p, len);
	explicit_bzero(der, (size_t)len);
	if (k == NULL) p_ERR_clear_error();
	return k;
}

static void sg_key_free(sg_evp_pkey *k) { p_EVP_PKEY_free(k); }

// sg_sign signs a SHA-256 digest with PKCS #1 v1.5 padding (RFC 8017
// 8.2.1) into sig (*siglen bytes of room; set to the signature's length).
// One call, so that OpenSSL's thread-local error queue is cleared on the
// thread that filled it. 1 on success.
static int sg_sign(sg_evp_pkey *k, const unsigned char *digest, size_t dlen, unsigned char *sig, size_t *siglen) {
	sg_evp_pkey_ctx *ctx = p_EVP_PKEY_CTX_new(k, NULL);
	if (ctx == NULL) { p_ERR_clear_error(); return 0; }
	int ok = p_EVP_PKEY_sign_init(ctx) == 1
		&& p_EVP_PKEY_CTX_set_rsa_padding(ctx, SG_RSA_PKCS1_PADDING) == 1
		&& p_EVP_PKEY_CTX_set_signature_md(ctx, p_EVP_sha256()) == 1
		&& p_EVP_PKEY_sign(ctx, sig, siglen, digest, dlen) == 1;
	p_EVP_PKEY_CTX_free(ctx);
	if (!ok) p_ERR_clear_error();
	return ok;
}
*/
import "C"

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"unsafe"
)

// library is the shared object NewSigner loads: OpenSSL 3's ABI.
const library = "libcrypto.so.3"

// loaded is the outcome of loading library. The library is process-wide
// state by nature (dlopen), so it is loaded once per process.
var loaded = sync.OnceValue(func() error { return load(library) })

func load(name string) error {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	switch C.sg_load(cname) {
	case 0:
		return nil
	case -1:
		return fmt.Errorf("opensslrsa: %s cannot be loaded", name)
	}
	return fmt.Errorf("opensslrsa: %s lacks a function this package needs (not OpenSSL 3?)", name)
}

// Available reports whether OpenSSL can be used, and why not.
func Available() error { return loaded() }

// Signer is an RSA private key held by OpenSSL. It signs SHA-256 digests
// with PKCS #1 v1.5 there; any other hash or padding goes to Go's
// crypto/rsa with the same key. It is safe for concurrent use: each
// signature has its own OpenSSL context, and the key is only read.
type Signer struct {
	goKey *rsa.PrivateKey
	pkey  *C.sg_evp_pkey // freed by a cleanup when the Signer is collected
}

// NewSigner hands key to OpenSSL. It fails when libcrypto.so.3 is not there
// or does not take the key; the caller then signs with key itself.
func NewSigner(key *rsa.PrivateKey) (*Signer, error) {
	if err := loaded(); err != nil {
		return nil, err
	}
	der := x509.MarshalPKCS1PrivateKey(key)
	cder := C.CBytes(der)
	clear(der)
	pkey := C.sg_key((*C.uchar)(cder), C.long(len(der)))
	C.free(cder) // wiped by sg_key
	if pkey == nil {
		return nil, errors.New("opensslrsa: OpenSSL refused the RSA key")
	}
	s := &Signer{goKey: key, pkey: pkey}
	runtime.AddCleanup(s, func(p *C.sg_evp_pkey) { C.sg_key_free(p) }, pkey)
	return s, nil
}

// Public implements crypto.Signer: the *rsa.PublicKey, as go-msgauth's DKIM
// signer expects.
func (s *Signer) Public() crypto.PublicKey { return &s.goKey.PublicKey }

// Sign implements crypto.Signer. rand is not used by OpenSSL: PKCS #1 v1.5
// signing is deterministic, and OpenSSL blinds RSA with its own generator.
func (s *Signer) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if _, pss := opts.(*rsa.PSSOptions); pss || opts.HashFunc() != crypto.SHA256 || len(digest) != crypto.SHA256.Size() {
		return s.goKey.Sign(rand, digest, opts)
	}
	sig := make([]byte, s.goKey.Size())
	n := C.size_t(len(sig))
	ok := C.sg_sign(s.pkey, (*C.uchar)(unsafe.Pointer(&digest[0])), C.size_t(len(digest)), (*C.uchar)(unsafe.Pointer(&sig[0])), &n)
	runtime.KeepAlive(s) // the cleanup must not free pkey during the call
	if ok != 1 || int(n) != len(sig) {
		return nil, errors.New("opensslrsa: OpenSSL failed to sign")
	}
	return sig, nil
}
