package gateway

import (
	"fmt"
	"slices"

	"github.com/supportgate/supportgate/config"
)

// Reload puts a new configuration in force (DESIGN.md §11, SIGHUP): agents
// and passwords, inboxes and their rules, limits, notifications, DKIM and
// the TLS certificate files take effect for the next message, login and
// handshake, and no connection is dropped; sessions already logged in keep
// the roles they logged in with. What cannot change in a running daemon
// (listen addresses, data_dir, the store, [tls] added or removed, and the
// limits the SMTP and IMAP servers were built with) is kept as it was and
// named in the result, for the log to say that a restart applies it. The
// caller checked cfg (config.Load); a TLS certificate that cannot be read
// fails the whole reload, and nothing of it is applied.
func (s *Server) Reload(cfg *config.Config) (needRestart []string, err error) {
	old := s.cfg()
	next := *cfg
	keep := func(name string, changed bool) {
		if changed {
			needRestart = append(needRestart, name)
		}
	}
	keep("server.mx_listen", next.Server.MXListen != old.Server.MXListen)
	keep("server.submission_listen", next.Server.SubmissionListen != old.Server.SubmissionListen)
	keep("server.submissions_listen", next.Server.SubmissionsListen != old.Server.SubmissionsListen)
	keep("server.imap_listen", next.Server.IMAPListen != old.Server.IMAPListen)
	keep("server.imaps_listen", next.Server.IMAPSListen != old.Server.IMAPSListen)
	keep("server.http_listen", next.Server.HTTPListen != old.Server.HTTPListen)
	keep("server.data_dir", next.Server.DataDir != old.Server.DataDir)
	keep("server.hostname", next.Server.Hostname != old.Server.Hostname)
	keep("server.max_message_bytes", next.Server.MaxMessageBytes != old.Server.MaxMessageBytes)
	keep("limits.read_timeout", next.Limits.ReadTimeout != old.Limits.ReadTimeout)
	keep("limits.max_recipients", next.Limits.MaxRecipients != old.Limits.MaxRecipients)
	keep("tls", (next.TLS.CertFile == "") != (old.TLS.CertFile == ""))
	keep("log.format", next.Log.Format != old.Log.Format)
	// What needs a restart stays as it is until then.
	next.Server = old.Server
	next.Limits.ReadTimeout, next.Limits.MaxRecipients = old.Limits.ReadTimeout, old.Limits.MaxRecipients
	if old.TLS.CertFile == "" {
		next.TLS = old.TLS
	}

	if next.TLS.CertFile != "" && (next.TLS.CertFile != old.TLS.CertFile || next.TLS.KeyFile != old.TLS.KeyFile) {
		r, err := newCertReloader(next.TLS.CertFile, next.TLS.KeyFile, s.log.With("service", "tls"))
		if err != nil {
			return nil, fmt.Errorf("the new TLS certificate cannot be used: %w", err)
		}
		r.log.Info("TLS certificate loaded", certAttrs(r.cert, r.certFile)...)
		s.certs.Store(r)
	}
	s.limits.SetConfig(next.Limits)
	s.inflight.SetMax(max(next.Limits.MaxInflightBytes, next.Server.MaxMessageBytes))
	s.conf.Store(&next)
	return slices.Clip(needRestart), nil
}
