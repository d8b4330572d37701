package gateway

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// certReloader serves the [tls] certificate and reads the files again when
// they change, so that a renewed certificate is used without a restart
// (DESIGN.md §8). A renewal that cannot be read keeps the last good one.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

// newCertReloader loads the certificate once, so that a bad one is an error
// at start.
func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
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
		if stamp, err := r.stamp(); err == nil && !stamp.Equal(r.modTime) {
			r.load() // on failure the last good certificate stays
		}
	}
	return r.cert, nil
}

// loadTLS builds the TLS configuration of [tls], or nil when it is not set.
func (s *Server) loadTLS() error {
	if s.cfg().TLS.CertFile == "" {
		return nil
	}
	r, err := newCertReloader(s.cfg().TLS.CertFile, s.cfg().TLS.KeyFile)
	if err != nil {
		return err
	}
	s.certs.Store(r)
	// Through s.certs, so that a reload (SIGHUP) naming other files
	// takes effect for the next handshake.
	s.tlsConfig = &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		return s.certs.Load().getCertificate(h)
	}, MinVersion: tls.VersionTLS12}
	return nil
}
