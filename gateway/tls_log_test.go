package gateway

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// TestCertReloadIsLogged: a renewed certificate is logged with its names
// and end of validity; a broken renewal and missing files are logged once
// per change, and the last good certificate stays in use.
func TestCertReloadIsLogged(t *testing.T) {
	dir := t.TempDir()
	logs := &lockedBuffer{}
	certFile, keyFile := writeCert(t, dir, "first.example")
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	// check makes the reloader look at the files now (it looks at most
	// once a second) and returns the certificate it serves.
	check := func() string {
		t.Helper()
		r.mu.Lock()
		r.checked = time.Time{}
		r.mu.Unlock()
		c, err := r.getCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.Subject.CommonName
	}
	touch := func(d time.Duration) {
		t.Helper()
		at := time.Now().Add(d)
		for _, f := range []string{certFile, keyFile} {
			if err := os.Chtimes(f, at, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func(msg string) int { return strings.Count(logs.String(), `msg="`+msg+`"`) }

	writeCert(t, dir, "second.example")
	touch(2 * time.Second)
	if cn := check(); cn != "second.example" {
		t.Fatalf("serving %s after the renewal", cn)
	}
	if l := findLogLine(logs.String(), "TLS certificate reloaded", "cert_file="+certFile, "subject=second.example",
		"dns_names=second.example"); l == "" || !strings.Contains(l, "not_after=") {
		t.Errorf("no line for the reload:\n%s", logs.String())
	}

	// A broken renewal: logged once, the previous certificate served.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	touch(4 * time.Second)
	for range 3 {
		if cn := check(); cn != "second.example" {
			t.Fatalf("serving %s after a broken renewal", cn)
		}
	}
	if n := count("TLS certificate not reloaded: the changed files cannot be used; the previous certificate stays in use"); n != 1 {
		t.Errorf("the broken renewal is logged %d times, want once:\n%s", n, logs.String())
	}

	// Files gone: logged once.
	os.Remove(certFile)
	for range 3 {
		if cn := check(); cn != "second.example" {
			t.Fatalf("serving %s without files", cn)
		}
	}
	if n := count("TLS certificate files cannot be read; the previous certificate stays in use"); n != 1 {
		t.Errorf("the missing files are logged %d times, want once:\n%s", n, logs.String())
	}

	// A good one again.
	writeCert(t, dir, "third.example")
	touch(6 * time.Second)
	if cn := check(); cn != "third.example" {
		t.Fatalf("serving %s after the repair", cn)
	}
	if findLogLine(logs.String(), "TLS certificate reloaded", "subject=third.example") == "" {
		t.Errorf("no line for the second reload:\n%s", logs.String())
	}
}
