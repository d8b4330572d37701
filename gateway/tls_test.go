package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store/sqlite"
)

// writeCert writes a self-signed certificate for name into dir.
func writeCert(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// nonLoopbackIP returns an address of this machine that is not loopback.
func nonLoopbackIP(t *testing.T) net.IP {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no non-loopback IPv4 address to test plaintext refusal")
	}
	t.Skip("no non-loopback IPv4 address")
	return nil
}

// TestIMAPTLS: STARTTLS on the plain port and implicit TLS when [tls] is
// set; from another machine LOGIN and AUTHENTICATE PLAIN are refused until
// TLS (LOGINDISABLED), and allowed after STARTTLS; a renewed certificate is
// served without a restart.
func TestIMAPTLS(t *testing.T) {
	ip := nonLoopbackIP(t)
	dir := t.TempDir()
	s, certFile := tlsTestServer(t, dir, "first.example")
	srv := s.newIMAP()
	t.Cleanup(func() { srv.Close() })
	plain, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	implicit, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(plain)
	go srv.ServeTLS(implicit)
	tlsConf := &tls.Config{InsecureSkipVerify: true}

	c, err := imapclient.DialInsecure(plain.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	caps, _ := c.Capability().Wait()
	if !caps.Has(imap.CapLoginDisabled) || !caps.Has(imap.CapStartTLS) || caps.Has("AUTH=PLAIN") {
		t.Errorf("plaintext from another machine advertises %v", caps)
	}
	if err := c.Login("alice@example.test", "demo-alice").Wait(); err == nil {
		t.Error("LOGIN over plaintext from another machine succeeded")
	}
	c.Close()

	c, err = imapclient.DialStartTLS(plain.Addr().String(), &imapclient.Options{TLSConfig: tlsConf})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("alice@example.test", "demo-alice").Wait(); err != nil {
		t.Errorf("LOGIN after STARTTLS: %v", err)
	}
	c.Close()

	c, err = imapclient.DialTLS(implicit.Addr().String(), &imapclient.Options{TLSConfig: tlsConf})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Authenticate(sasl.NewPlainClient("", "alice@example.test", "demo-alice")); err != nil {
		t.Errorf("AUTHENTICATE PLAIN over implicit TLS: %v", err)
	}
	c.Close()

	// A renewed certificate is picked up without a restart.
	time.Sleep(1100 * time.Millisecond)
	future := time.Now().Add(2 * time.Second)
	writeCert(t, dir, "second.example")
	os.Chtimes(certFile, future, future)
	conn, err := tls.Dial("tcp", implicit.Addr().String(), tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "second.example" {
		t.Errorf("certificate %s after renewal, want second.example", cn)
	}
}

// tlsTestServer is a server on the demo configuration with [tls] set to a
// fresh self-signed certificate for name in dir; nothing listens yet.
func tlsTestServer(t *testing.T, dir, name string) (s *Server, certFile string) {
	t.Helper()
	certFile, keyFile := writeCert(t, dir, name)
	cfg, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.DataDir = dir
	cfg.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile}
	cfg.DNS.Resolver = newTestDNS(t).Addr
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := LoadKeys(dir)
	s = New(cfg, st, keys, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s.loadTLS(); err != nil {
		t.Fatal(err)
	}
	return s, certFile
}
