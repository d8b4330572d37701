package queue

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Transport opens SMTP connections towards where a recipient domain's mail
// goes: its MX hosts, or the relay.
type Transport interface {
	// Route is the key under which connections are reused and limited:
	// the recipient's domain in mx mode, the relay in relay mode.
	Route(domain string) string
	// Open connects for a route; the connection then carries one
	// transaction per recipient.
	Open(ctx context.Context, domain string) (Conn, error)
}

// Conn is one open SMTP connection.
type Conn interface {
	// Send makes one transaction: MAIL FROM from, RCPT TO to, DATA raw. A
	// remote refusal is an *smtp.SMTPError; after it the connection is
	// still usable, unless the error is also a *ConnLostError.
	Send(ctx context.Context, from, to string, raw []byte) error
	Close() error
}

// dialTimeout bounds a TCP connect (RFC 5321 4.5.3.2 gives 5 minutes for the
// greeting; a connect that takes this long is a dead host).
const dialTimeout = 30 * time.Second

// commandTimeout bounds each SMTP command (RFC 5321 4.5.3.2: 5 minutes).
const commandTimeout = 5 * time.Minute

// MXTransport delivers to each recipient domain's MX hosts (RFC 5321 5.1).
type MXTransport struct {
	Hostname string        // our EHLO name
	Resolver *net.Resolver // the [dns] resolver; nil: the system's
	// Port is the SMTP port of the MX hosts, "25" when empty (tests use
	// another).
	Port string
	// LookupMX replaces the DNS lookup, for tests; nil uses Resolver.
	LookupMX func(ctx context.Context, domain string) ([]*net.MX, error)
}

// Route implements Transport: connections are per domain.
func (t *MXTransport) Route(domain string) string { return strings.ToLower(domain) }

// Open implements Transport: every MX in preference order (the resolver
// sorts them, shuffling equal preferences), the domain itself when it has
// no MX (RFC 5321 5.1, A/AAAA fallback), opportunistic STARTTLS (RFC 3207,
// RFC 7435: an MX certificate is not verified, and a failed handshake is
// retried in plain text).
func (t *MXTransport) Open(ctx context.Context, domain string) (Conn, error) {
	hosts, err := t.hosts(ctx, domain)
	if err != nil {
		return nil, err
	}
	port := t.Port
	if port == "" {
		port = "25"
	}
	var errs []error
	for _, host := range hosts {
		addr := net.JoinHostPort(host, port)
		// The host's addresses come from the same resolver as the MX
		// (RFC 5321 5.1); the dialer tries each in turn.
		c, err := openSMTP(ctx, t.Resolver, addr, t.Hostname, &tls.Config{ServerName: host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, false, nil)
		if errors.Is(err, errHandshake) {
			c, err = openSMTP(ctx, t.Resolver, addr, t.Hostname, nil, false, nil)
		}
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", host, err))
	}
	return nil, errors.Join(errs...)
}

func (t *MXTransport) hosts(ctx context.Context, domain string) ([]string, error) {
	lookup := t.LookupMX
	res := t.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	if lookup == nil {
		lookup = res.LookupMX
	}
	mxs, err := lookup(ctx, domain)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		if t.LookupMX == nil {
			// No MX: the domain's A/AAAA records, if it has any.
			if _, herr := res.LookupHost(ctx, domain); errors.As(herr, &dnsErr) && dnsErr.IsNotFound {
				return nil, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 2},
					Message: "the domain " + domain + " does not exist"}
			}
		}
		return []string{domain}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up the MX of %s: %w", domain, err)
	}
	var hosts []string
	for _, mx := range mxs {
		h := strings.TrimSuffix(mx.Host, ".")
		if h == "" {
			// RFC 7505 3: a null MX says the domain accepts no mail.
			return nil, &smtp.SMTPError{Code: 556, EnhancedCode: smtp.EnhancedCode{5, 1, 10},
				Message: "the domain " + domain + " accepts no mail (null MX)"}
		}
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 {
		hosts = []string{domain}
	}
	return hosts, nil
}

// RelayTransport hands every message to one relay (a smarthost).
type RelayTransport struct {
	Hostname string // our EHLO name
	Relay    string // host:port
	// CredentialsFile holds "username:password"; "" sends no AUTH. It is
	// read at each connection, so a changed password needs no restart.
	CredentialsFile string
	// CAFile, when set, is a PEM file of the CA certificates the relay's
	// certificate is verified against instead of the system's roots (a
	// relay with a private CA, like Postfix's smtp_tls_CAfile). It is read
	// at each connection, so a renewed CA needs no restart.
	CAFile string
	// TLSConfig, when set, replaces the certificate verification settings
	// (tests); nil verifies the relay's name against the system's roots.
	TLSConfig *tls.Config
}

