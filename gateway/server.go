// Package gateway is supportgate's protocol edge: the MX and submission SMTP
// servers, the IMAP server the agents' mail clients talk to, and the HTTP
// health endpoint. It turns protocol commands into threading and policy
// decisions and store calls, and store errors into precise, safe replies:
// internal error text is logged, never sent to a client.
//
// Imports (DESIGN.md §12, cmd → gateway → desk → (threading, policy,
// queue) → store): gateway owns the protocols' words (SMTP replies, the
// HTTP endpoints) and what a message does at the edge; it calls desk for
// every change of a conversation, queue for what a bounce does to the
// queue, threading and policy for decisions, and the store through its
// consumers' interfaces (store.Mail; store.Workspace for gateway/imapgw).
// It never imports an engine.
package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/desk"
	"github.com/supportgate/supportgate/internal/budget"
	"github.com/supportgate/supportgate/internal/dkimsign"
	"github.com/supportgate/supportgate/internal/metrics"
	"github.com/supportgate/supportgate/queue"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/threading"
)

// SecretFile is the file in the data directory that holds the key of reply
// tokens and signed Message-IDs.
const SecretFile = "token.key"

// LoadKeys reads the token secret from the data directory, creating it on
// first start.
func LoadKeys(dataDir string) (threading.Keys, error) {
	path := filepath.Join(dataDir, SecretFile)
	secret, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		secret = make([]byte, 32)
		rand.Read(secret)
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return threading.Keys{}, err
		}
		// O_EXCL: if two processes race, one loses and reads the winner's.
		f, ferr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if ferr != nil {
			return threading.Keys{}, fmt.Errorf("creating %s: %w", path, ferr)
		}
		_, err = f.Write(secret)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return threading.Keys{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(secret) < 32 {
		return threading.Keys{}, fmt.Errorf("%s holds %d bytes; it needs at least 32", path, len(secret))
	}
	return threading.NewKeys(secret), nil
}

// Server runs every listener of the configuration on one store.
type Server struct {
	// conf is the configuration in force; SIGHUP replaces it (Reload).
	// Each use reads it once (cfg()), so one message or session step sees
	// one configuration.
	conf atomic.Pointer[config.Config]
	// Each service takes its own part of the store (store/consumers.go):
	// store is the MX's and submission's, workspace the IMAP sessions',
	// lifecycle the queue's changes a bounce makes.
	store     store.Mail
	workspace store.Workspace
	lifecycle queue.Lifecycle
	// desk carries out the helpdesk's actions (quick actions, IMAP folder
	// moves and keywords) on store, each one transaction with its event.
	desk *desk.Desk
	keys threading.Keys
	log  *slog.Logger

	connSeq atomic.Uint64 // connection IDs for logs
	// tlsConfig serves [tls] for STARTTLS and implicit TLS on SMTP and IMAP, reloading
	// the certificate when its files change; nil without [tls].
	tlsConfig *tls.Config
	// dummyHash is compared against when a login names no agent, so that an
	// unknown address takes as long to refuse as a wrong password.
	dummyHash []byte
	// limits counts connections, messages and failed logins ([limits]).
	limits *Limiter
	// dkim keeps the [dkim] signer, read again when the key file changes.
	dkim dkimsign.Keys
	// certs serves the [tls] certificate (tls.go); nil without [tls].
	certs atomic.Pointer[certReloader]
	// inflight bounds the message data held in memory by all SMTP and IMAP
	// transfers together ([limits] max_inflight_bytes).
	inflight *budget.Bytes
	// metrics counts what the listeners do and is served on /metrics
	// (DESIGN.md §16).
	metrics *metrics.Metrics
}

// Option is an optional argument of New.
type Option func(*Server)

// WithMetrics makes the server count into m and serve m on /metrics.
// Without it the server has metrics of its own, without the store's
// counts or delivery counts: the caller wires those (cmd/supportgate).
func WithMetrics(m *metrics.Metrics) Option {
	return func(s *Server) { s.metrics = m }
}

