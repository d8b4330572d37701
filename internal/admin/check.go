package admin

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/internal/dkimsign"
	"github.com/supportgate/supportgate/queue"
	"github.com/supportgate/supportgate/store/postgres"
)

// certExpirySoon is how long before a certificate's end check-config warns.
const certExpirySoon = 14 * 24 * time.Hour

// Problem is one finding of Check about a key of the file.
type Problem struct {
	Key string // the configuration key it is about, "tls.cert_file"
	Msg string // a sentence
}

// Check opens what a loaded configuration names (DESIGN.md §11): the TLS
// certificate and key and that they pair, the DKIM key, the relay's
// credentials and CA file, the data directory and the outbox (writable),
// and refuses a demo password on an address that is not loopback. It
// returns the errors, each "file:LINE: sentence" in line order and joined
// with newlines, and warnings (things that work but that an admin wants to
// know, like a certificate that expires soon), each "file:LINE: sentence".
// now is the time certificates are judged at.
func Check(cfg *config.Config, now time.Time) (warnings []string, err error) {
	var errs, warns []Problem
	fail := func(key, format string, args ...any) {
		errs = append(errs, Problem{key, fmt.Sprintf(format, args...)})
	}
	warn := func(key, format string, args ...any) {
		warns = append(warns, Problem{key, fmt.Sprintf(format, args...)})
	}

	if t := cfg.TLS; t.CertFile != "" {
		checkTLS(cfg, t.CertFile, t.KeyFile, now, fail, warn)
	} else {
		for _, l := range []struct{ key, value string }{
			{"server.submission_listen", cfg.Server.SubmissionListen},
			{"server.imap_listen", cfg.Server.IMAPListen},
		} {
			if l.value != "" && !loopbackListen(l.value) {
				warn(l.key, "%s is %q but there is no [tls]: agents' mail clients on other machines cannot log in, since passwords are never accepted in clear from beyond this machine",
					l.key, l.value)
			}
		}
	}

	if d := cfg.DKIM; d.PrivateKeyFile != "" {
		data, rerr := os.ReadFile(d.PrivateKeyFile)
		if rerr != nil {
			fail("dkim.private_key_file", "dkim.private_key_file %q cannot be read: %s", d.PrivateKeyFile, reason(rerr))
		} else if _, perr := dkimsign.ParseKey(d.PrivateKeyFile, data); perr != nil {
			fail("dkim.private_key_file", "dkim.private_key_file: %s", perr.Error())
		}
	} else if cfg.Outbound.Mode != "directory" {
		warn("outbound.mode", "there is no [dkim]: replies leave unsigned, and receivers that check DMARC may refuse or junk them; `supportgate dkim-keygen FILE` makes a key")
	}

	o := cfg.Outbound
	fileErr := func(key, file string, err error) {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			fail(key, "%s %q cannot be read: %s", key, file, pe.Err)
		} else {
			fail(key, "%s: %s", key, err)
		}
	}
	if o.RelayCredentialsFile != "" {
		if _, rerr := queue.ReadCredentials(o.RelayCredentialsFile); rerr != nil {
			fileErr("outbound.relay_credentials_file", o.RelayCredentialsFile, rerr)
		}
	}
	if o.RelayCAFile != "" {
		if _, rerr := queue.LoadCAFile(o.RelayCAFile); rerr != nil {
			fileErr("outbound.relay_ca_file", o.RelayCAFile, rerr)
		}
	}

	if s := cfg.Store; s.Engine == config.StorePostgres {
		// DESIGN.md §15: a node that cannot reach the database cannot
		// accept mail; say so before it listens.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if perr := postgres.Check(ctx, s.DSN); perr != nil {
			fail("store.dsn", "store.dsn: %s", perr)
		}
		cancel()
	}
	if why := writableDir(cfg.Server.DataDir); why != "" {
		fail("server.data_dir", "server.data_dir %q %s", cfg.Server.DataDir, why)
	}
	if o.Mode == "directory" {
		if why := writableDir(o.Directory); why != "" {
			fail("outbound.directory", "outbound.directory %q %s", o.Directory, why)
		}
	}

	var out []error
	if derr := cfg.CheckDemoPasswords(); derr != nil {
		out = append(out, derr)
	}
	byLine := func(a, b Problem) int {
		la, lb := cfg.Line(a.Key), cfg.Line(b.Key)
		if (la == 0) != (lb == 0) { // lineless last, as config does
			if la == 0 {
				return 1
			}
			return -1
		}
		return cmp.Compare(la, lb)
	}
	slices.SortStableFunc(errs, byLine)
	slices.SortStableFunc(warns, byLine)
	for _, p := range errs {
		out = append(out, cfg.KeyError(p.Key, p.Msg))
	}
	for _, p := range warns {
		warnings = append(warnings, cfg.KeyError(p.Key, p.Msg).Error())
	}
	return warnings, errors.Join(out...)
}