// LoadCAFile reads a PEM file of CA certificates into a pool.
func LoadCAFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the relay CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// Route implements Transport: one route, the relay.
func (t *RelayTransport) Route(string) string { return "relay " + t.Relay }

// Open implements Transport: STARTTLS whenever the relay offers it, with
// its certificate verified; AUTH only over TLS or to a relay on loopback,
// because the credentials would travel in clear.
func (t *RelayTransport) Open(ctx context.Context, _ string) (Conn, error) {
	host, _, err := net.SplitHostPort(t.Relay)
	if err != nil {
		return nil, err
	}
	var creds *credentials
	if t.CredentialsFile != "" {
		c, err := ReadCredentials(t.CredentialsFile)
		if err != nil {
			return nil, err
		}
		creds = &c
	}
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		if cfg.RootCAs, err = LoadCAFile(t.CAFile); err != nil {
			return nil, err
		}
	}
	if t.TLSConfig != nil {
		cfg = t.TLSConfig.Clone()
	}
	loopback := false
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
		loopback = true
	}
	return openSMTP(ctx, nil, t.Relay, t.Hostname, cfg, creds != nil && !loopback, creds)
}

type credentials struct{ username, password string }

// ReadCredentials reads a relay credentials file: one line,
// "username:password" (the password may contain ':').
func ReadCredentials(path string) (credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return credentials{}, fmt.Errorf("reading the relay credentials: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	user, pass, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
	if !ok || user == "" {
		return credentials{}, fmt.Errorf("%s: the relay credentials file must hold one line, username:password", path)
	}
	return credentials{username: user, password: pass}, nil
}

// errHandshake marks a failed TLS handshake after STARTTLS.
var errHandshake = errors.New("TLS handshake failed")

// openSMTP connects (resolving addr's host with res, nil: the system's
// resolver), reads the greeting, says EHLO, starts TLS when the
// server offers it and tlsCfg is set (requireTLS: or fails), authenticates
// with creds, and returns the connection ready for transactions.
//
// go-smtp's client cannot send STARTTLS after an EHLO of our choosing, so
// the exchange before TLS is done here, and the client starts on the
// established (TLS) connection with the greeting already read.
func openSMTP(ctx context.Context, res *net.Resolver, addr, ehlo string, tlsCfg *tls.Config, requireTLS bool, creds *credentials) (Conn, error) {
	d := net.Dialer{Timeout: dialTimeout, Resolver: res}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	fail := func(err error) (Conn, error) {
		stop()
		raw.Close()
		return nil, err
	}
	raw.SetDeadline(time.Now().Add(commandTimeout))
	tp := textproto.NewConn(raw)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return fail(replyError(err))
	}
	if err := tp.PrintfLine("EHLO %s", ehlo); err != nil {
		return fail(err)
	}
	_, ext, err := tp.ReadResponse(250)
	if err != nil {
		return fail(replyError(err))
	}
	offersTLS := false
	for _, line := range strings.Split(ext, "\n")[1:] {
		if strings.EqualFold(strings.TrimSpace(line), "STARTTLS") {
			offersTLS = true
		}
	}
	var conn net.Conn = &greetedConn{Conn: raw, r: io.MultiReader(strings.NewReader("220 "+ehlo+"\r\n"), tp.R)}
	secure := false
	switch {
	case offersTLS && tlsCfg != nil:
		if err := tp.PrintfLine("STARTTLS"); err != nil {
			return fail(err)
		}
		if _, _, err := tp.ReadResponse(220); err != nil {
			return fail(replyError(err))
		}
		tc := tls.Client(raw, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("%w: %v", errHandshake, err))
		}
		// After STARTTLS the server sends no new greeting (RFC 3207 4.2).
		conn, secure = &greetedConn{Conn: tc, r: io.MultiReader(strings.NewReader("220 "+ehlo+"\r\n"), tc)}, true
	case requireTLS:
		return fail(errors.New("the relay offers no STARTTLS, and the credentials are not sent in clear"))
	}
	raw.SetDeadline(time.Time{})
	c := smtp.NewClient(conn)
	c.CommandTimeout = commandTimeout
	if err := c.Hello(ehlo); err != nil {
		return fail(err)
	}
	if creds != nil {
		if !secure && requireTLS {
			return fail(errors.New("credentials are sent only over TLS"))
		}
		mech := sasl.NewPlainClient("", creds.username, creds.password)
		if !c.SupportsAuth(sasl.Plain) && c.SupportsAuth(sasl.Login) {
			mech = sasl.NewLoginClient(creds.username, creds.password)
		}
		if err := c.Auth(mech); err != nil {
			return fail(fmt.Errorf("AUTH at the relay: %w", err))
		}
	}
	return &smtpConn{c: c, stop: stop, remote: remoteName(addr, raw.RemoteAddr())}, nil
}

