package gateway

// The IMAP side (DESIGN.md §6) lives in gateway/imapgw, the only package
// that imports go-imap; this file wires it to the server.

import (
	"github.com/supportgate/supportgate/gateway/imapgw"
)

func (s *Server) newIMAP() *imapgw.Server {
	return imapgw.New(imapgw.Options{
		Config:       s.cfg,
		Store:        s.store,
		Log:          s.log,
		Authenticate: s.authenticate,
		TLS:          s.tlsConfig,
		Guard:        s.limits,
	})
}
