package queue

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// received is one transaction a fake server accepted.
type received struct {
	From, To string
	Data     []byte
	Conn     int // which connection carried it
}

// fakeSMTP is a real SMTP server on 127.0.0.1 (go-smtp's), whose answers a
// test decides: rcptReply returns an error for RCPT TO, nil to accept.
type fakeSMTP struct {
	Addr string
	ln   net.Listener
	srv  *smtp.Server

	mu        sync.Mutex
	rcptReply func(to string, attempt int) error
	attempts  map[string]int
	got       []received
	conns     int
	authUser  string // when set, AUTH PLAIN with this user and password "secret" is required
	authed    []string
}

func startFakeSMTP(t testing.TB) *fakeSMTP {
	t.Helper()
	f := &fakeSMTP{attempts: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.ln, f.Addr = ln, ln.Addr().String()
	f.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		f.mu.Lock()
		f.conns++
		n := f.conns
		f.mu.Unlock()
		return &fakeSession{f: f, conn: n}, nil
	}))
	f.srv.Domain = "relay.test"
	f.srv.AllowInsecureAuth = true
	go f.srv.Serve(ln)
	t.Cleanup(func() { f.srv.Close() })
	return f
}

func (f *fakeSMTP) received() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.got...)
}

type fakeSession struct {
	f      *fakeSMTP
	conn   int
	from   string
	to     []string
	authed bool
}

func (s *fakeSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *fakeSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.f.authUser || password != "se:cret" {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		s.f.mu.Lock()
		s.f.authed = append(s.f.authed, username)
		s.f.mu.Unlock()
		return nil
	}), nil
}

func (s *fakeSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.f.authUser != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from, s.to = from, nil
	return nil
}

func (s *fakeSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.f.mu.Lock()
	s.f.attempts[to]++
	n := s.f.attempts[to]
	reply := s.f.rcptReply
	s.f.mu.Unlock()
	if reply != nil {
		if err := reply(to, n); err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *fakeSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	for _, to := range s.to {
		s.f.got = append(s.f.got, received{From: s.from, To: to, Data: data, Conn: s.conn})
	}
	return nil
}

func (s *fakeSession) Reset()        { s.from, s.to = "", nil }
func (s *fakeSession) Logout() error { return nil }

// tempFail is a 451 for RCPT TO (RFC 5321 4.2.2: local error in processing).
var tempFail = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}

// noSuchUser is a 550 5.1.1.
var noSuchUser = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}

func hasPrefixFold(s, p string) bool {
	return strings.HasPrefix(strings.ToLower(s), strings.ToLower(p))
}