// remoteName names the server of a connection for the log as Postfix does:
// host[IP]:port.
func remoteName(addr string, ra net.Addr) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	ip := ra.String()
	if tcp, ok := ra.(*net.TCPAddr); ok {
		ip = tcp.IP.String()
	}
	return host + "[" + ip + "]:" + port
}

// replyError turns a textproto reply error into an *smtp.SMTPError, so that
// a 5xx greeting is classified like any other reply.
func replyError(err error) error {
	var te *textproto.Error
	if !errors.As(err, &te) {
		return err
	}
	e := &smtp.SMTPError{Code: te.Code, Message: te.Msg}
	var enh smtp.EnhancedCode
	if code, rest, ok := strings.Cut(te.Msg, " "); ok {
		if _, err := fmt.Sscanf(code, "%d.%d.%d", &enh[0], &enh[1], &enh[2]); err == nil {
			e.EnhancedCode, e.Message = enh, rest
		}
	}
	return e
}

// greetedConn is a connection whose first bytes are a greeting for go-smtp's
// client, which reads one on start.
type greetedConn struct {
	net.Conn
	r io.Reader
}

func (g *greetedConn) Read(p []byte) (int, error) { return g.r.Read(p) }

type smtpConn struct {
	c      *smtp.Client
	stop   func() bool
	remote string // host[IP]:port
	reply  string // the last transaction's answer to its data, "" when it failed
}

// describedConn is implemented by connections that can tell the log which
// server they reach and what it answered the last message.
type describedConn interface {
	Remote() string
	LastReply() string
}

func (s *smtpConn) Remote() string    { return s.remote }
func (s *smtpConn) LastReply() string { return s.reply }

// describe returns what the log says of a connection after a transaction:
// the server and its answer to the data when it took the message.
func describe(c Conn) (remote, reply string) {
	if d, ok := c.(describedConn); ok {
		return d.Remote(), d.LastReply()
	}
	return "", ""
}

// ConnLostError is a Send's error after which the connection is no longer
// usable: an I/O error, a 421 reply (RFC 5321 3.8: the server is closing
// the channel), or a failed RSET. AtMail is true when it came at MAIL
// FROM, the transaction's first command: nothing of the message reached
// the server then, so it may be sent again on another connection at once.
type ConnLostError struct {
	Err    error
	AtMail bool
}

func (e *ConnLostError) Error() string { return e.Err.Error() }
func (e *ConnLostError) Unwrap() error { return e.Err }

func (s *smtpConn) Send(ctx context.Context, from, to string, raw []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.reply = ""
	err, atMail := s.transaction(from, to, raw)
	if err == nil {
		return nil
	}
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code == 421 {
		return &ConnLostError{Err: err, AtMail: atMail}
	}
	// RFC 5321 4.1.1.5: RSET ends the refused transaction, so the
	// connection serves the next recipient.
	if rerr := s.c.Reset(); rerr != nil {
		return &ConnLostError{Err: errors.Join(err, rerr)}
	}
	return err
}

// transaction sends one message; atMail tells that an error came at MAIL
// FROM.
func (s *smtpConn) transaction(from, to string, raw []byte) (err error, atMail bool) {
	if err := s.c.Mail(from, nil); err != nil {
		return err, true
	}
	if err := s.c.Rcpt(to, nil); err != nil {
		return err, false
	}
	w, err := s.c.Data()
	if err != nil {
		return err, false
	}
	if _, err := w.Write(raw); err != nil {
		w.Close()
		return err, false
	}
	resp, err := w.CloseWithResponse()
	if err == nil {
		s.reply = "250 " + resp.StatusText // the remote's queue ID, often
	}
	return err, false
}

func (s *smtpConn) Close() error {
	s.stop()
	err := s.c.Quit()
	if err != nil {
		s.c.Close()
	}
	return err
}