// checkTLS opens the certificate and the key, checks that they pair and
// that the certificate is valid now and names the server.
func checkTLS(cfg *config.Config, certFile, keyFile string, now time.Time, fail, warn func(key, format string, args ...any)) {
	certPEM, cerr := os.ReadFile(certFile)
	if cerr != nil {
		fail("tls.cert_file", "tls.cert_file %q cannot be read: %s", certFile, reason(cerr))
	}
	keyPEM, kerr := os.ReadFile(keyFile)
	if kerr != nil {
		fail("tls.key_file", "tls.key_file %q cannot be read: %s", keyFile, reason(kerr))
	}
	if cerr != nil || kerr != nil {
		return
	}
	var leaf *x509.Certificate
	rest := certPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				fail("tls.cert_file", "tls.cert_file %q: its first certificate cannot be read (%v)", certFile, err)
				return
			}
			leaf = c
			break
		}
		if b.Type == "PRIVATE KEY" || b.Type == "RSA PRIVATE KEY" || b.Type == "EC PRIVATE KEY" {
			fail("tls.cert_file", "tls.cert_file %q holds a private key before any certificate; cert_file is the certificate (the full chain), key_file its private key", certFile)
			return
		}
	}
	if leaf == nil {
		fail("tls.cert_file", "tls.cert_file %q holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")", certFile)
		return
	}
	if b, _ := pem.Decode(keyPEM); b == nil {
		fail("tls.key_file", "tls.key_file %q holds no PEM private key", keyFile)
		return
	} else if b.Type == "CERTIFICATE" {
		fail("tls.key_file", "tls.key_file %q holds a certificate, not the private key of tls.cert_file", keyFile)
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		fail("tls.key_file", "tls.key_file %q is not the private key of the certificate in tls.cert_file %q (%v)", keyFile, certFile, err)
		return
	}
	switch {
	// An expired certificate is a warning, not an error: the daemon must
	// still start (the MX's peers do not verify it), and mail clients say
	// what is wrong.
	case now.After(leaf.NotAfter):
		warn("tls.cert_file", "the certificate in tls.cert_file %q expired on %s; mail clients refuse it until it is renewed", certFile, leaf.NotAfter.UTC().Format(time.DateOnly))
	case now.Before(leaf.NotBefore):
		warn("tls.cert_file", "the certificate in tls.cert_file %q is valid only from %s on", certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	case leaf.NotAfter.Sub(now) < certExpirySoon:
		warn("tls.cert_file", "the certificate in tls.cert_file %q expires on %s; renew it (a renewed file is picked up without a restart)",
			certFile, leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	if err := leaf.VerifyHostname(cfg.Server.Hostname); err != nil {
		warn("tls.cert_file", "the certificate in tls.cert_file %q does not name server.hostname %q (%v); mail clients that connect to that name will refuse it",
			certFile, cfg.Server.Hostname, err)
	}
}

// writableDir returns "" when dir is a directory this process may create
// files in, or will be one once the daemon creates it (its closest
// existing parent is writable), else why not, as the end of a sentence.
func writableDir(dir string) string {
	st, err := os.Stat(dir)
	switch {
	case err == nil && !st.IsDir():
		return "is not a directory"
	case err == nil:
		f, err := os.CreateTemp(dir, ".check-config-*")
		if err != nil {
			return "is not writable: " + reason(err)
		}
		name := f.Name()
		f.Close()
		os.Remove(name)
		return ""
	case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
		return "cannot be examined: " + reason(err)
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if parent == dir {
		return "does not exist"
	}
	if why := writableDir(parent); why != "" {
		return fmt.Sprintf("does not exist, and cannot be created: %s %s", parent, why)
	}
	return ""
}

// reason returns the end of an *fs.PathError ("no such file or
// directory"), or the error's text.
func reason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func loopbackListen(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
