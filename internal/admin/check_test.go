package admin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/supportgate/supportgate/config"
)

// demoHash is alice's password hash in config/example.toml (demo-alice).
const demoHash = "$2a$10$6v69aQ67.kjlIBsnMzVu.u8m.bGCfyfAETgCQ9s951d0ww4vQQVEe"

// ownHash is a bcrypt hash of a password that is not public.
const ownHash = "$2a$04$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"

// rsa512 is an RSA key too short for DKIM (openssl genrsa -traditional
// 512; Go refuses to make one).
const rsa512 = `-----BEGIN RSA PRIVATE KEY-----
MIIBOwIBAAJBANvhzKl/cTQLMOWGmW5a1hc3piFFdKbt34UhVohpF0SBZLA9xIeo
8c3KHYcIMgP29SQkjTp02IAaF/8XvQ+uhbkCAwEAAQJBAIzzSvngixW8ksSfqt01
94V8k89CMcwMMjuqKklZbKPpSgzuw1voonmNWvsYHhAXO0ZNqgnzdZnt0I52O1c8
+4ECIQDvPgpAnrzwf+JxpWGFFdloSm9ickFr+dVoq4BwlK51EQIhAOtImd/e+iPX
iXj/LiX9wxmcPELWAxqkUEKESu2niWYpAiBeClP7XKpGGu7G30w7BQCldwTbfK/s
opLZhviAyGDfEQIhAMI94NMiyY23joX23cl9k4lcI5/mARAIoT4Y66cCDnvpAiAf
WUgyFreXxIgL7Q9jCTA0MXyYq+rDQEuxMQnU6P6mFA==
-----END RSA PRIVATE KEY-----
`

// testFiles are the files a full configuration names, all good.
type testFiles struct {
	dir                                 string
	cert, key, otherKey, dkim, dkimCert string
	creds, ca, dataDir, expiredCert     string
	expiredKey                          string
}

func writeFile(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// selfSigned returns a PEM certificate for names and its PEM key.
func selfSigned(t *testing.T, notBefore, notAfter time.Time, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func newTestFiles(t *testing.T) testFiles {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	cert, key := selfSigned(t, now.Add(-time.Hour), now.Add(90*24*time.Hour), "mail.example.test")
	_, otherKey := selfSigned(t, now.Add(-time.Hour), now.Add(90*24*time.Hour), "mail.example.test")
	expCert, expKey := selfSigned(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour), "mail.example.test")
	f := testFiles{dir: dir,
		cert:        writeFile(t, filepath.Join(dir, "cert.pem"), cert),
		key:         writeFile(t, filepath.Join(dir, "key.pem"), key),
		otherKey:    writeFile(t, filepath.Join(dir, "other-key.pem"), otherKey),
		expiredCert: writeFile(t, filepath.Join(dir, "expired.pem"), expCert),
		expiredKey:  writeFile(t, filepath.Join(dir, "expired-key.pem"), expKey),
		dkimCert:    writeFile(t, filepath.Join(dir, "dkim-cert.pem"), cert),
		creds:       writeFile(t, filepath.Join(dir, "relay-credentials"), []byte("sg:secret\n")),
		ca:          writeFile(t, filepath.Join(dir, "ca.pem"), cert),
		dataDir:     filepath.Join(dir, "data"),
	}
	f.dkim = filepath.Join(dir, "dkim.pem")
	if _, err := GenerateDKIMKey("ed25519", f.dkim); err != nil {
		t.Fatal(err)
	}
	return f
}

// fullConfig is a configuration that names every kind of file Check
// opens; the listen addresses are on loopback unless public is set.
func fullConfig(f testFiles, public bool) string {
	host := "127.0.0.1"
	if public {
		host = ""
	}
	return fmt.Sprintf(`[server]
hostname = "mail.example.test"
data_dir = %q
mx_listen = "%s:2525"
submission_listen = "%s:2587"
imap_listen = "%s:1143"
http_listen = "127.0.0.1:9325"

[tls]
cert_file = %q
key_file = %q

[outbound]
mode = "relay"
relay = "smtp.provider.example:587"
relay_credentials_file = %q
relay_ca_file = %q

[dkim]
selector = "sg1"
private_key_file = %q

[[inbox]]
address = "support@example.test"

[[agent]]
email = "alice@example.test"
password_hash = %q
roles = { "support@example.test" = "admin" }
`, f.dataDir, host, host, host, f.cert, f.key, f.creds, f.ca, f.dkim, ownHash)
}

func lineOf(t *testing.T, doc, needle string) int {
	t.Helper()
	for i, l := range strings.Split(doc, "\n") {
		if strings.Contains(l, needle) {
			return i + 1
		}
	}
	t.Fatalf("the configuration has no line with %q", needle)
	return 0
}

func loadDoc(t *testing.T, dir, doc string) (*config.Config, string) {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("supportgate-%d.toml", time.Now().UnixNano()))
	writeFile(t, path, []byte(doc))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("the test configuration does not load: %v\n%s", err, doc)
	}
	return cfg, path
}

