package gateway

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// certReloader serves the [tls] certificate and reads the files again when
// they change, so that a renewed certificate is used without a restart
// (DESIGN.md §8). A renewal that cannot be read keeps the last good one.
// Both are logged, once per change of the files.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
	failed  time.Time // the files' stamp that last failed to load
	missing bool      // the files could not be looked at, and that was logged
}

// newCertReloader loads the certificate once, so that a bad one is an error
// at start.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) stamp() (time.Time, error) {
	var latest time.Time
	for _, f := range []string{r.certFile, r.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return time.Time{}, err
		}
		if st.ModTime().After(latest) {
			latest = st.ModTime()
		}
	}
	return latest, nil
}

func (r *certReloader) load() error {
	stamp, err := r.stamp()
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls: loading %s and %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.modTime = &cert, stamp
	return nil
}

// getCertificate is tls.Config.GetCertificate: it looks at the files at
// most once a second.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= time.Second {
		r.checked = time.Now()
		stamp, err := r.stamp()
		if err != nil && !r.missing {
			r.missing = true
			r.log.Error("TLS certificate files cannot be read; the previous certificate stays in use",
				"cert_file", r.certFile, "key_file", r.keyFile, "err", err)
		}
		if err == nil {
			r.missing = false
		}
		if err == nil && !stamp.Equal(r.modTime) {
			// On failure the last good certificate stays, and the files
			// are tried again a second later (a renewal may be half
			// written); the failure is logged once per change.
			if err := r.load(); err != nil && !stamp.Equal(r.failed) {
				r.failed = stamp
				r.log.Error("TLS certificate not reloaded: the changed files cannot be used; the previous certificate stays in use",
					"cert_file", r.certFile, "key_file", r.keyFile, "err", err)
			} else if err == nil {
				r.log.Info("TLS certificate reloaded", certAttrs(r.cert, r.certFile)...)
			}
		}
	}
	return r.cert, nil
}

// loadTLS builds the TLS configuration of [tls], or nil when it is not set.
func (s *Server) loadTLS() error {
	if s.cfg().TLS.CertFile == "" {
		return nil
	}
	r, err := newCertReloader(s.cfg().TLS.CertFile, s.cfg().TLS.KeyFile, s.log.With("service", "tls"))
	if err != nil {
		return err
	}
	r.log.Info("TLS certificate loaded", certAttrs(r.cert, r.certFile)...)
	s.certs.Store(r)
	// Through s.certs, so that a reload (SIGHUP) naming other files
	// takes effect for the next handshake.
	s.tlsConfig = &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		return s.certs.Load().getCertificate(h)
	}, MinVersion: tls.VersionTLS12}
	return nil
}

// certAttrs describes a certificate for the log: its file, names and end of
// validity.
func certAttrs(c *tls.Certificate, file string) []any {
	attrs := []any{"cert_file", file}
	if c.Leaf != nil {
		attrs = append(attrs, "subject", c.Leaf.Subject.CommonName, "dns_names", strings.Join(c.Leaf.DNSNames, ","),
			"not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return attrs
}
