package gateway

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// errInternal is what a store or a library might say; it must never reach
// a client.
var errInternal = errors.New("sqlite: disk I/O error at /var/lib/supportgate/supportgate.db-wal")

// failingSession fails the command named by fail with errInternal, or with
// a wrapped *smtp.SMTPError when wrapped is set.
type failingSession struct {
	fail    string
	wrapped bool
	log     *slog.Logger
}

func (f *failingSession) err(cmd string) error {
	if cmd != f.fail {
		return nil
	}
	if f.wrapped {
		return errors.Join(errors.New("context"), errSenderRate)
	}
	return errInternal
}

func (f *failingSession) connLog() *slog.Logger { return f.log }
func (f *failingSession) Reset()                {}
func (f *failingSession) Logout() error         { return nil }
func (f *failingSession) Mail(string, *smtp.MailOptions) error {
	return f.err("MAIL")
}
func (f *failingSession) Rcpt(string, *smtp.RcptOptions) error { return f.err("RCPT") }
func (f *failingSession) Data(r io.Reader) error {
	io.Copy(io.Discard, r)
	return f.err("DATA")
}
func (f *failingSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (f *failingSession) Auth(string) (sasl.Server, error) {
	if err := f.err("AUTH"); err != nil {
		return nil, err
	}
	return sasl.NewPlainServer(func(_, _, _ string) error { return f.err("SASL") }), nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestInternalErrorsAreSafe: whatever a session method fails with, the
// client reads 451 4.3.0 and our sentence, never the error's text; the log
// has the text with the connection's ID. Replies meant for the client pass,
// even wrapped.
func TestInternalErrorsAreSafe(t *testing.T) {
	for _, tc := range []struct {
		fail    string
		wrapped bool
		code    int
		enh     smtp.EnhancedCode
	}{
		{"MAIL", false, 451, smtp.EnhancedCode{4, 3, 0}},
		{"RCPT", false, 451, smtp.EnhancedCode{4, 3, 0}},
		{"DATA", false, 451, smtp.EnhancedCode{4, 3, 0}},
		{"AUTH", false, 451, smtp.EnhancedCode{4, 3, 0}},
		{"SASL", false, 535, smtp.EnhancedCode{5, 7, 8}},
		{"MAIL", true, 451, smtp.EnhancedCode{4, 7, 1}}, // errSenderRate, unwrapped
	} {
		t.Run(tc.fail, func(t *testing.T) {
			logs := &lockedBuffer{}
			log := slog.New(slog.NewTextHandler(logs, nil))
			srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
				return &failingSession{fail: tc.fail, wrapped: tc.wrapped, log: log.With("conn", "mx-77")}, nil
			}))
			srv.Domain = "mail.example.test"
			srv.AllowInsecureAuth = true
			s := &smtpServer{Server: srv, limits: NewLimiter(testLimits(), time.Now, nil), service: "mx", log: log}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go s.Serve(l)
			t.Cleanup(func() { s.Close() })

			var auth sasl.Client
			if tc.fail == "AUTH" || tc.fail == "SASL" {
				auth = sasl.NewPlainClient("", "alice@example.test", "pw")
			}
			err = smtpSend(l.Addr().String(), auth, "a@customer.example", []string{"support@example.test"}, "Subject: x\r\n\r\nx\r\n")
			var e *smtp.SMTPError
			if !errors.As(err, &e) || e.Code != tc.code || e.EnhancedCode != tc.enh {
				t.Fatalf("%s failing got %v, want %d %v", tc.fail, err, tc.code, tc.enh)
			}
			if strings.Contains(e.Message, "sqlite") || strings.Contains(e.Message, "/var/lib") || strings.Contains(e.Message, "context") {
				t.Errorf("internal text reached the client: %q", e.Message)
			}
			if !tc.wrapped && tc.fail != "SASL" && (!strings.Contains(logs.String(), "conn=mx-77") || !strings.Contains(logs.String(), "disk I/O error")) {
				t.Errorf("the failure is not logged with the connection ID:\n%s", logs.String())
			}
		})
	}
}