func TestCheckGoodConfiguration(t *testing.T) {
	f := newTestFiles(t)
	cfg, _ := loadDoc(t, f.dir, fullConfig(f, true))
	warnings, err := Check(cfg, time.Now())
	if err != nil {
		t.Fatalf("Check of a good configuration: %v", err)
	}
	if len(warnings) != 0 {
		t.Errorf("Check of a good configuration warns: %q", warnings)
	}
	if _, err := os.Stat(f.dataDir); err == nil {
		t.Errorf("Check created the data directory %s; it must only look", f.dataDir)
	}
}

// TestCheckRefusesBrokenFiles: every broken variant of a file the
// configuration names is refused with the line of its key and a sentence
// that names the file and says why.
func TestCheckRefusesBrokenFiles(t *testing.T) {
	f := newTestFiles(t)
	notDir := writeFile(t, filepath.Join(f.dir, "plain-file"), []byte("x"))
	garbage := writeFile(t, filepath.Join(f.dir, "garbage.pem"), []byte("hello\n"))
	shortRSA := writeFile(t, filepath.Join(f.dir, "short.pem"), []byte(rsa512))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pubKey := writeFile(t, filepath.Join(f.dir, "public.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	brokenDER := writeFile(t, filepath.Join(f.dir, "broken-der.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not DER")}))
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	ecPEM := writeFile(t, filepath.Join(f.dir, "ec.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}))
	badCreds := writeFile(t, filepath.Join(f.dir, "bad-credentials"), []byte("no colon here\n"))
	missing := filepath.Join(f.dir, "missing.pem")

	for _, tc := range []struct {
		name     string
		from, to string // replace from by to in the good configuration
		key      string // the line the error must name holds this
		want     []string
	}{
		{"certificate missing", fmt.Sprintf("cert_file = %q", f.cert), fmt.Sprintf("cert_file = %q", missing), "cert_file",
			[]string{"tls.cert_file", missing, "no such file"}},
		{"key missing", fmt.Sprintf("key_file = %q", f.key), fmt.Sprintf("key_file = %q", missing), "key_file",
			[]string{"tls.key_file", missing, "no such file"}},
		{"certificate is garbage", fmt.Sprintf("cert_file = %q", f.cert), fmt.Sprintf("cert_file = %q", garbage), "cert_file",
			[]string{garbage, "holds no PEM certificate"}},
		{"certificate file holds the key", fmt.Sprintf("cert_file = %q", f.cert), fmt.Sprintf("cert_file = %q", f.key), "cert_file",
			[]string{"holds a private key before any certificate"}},
		{"key of another certificate", fmt.Sprintf("key_file = %q", f.key), fmt.Sprintf("key_file = %q", f.otherKey), "key_file",
			[]string{f.otherKey, "is not the private key of the certificate"}},
		{"key file holds the certificate", fmt.Sprintf("key_file = %q", f.key), fmt.Sprintf("key_file = %q", f.cert), "key_file",
			[]string{"holds a certificate, not the private key"}},
		{"DKIM key missing", fmt.Sprintf("private_key_file = %q", f.dkim), fmt.Sprintf("private_key_file = %q", missing), "private_key_file",
			[]string{"dkim.private_key_file", missing, "no such file"}},
		{"DKIM key is a certificate", fmt.Sprintf("private_key_file = %q", f.dkim), fmt.Sprintf("private_key_file = %q", f.dkimCert), "private_key_file",
			[]string{f.dkimCert, "holds a certificate, not a private key"}},
		{"DKIM key is a public key", fmt.Sprintf("private_key_file = %q", f.dkim), fmt.Sprintf("private_key_file = %q", pubKey), "private_key_file",
			[]string{"holds a public key"}},
		{"DKIM key is garbage", fmt.Sprintf("private_key_file = %q", f.dkim), fmt.Sprintf("private_key_file = %q", garbage), "private_key_file",
			[]string{"holds no PEM block"}},
		{"DKIM key's DER is broken", fmt.Sprintf("private_key_file = %q", f.dkim), fmt.Sprintf("private_key_file = %q", brokenDER), "private_key_file",
			[]string{"is damaged: it cannot be read as a private key"}},
		{"DKIM key too short", fmt.Sprintf("private_key_file = %q", f.dkim), fmt.Sprintf("private_key_file = %q", shortRSA), "private_key_file",
			[]string{"too short"}},
		{"DKIM key is ECDSA", fmt.Sprintf("private_key_file = %q", f.dkim), fmt.Sprintf("private_key_file = %q", ecPEM), "private_key_file",
			[]string{"ECDSA key, which DKIM does not define"}},
		{"relay credentials missing", fmt.Sprintf("relay_credentials_file = %q", f.creds), fmt.Sprintf("relay_credentials_file = %q", missing), "relay_credentials_file",
			[]string{"outbound.relay_credentials_file", missing, "no such file"}},
		{"relay credentials malformed", fmt.Sprintf("relay_credentials_file = %q", f.creds), fmt.Sprintf("relay_credentials_file = %q", badCreds), "relay_credentials_file",
			[]string{"username:password"}},
		{"relay CA missing", fmt.Sprintf("relay_ca_file = %q", f.ca), fmt.Sprintf("relay_ca_file = %q", missing), "relay_ca_file",
			[]string{"outbound.relay_ca_file", missing, "no such file"}},
		{"relay CA without certificate", fmt.Sprintf("relay_ca_file = %q", f.ca), fmt.Sprintf("relay_ca_file = %q", garbage), "relay_ca_file",
			[]string{"holds no PEM certificate"}},
		{"data_dir is a file", fmt.Sprintf("data_dir = %q", f.dataDir), fmt.Sprintf("data_dir = %q", notDir), "data_dir",
			[]string{"server.data_dir", "is not a directory"}},
		{"data_dir under a file", fmt.Sprintf("data_dir = %q", f.dataDir), fmt.Sprintf("data_dir = %q", filepath.Join(notDir, "data")), "data_dir",
			[]string{"server.data_dir", "cannot be created"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := fullConfig(f, false)
			if !strings.Contains(good, tc.from) {
				t.Fatalf("the configuration holds no %q", tc.from)
			}
			doc := strings.Replace(good, tc.from, tc.to, 1)
			cfg, path := loadDoc(t, f.dir, doc)
			_, err := Check(cfg, time.Now())
			if err == nil {
				t.Fatal("Check accepted it")
			}
			prefix := fmt.Sprintf("%s:%d: ", path, lineOf(t, doc, tc.key))
			msg := err.Error()
			if !strings.HasPrefix(msg, prefix) || strings.Count(msg, "\n") != 0 {
				t.Errorf("Check: %q; want one error starting with %q", msg, prefix)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Check: %q; want it to say %q", msg, w)
				}
			}
			if strings.Contains(msg, "asn1") || strings.Contains(msg, "structure error") {
				t.Errorf("Check: %q: the parser's detail is all it says", msg)
			}
		})
	}
}

// TestCheckDemoPasswords: a configuration holding a demo agent's password
// hash listens on loopback only; each such hash is an error at its line.
func TestCheckDemoPasswords(t *testing.T) {
	f := newTestFiles(t)
	public := strings.Replace(fullConfig(f, true), ownHash, demoHash, 1)
	cfg, path := loadDoc(t, f.dir, public)
	_, err := Check(cfg, time.Now())
	prefix := fmt.Sprintf("%s:%d: ", path, lineOf(t, public, "password_hash"))
	if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), "demo-alice") ||
		!strings.Contains(err.Error(), `server.mx_listen is ":2525"`) || !strings.Contains(err.Error(), "supportgate passwd") {
		t.Errorf("Check of a demo password on public addresses: %v; want %q, the demo password and the listen address", err, prefix)
	}
	loopback := strings.Replace(fullConfig(f, false), ownHash, demoHash, 1)
	cfg, _ = loadDoc(t, f.dir, loopback)
	if _, err := Check(cfg, time.Now()); err != nil {
		t.Errorf("Check of a demo password on loopback: %v", err)
	}
	demo, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.CheckDemoPasswords(); err != nil {
		t.Errorf("the embedded demo fails its own check: %v", err)
	}
}

func TestCheckWarnings(t *testing.T) {
	f := newTestFiles(t)
	for _, tc := range []struct {
		name, from, to, key, want string
	}{
		{"expired certificate", fmt.Sprintf("cert_file = %q\nkey_file = %q", f.cert, f.key),
			fmt.Sprintf("cert_file = %q\nkey_file = %q", f.expiredCert, f.expiredKey), "cert_file", "expired on"},
		{"certificate for another name", `hostname = "mail.example.test"`, `hostname = "mx.other.example"`, "cert_file",
			`does not name server.hostname "mx.other.example"`},
		{"no TLS on public addresses", fmt.Sprintf("[tls]\ncert_file = %q\nkey_file = %q", f.cert, f.key), "", "submission_listen",
			"cannot log in"},
		{"no DKIM", fmt.Sprintf("[dkim]\nselector = \"sg1\"\nprivate_key_file = %q", f.dkim), "", "mode =", "no [dkim]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := fullConfig(f, true)
			if !strings.Contains(good, tc.from) {
				t.Fatalf("the configuration holds no %q", tc.from)
			}
			doc := strings.Replace(good, tc.from, tc.to, 1)
			cfg, path := loadDoc(t, f.dir, doc)
			warnings, err := Check(cfg, time.Now())
			if err != nil {
				t.Fatalf("Check: %v; want only a warning", err)
			}
			prefix := fmt.Sprintf("%s:%d: ", path, lineOf(t, doc, tc.key))
			found := false
			for _, w := range warnings {
				found = found || strings.HasPrefix(w, prefix) && strings.Contains(w, tc.want)
			}
			if !found {
				t.Errorf("warnings %q; want one starting %q saying %q", warnings, prefix, tc.want)
			}
		})
	}
}

// TestCheckStoreDSN: with [store] engine = "postgres", check-config
// connects to the DSN and names its line when it cannot.
func TestCheckStoreDSN(t *testing.T) {
	f := newTestFiles(t)
	// Port 1 on loopback: nothing listens there, the connection is refused.
	doc := "[store]\nengine = \"postgres\"\ndsn = \"postgres://supportgate@127.0.0.1:1/supportgate?connect_timeout=5\"\n" + fullConfig(f, true)
	cfg, _ := loadDoc(t, f.dir, doc)
	_, err := Check(cfg, time.Now())
	if err == nil || !strings.Contains(err.Error(), ":3: store.dsn: cannot connect to PostgreSQL") {
		t.Fatalf("Check with an unreachable DSN: %v", err)
	}
}