// New returns a server; nothing listens until Run. It hands each service
// its part of st.
func New(cfg *config.Config, st store.Store, keys threading.Keys, log *slog.Logger, opts ...Option) *Server {
	dummy, _ := bcrypt.GenerateFromPassword([]byte(rand.Text()), bcrypt.DefaultCost)
	inflight := cfg.Limits.MaxInflightBytes
	if inflight <= 0 { // a Config not made by config.Parse
		inflight = config.DefaultLimits().MaxInflightBytes
	}
	s := &Server{store: st, workspace: st, lifecycle: queue.Lifecycle{Store: st}, keys: keys, log: log, dummyHash: dummy,
		limits: NewLimiter(cfg.Limits, time.Now, st), inflight: budget.New(inflight)}
	s.conf.Store(cfg)
	// The helpdesk's actions read the configuration in force, which Reload
	// replaces: the desk is the server's.
	s.desk = desk.New(st, s.cfg)
	for _, o := range opts {
		o(s)
	}
	if s.metrics == nil {
		s.metrics = metrics.New(metrics.Options{Log: log, DataDir: cfg.Server.DataDir})
	}
	return s
}

// cfg is the configuration in force.
func (s *Server) cfg() *config.Config { return s.conf.Load() }

// nextConnID returns a short ID that ties a connection's log lines together.
func (s *Server) nextConnID(proto string) string {
	return proto + "-" + strconv.FormatUint(s.connSeq.Add(1), 10)
}

// service is one listener's server.
type service struct {
	name     string
	addr     string
	serve    func(net.Listener) error
	shutdown func(context.Context) error
}

// Run listens on every configured address and serves until ctx is
// cancelled, then shuts the listeners down. Listening errors are returned
// before anything is served.
func (s *Server) Run(ctx context.Context) error {
	services := []service{}
	if err := s.loadTLS(); err != nil {
		return err
	}
	if a := s.cfg().Server.MXListen; a != "" {
		srv := s.newMX()
		services = append(services, service{"mx", a, srv.Serve, srv.Shutdown})
	}
	if a := s.cfg().Server.SubmissionListen; a != "" {
		srv := s.newSubmission()
		services = append(services, service{"submission", a, srv.Serve, srv.Shutdown})
	}
	if a := s.cfg().Server.SubmissionsListen; a != "" && s.tlsConfig != nil {
		// RFC 8314 3.3: submission with implicit TLS.
		srv := s.newSubmission()
		serve := func(l net.Listener) error { return srv.ServeTLS(l, s.tlsConfig) }
		services = append(services, service{"submissions", a, serve, srv.Shutdown})
	}
	if a, as := s.cfg().Server.IMAPListen, s.cfg().Server.IMAPSListen; a != "" || as != "" {
		srv := s.newIMAP()
		closeIMAP := func(context.Context) error { return srv.Close() }
		if a != "" {
			services = append(services, service{"imap", a, srv.Serve, closeIMAP})
		}
		if as != "" {
			services = append(services, service{"imaps", as, srv.ServeTLS, closeIMAP})
		}
	}
	if a := s.cfg().Server.HTTPListen; a != "" {
		// Every read has a deadline (issue 7), here too: the endpoint is local
		// but a stuck client must not hold a connection forever.
		srv := &http.Server{Handler: s.httpHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
		services = append(services, service{"http", a, srv.Serve, srv.Shutdown})
	}

	listeners := make([]net.Listener, len(services))
	for i, svc := range services {
		l, err := net.Listen("tcp", svc.addr)
		if err != nil {
			for _, l := range listeners[:i] {
				l.Close()
			}
			return fmt.Errorf("%s: cannot listen on %s: %w", svc.name, svc.addr, err)
		}
		listeners[i] = l
		s.log.Info("listening", "service", svc.name, "addr", l.Addr().String())
	}

	errc := make(chan error, len(services))
	var wg sync.WaitGroup
	for i, svc := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := svc.serve(listeners[i]); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", svc.name, err)
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, svc := range services {
		svc.shutdown(shutCtx)
	}
	wg.Wait()
	return err
}

func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if _, err := s.store.Conversation(r.Context(), 0); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("health check: store unavailable", "err", err)
			http.Error(w, "store unavailable\n", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	// DESIGN.md §16: the Prometheus text format (README, Metrics).
	mux.Handle("GET /metrics", s.metrics.Handler())
	return mux
}
