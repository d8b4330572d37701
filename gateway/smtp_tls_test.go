package gateway

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TestSubmissionTLS: from another machine, AUTH is refused until STARTTLS
// (RFC 4954 4, 538 5.7.11) and works after it; implicit TLS (RFC 8314)
// serves the same session; the MX offers STARTTLS too.
func TestSubmissionTLS(t *testing.T) {
	ip := nonLoopbackIP(t)
	s, _ := tlsTestServer(t, t.TempDir(), "mail.example.test")
	sub, mx := s.newSubmission(), s.newMX()
	t.Cleanup(func() { sub.Close(); mx.Close() })
	listen := func() net.Listener {
		l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	plain, implicit, mxl := listen(), listen(), listen()
	go sub.Serve(plain)
	go sub.Serve(tls.NewListener(implicit, s.tlsConfig))
	go mx.Serve(mxl)
	tlsConf := &tls.Config{InsecureSkipVerify: true}
	alice := func() sasl.Client { return sasl.NewPlainClient("", "alice@example.test", "demo-alice") }
	msg := "From: alice@example.test\r\nTo: new@customer.example\r\nSubject: hello\r\n\r\nhi\r\n"

	c, err := smtp.Dial(plain.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH is advertised over plaintext to another machine")
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Error("STARTTLS is not advertised")
	}
	err = c.Auth(alice())
	if err == nil || !strings.Contains(err.Error(), "538") && !strings.Contains(err.Error(), "not supported") {
		t.Errorf("AUTH over plaintext: %v", err)
	}
	c.Close()

	c, err = smtp.DialStartTLS(plain.Addr().String(), tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(alice()); err != nil {
		t.Fatalf("AUTH after STARTTLS: %v", err)
	}
	if err := c.SendMail("alice@example.test", []string{"new@customer.example"}, strings.NewReader(msg)); err != nil {
		t.Errorf("submission after STARTTLS: %v", err)
	}
	c.Close()

	c, err = smtp.DialTLS(implicit.Addr().String(), tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(alice()); err != nil {
		t.Errorf("AUTH over implicit TLS: %v", err)
	}
	c.Close()

	c, err = smtp.Dial(mxl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Error("the MX does not offer STARTTLS")
	}
	c.Close()
}
