package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/config"
)

// fakeClock is a settable clock for the limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testLimits() config.Limits {
	l := config.DefaultLimits()
	l.MaxConnectionsPerIP, l.MaxMessagesPerSenderPerHour, l.MaxAuthFailuresPerIP = 2, 3, 3
	l.AuthLockout, l.AuthFailureDelay = 10*time.Minute, time.Second
	return l
}

func TestLimiterConnections(t *testing.T) {
	l := NewLimiter(testLimits(), time.Now, nil)
	r1, ok1 := l.Connect("mx", "192.0.2.1")
	_, ok2 := l.Connect("mx", "192.0.2.1")
	_, ok3 := l.Connect("mx", "192.0.2.1")
	_, other := l.Connect("mx", "192.0.2.2")
	_, otherSvc := l.Connect("imap", "192.0.2.1")
	if !ok1 || !ok2 || ok3 || !other || !otherSvc {
		t.Fatalf("connects = %v %v %v, other IP %v, other service %v; want true true false true true", ok1, ok2, ok3, other, otherSvc)
	}
	r1()
	r1() // idempotent: frees one slot only
	if _, ok := l.Connect("mx", "192.0.2.1"); !ok {
		t.Error("a released slot is not free again")
	}
	if _, ok := l.Connect("mx", "192.0.2.1"); ok {
		t.Error("a double release freed two slots")
	}
}

func TestLimiterMessages(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)}
	l := NewLimiter(testLimits(), clk.now, nil)
	ctx := t.Context()
	steps := []struct {
		advance time.Duration
		sender  string
		want    bool
	}{
		{0, "a@x", true}, {time.Minute, "a@x", true}, {time.Minute, "a@x", true},
		{time.Minute, "a@x", false},     // fourth in the hour
		{0, "b@x", true},                // another sender
		{time.Minute, "a@x", false},     // refusals are not counted, but the hour is not over
		{56 * time.Minute, "a@x", true}, // 60 min after the first: it left the window
		{0, "a@x", false},
	}
	for i, s := range steps {
		clk.add(s.advance)
		if over := l.SenderOverLimit(ctx, s.sender); over == s.want {
			t.Errorf("step %d (%s): SenderOverLimit = %v before the message", i, s.sender, over)
		}
		if _, got, _ := l.TakeMessage(ctx, s.sender); got != s.want {
			t.Errorf("step %d (%s): TakeMessage = %v, want %v", i, s.sender, got, s.want)
		}
	}
	// A message given back (not accepted after all) does not count.
	clk.add(2 * time.Hour)
	for range 10 {
		give, ok, _ := l.TakeMessage(ctx, "c@x")
		if !ok {
			t.Fatal("a message given back was counted")
		}
		give()
		give() // idempotent
	}
	// Asking is not counting (issue 13: MAIL FROM + RSET).
	for range 100 {
		l.SenderOverLimit(ctx, "d@x")
	}
	if _, ok, _ := l.TakeMessage(ctx, "d@x"); !ok {
		t.Error("asking about a sender used up its quota")
	}
}

// TestLimiterAuthInFlight: guesses being checked count against the limit,
// so parallel connections get no more than max_auth_failures_per_ip
// checked (issue 13).
func TestLimiterAuthInFlight(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)}
	l := NewLimiter(testLimits(), clk.now, nil) // max 3 failures
	ip := "192.0.2.9"
	n := 0
	for range 40 {
		if l.AuthBegin(ip) {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d guesses in flight at once, want 3", n)
	}
	l.AuthEnd(ip) // a right password: its place is free again
	if !l.AuthBegin(ip) {
		t.Error("a guess that did not fail still counts")
	}
	for range 3 {
		l.AuthFailed(ip)
		l.AuthEnd(ip)
	}
	if !l.AuthLocked(ip) || l.AuthBegin(ip) {
		t.Error("three failures did not lock the address out")
	}
}

func TestLimiterAuthFailures(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)}
	l := NewLimiter(testLimits(), clk.now, nil)
	ip := "192.0.2.9"
	for i, want := range []struct {
		delay  time.Duration
		locked bool
	}{{time.Second, false}, {2 * time.Second, false}, {10 * time.Second, true}} {
		if l.AuthLocked(ip) {
			t.Fatalf("locked before failure %d", i+1)
		}
		d, locked := l.AuthFailed(ip)
		if d != want.delay || locked != want.locked {
			t.Errorf("failure %d: delay %v locked %v, want %v %v", i+1, d, locked, want.delay, want.locked)
		}
	}
	if !l.AuthLocked(ip) || l.AuthLocked("192.0.2.10") {
		t.Error("the lockout is not per IP")
	}
	clk.add(9 * time.Minute)
	if !l.AuthLocked(ip) {
		t.Error("unlocked before auth_lockout")
	}
	clk.add(time.Minute)
	if l.AuthLocked(ip) {
		t.Error("still locked after auth_lockout")
	}
	if d, _ := l.AuthFailed(ip); d != time.Second {
		t.Errorf("after the lockout the delay starts again at %v, want 1s", d)
	}
	// Failures older than auth_lockout are forgotten.
	clk.add(11 * time.Minute)
	l.AuthFailed(ip)
	if _, locked := l.AuthFailed(ip); locked {
		t.Error("a forgotten failure still counted")
	}
	// The map is swept.
	clk.add(time.Hour)
	l.AuthBegin("192.0.2.99")
	if len(l.fails) != 1 {
		t.Errorf("after the sweep: %d failure entries, want 1 (the new address's)", len(l.fails))
	}
}

// smtpConn is a raw SMTP client for limit tests.
type smtpConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialSMTP(t *testing.T, addr string) *smtpConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &smtpConn{c, bufio.NewReader(c)}
}

func (s *smtpConn) read() string {
	var all string
	for {
		line, err := s.r.ReadString('\n')
		all += line
		if err != nil || len(line) < 4 || line[3] == ' ' {
			return all
		}
	}
}

func (s *smtpConn) cmd(line string) string {
	s.c.Write([]byte(line + "\r\n"))
	return s.read()
}

func TestSMTPConnectionLimit(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) { c.Limits.MaxConnectionsPerIP = 2 })
	for _, addr := range []string{ts.mx, ts.submission} {
		a, b := dialSMTP(t, addr), dialSMTP(t, addr)
		a.read()
		b.read()
		c := dialSMTP(t, addr)
		if got := c.read(); !strings.HasPrefix(got, "421 4.7.0 Too many connections") {
			t.Errorf("%s: the third connection got %q, want 421 4.7.0", addr, got)
		}
		if _, err := c.r.ReadByte(); err == nil {
			t.Errorf("%s: the refused connection stays open", addr)
		}
		a.cmd("QUIT")
		a.c.Close()
		deadline := time.Now().Add(5 * time.Second)
		for {
			d := dialSMTP(t, addr)
			if strings.HasPrefix(d.read(), "220") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: a closed connection did not free its slot", addr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestIMAPConnectionLimit(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) { c.Limits.MaxConnectionsPerIP = 1 })
	first := imapLogin(t, ts.imap, "alice@example.test", "demo-alice", nil)
	c, err := net.Dial("tcp", ts.imap)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "* BYE Too many connections") {
		t.Errorf("second IMAP connection got %q, want * BYE", line)
	}
	first.Logout().Wait()
	first.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := imapclient.DialInsecure(ts.imap, nil)
		if err == nil {
			err = c.Login("alice@example.test", "demo-alice").Wait()
			c.Close()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slot was not freed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMXSenderRate(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) { c.Limits.MaxMessagesPerSenderPerHour = 2 })
	for i := range 2 {
		if err := smtpSend(ts.mx, nil, "fast@x.example", []string{"support@example.test"}, customerMail(strings.Repeat("r", i+1)+"@x.example", "hi")); err != nil {
			t.Fatal(err)
		}
	}
	err := smtpSend(ts.mx, nil, "fast@x.example", []string{"support@example.test"}, customerMail("r3@x.example", "hi"))
	wantSMTPError(t, err, 451, smtp.EnhancedCode{4, 7, 1}, "Too many messages from this sender")
	if err := smtpSend(ts.mx, nil, "slow@x.example", []string{"support@example.test"}, customerMail("s1@x.example", "hi")); err != nil {
		t.Errorf("another sender was refused: %v", err)
	}
}

func TestMXRecipientLimitAndSize(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) {
		c.Limits.MaxRecipients = 2
		c.Server.MaxMessageBytes = 2048
	})
	s := dialSMTP(t, ts.mx)
	s.read()
	if ehlo := s.cmd("EHLO x.example"); !strings.Contains(ehlo, "SIZE 2048") || !strings.Contains(ehlo, "RCPTMAX=2") {
		t.Errorf("EHLO does not advertise SIZE 2048 and RCPTMAX=2 (RFC 1870): %q", ehlo)
	}
	if r := s.cmd("MAIL FROM:<a@x.example> SIZE=4096"); !strings.HasPrefix(r, "552 5.3.4") {
		t.Errorf("MAIL with SIZE over the limit got %q, want 552 5.3.4", r)
	}
	s.cmd("MAIL FROM:<a@x.example>")
	s.cmd("RCPT TO:<support@example.test>")
	s.cmd("RCPT TO:<support+b@example.test>")
	if r := s.cmd("RCPT TO:<support+c@example.test>"); !strings.HasPrefix(r, "452 4.5.3") {
		t.Errorf("the third RCPT got %q, want 452 4.5.3", r)
	}
	s.cmd("DATA")
	if r := s.cmd("Subject: big\r\n\r\n" + strings.Repeat("x", 3000) + "\r\n."); !strings.HasPrefix(r, "552 5.3.4") {
		t.Errorf("an oversized DATA got %q, want 552 5.3.4", r)
	}
}

func TestSubmissionAuthSlowedThenRefused(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) {
		c.Limits.MaxAuthFailuresPerIP, c.Limits.AuthFailureDelay = 3, 100*time.Millisecond
	})
	try := func(pass string) (time.Duration, error) {
		c, err := smtp.Dial(ts.submission)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		err = c.Auth(sasl.NewPlainClient("", "alice@example.test", pass))
		return time.Since(start), err
	}
	for i := 1; i <= 3; i++ {
		took, err := try("wrong")
		wantSMTPError(t, err, 535, smtp.EnhancedCode{5, 7, 8}, "")
		// The n-th failure waits at least n x auth_failure_delay (bcrypt adds noise above).
		if want := time.Duration(i) * 100 * time.Millisecond; took < want {
			t.Errorf("failure %d answered after %v, want a growing delay of at least %v", i, took, want)
		}
	}
	_, err := try("demo-alice") // the right password, but the address is locked
	wantSMTPError(t, err, 454, smtp.EnhancedCode{4, 7, 0}, "Too many failed logins")
	// IMAP shares the count: NO [UNAVAILABLE].
	c, err := imapclient.DialInsecure(ts.imap, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Login("alice@example.test", "demo-alice").Wait()
	if err == nil || !strings.Contains(err.Error(), "UNAVAILABLE") || !strings.Contains(err.Error(), "Too many failed logins") {
		t.Errorf("IMAP login from a locked address: %v, want NO [UNAVAILABLE]", err)
	}
}

func TestIMAPAuthFailuresLock(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) {
		c.Limits.MaxAuthFailuresPerIP, c.Limits.AuthFailureDelay = 2, 50*time.Millisecond
	})
	c, err := imapclient.DialInsecure(ts.imap, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 2 {
		start := time.Now()
		if err := c.Login("alice@example.test", "wrong").Wait(); err == nil || time.Since(start) < 50*time.Millisecond {
			t.Errorf("a wrong password: %v after %v, want NO after a delay", err, time.Since(start))
		}
	}
	err = c.Login("alice@example.test", "demo-alice").Wait()
	if err == nil || !strings.Contains(err.Error(), "UNAVAILABLE") {
		t.Errorf("login after the lockout: %v, want NO [UNAVAILABLE]", err)
	}
	_, err = smtp.Dial(ts.submission)
	if err != nil {
		t.Fatal(err)
	}
}

// TestSlowLoris: a client sending one byte per second cannot hold a
// connection beyond read_timeout, in a command or in DATA.
func TestSlowLoris(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) { c.Limits.ReadTimeout = 1500 * time.Millisecond })
	for _, tc := range []struct{ name, prefix, trickle string }{
		{"command", "", "EHLO slow.example.with.a.long.name\r\n"},
		{"data", "EHLO x.example\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<support@example.test>\r\nDATA\r\n", "Subject: slow\r\n\r\nbody body body\r\n.\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := dialSMTP(t, ts.mx)
			s.read()
			if tc.prefix != "" {
				s.c.Write([]byte(tc.prefix))
				for range 4 {
					s.read()
				}
			}
			start := time.Now()
			closed := make(chan time.Duration, 1)
			go func() {
				for {
					if _, err := s.r.ReadString('\n'); err != nil {
						closed <- time.Since(start)
						return
					}
				}
			}()
			for i := 0; i < len(tc.trickle); i++ {
				select {
				case d := <-closed:
					if d > 3*time.Second {
						t.Errorf("the connection was held %v, beyond read_timeout", d)
					}
					return
				case <-time.After(time.Second):
				}
				s.c.Write([]byte{tc.trickle[i]})
			}
			t.Errorf("a client sending a byte a second held the connection for %v", time.Since(start))
		})
	}
}

// TestParallelGuessesAreBounded: 20 SMTP and 20 IMAP connections guessing
// at once get no more than max_auth_failures_per_ip guesses checked
// (issue 13: all 40 were).
func TestParallelGuessesAreBounded(t *testing.T) {
	var logs lockedBuffer
	ts := newLoggingTestServer(t, nil, func(c *config.Config) {
		c.Limits.MaxAuthFailuresPerIP, c.Limits.AuthFailureDelay, c.Limits.MaxConnectionsPerIP = 10, 50*time.Millisecond, 40
	}, &logs)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				c, err := smtp.Dial(ts.submission)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				<-start
				c.Auth(sasl.NewPlainClient("", "alice@example.test", fmt.Sprintf("guess-%d", i)))
				return
			}
			c, err := imapclient.DialInsecure(ts.imap, nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			<-start
			c.Login("alice@example.test", fmt.Sprintf("guess-%d", i)).Wait()
		}()
	}
	close(start)
	wg.Wait()
	if n := strings.Count(logs.String(), "msg=\"authentication failed\""); n > 10 || n == 0 {
		t.Errorf("%d guesses were checked, want at most max_auth_failures_per_ip (10)", n)
	}
}

// TestMailRsetDoesNotUseUpQuota: MAIL FROM:<victim> and RSET, again and
// again, count nothing; the victim's real mail is accepted (issue 13).
func TestMailRsetDoesNotUseUpQuota(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) { c.Limits.MaxMessagesPerSenderPerHour = 3 })
	for range 4 { // 100 in all; a session without a message ends after 100 commands
		c, err := smtp.Dial(ts.mx)
		if err != nil {
			t.Fatal(err)
		}
		for range 25 {
			if err := c.Mail("gina@customer.example", nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Reset(); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
	for i := range 3 {
		if err := smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"},
			customerMail(fmt.Sprintf("q%d@customer.example", i), "Quota")); err != nil {
			t.Fatalf("message %d of the real sender: %v", i+1, err)
		}
	}
	err := smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"}, customerMail("q4@customer.example", "Quota"))
	wantSMTPError(t, err, 451, smtp.EnhancedCode{4, 7, 1}, "Too many messages")
}

// TestSessionWithoutMessageIsClosed: NOOP or MAIL+RSET forever is closed
// after 100 commands (DESIGN.md §8); a message starts the count again.
func TestSessionWithoutMessageIsClosed(t *testing.T) {
	ts := newTestServer(t, nil, nil)
	c := dialSMTPRaw(t, ts.mx, 30*time.Second)
	read, send := c.reply, c.cmd
	read()
	send("EHLO x.example")
	for range 60 {
		send("NOOP")
	}
	for _, cmd := range []string{"MAIL FROM:<gina@customer.example>", "RCPT TO:<support@example.test>", "DATA"} {
		send(cmd)
	}
	fmt.Fprint(c, customerMail("idle1@customer.example", "Idle")+".\r\n")
	if reply := read(); !strings.HasPrefix(reply, "250") {
		t.Fatalf("the message: %s", reply)
	}
	n := 0
	var reply string
	for n < 200 {
		n++
		if reply = send("MAIL FROM:<gina@customer.example>"); !strings.HasPrefix(reply, "250") {
			break
		}
		n++
		if reply = send("RSET"); !strings.HasPrefix(reply, "250") {
			break
		}
	}
	if !strings.HasPrefix(reply, "421 4.7.0") || n != 101 {
		t.Errorf("command %d after the message was answered %q, want the 101st to get 421 4.7.0", n, reply)
	}
}

// TestInflightBudget: message data beyond max_inflight_bytes is refused
// for now (451 4.3.1), and the budget is given back after each message,
// stored or refused (DESIGN.md §8).
func TestInflightBudget(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) {
		c.Server.MaxMessageBytes = 1536 << 10
		c.Limits.MaxInflightBytes = 1536 << 10
	})
	// 900 KB: the first one's buffer grows to 1 MiB and no further, the
	// second one's cannot grow past the 512 KiB left.
	big := customerMail("big1@customer.example", "Big") + strings.Repeat("0123456789abcdef\r\n", 50000)
	// Hold most of the budget with a message that is still arriving.
	c, err := smtp.Dial(ts.mx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("slow@customer.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("support@example.test", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(big)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ts.srv.inflight.Used() < 1<<20; { // the server holds it
		if time.Now().After(deadline) {
			t.Fatalf("the server holds %d bytes of the message after a minute", ts.srv.inflight.Used())
		}
		time.Sleep(time.Millisecond)
	}
	err = smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"},
		strings.Replace(big, "big1@", "big2@", 1))
	wantSMTPError(t, err, 451, smtp.EnhancedCode{4, 3, 1}, "too much mail at once")
	if err := w.Close(); err != nil {
		t.Fatalf("the first message: %v", err)
	}
	if u := ts.srv.inflight.Used(); u != 0 {
		t.Errorf("%d bytes still taken after the messages", u)
	}
	// With the budget free again, the refused message gets through.
	if err := smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"},
		strings.Replace(big, "big1@", "big2@", 1)); err != nil {
		t.Errorf("the retry: %v", err)
	}
}

// TestIMAPLiteralLimits: an over-long synchronizing literal is refused at
// once (the client waits for "+" and sends nothing more); APPEND is bounded
// by max_message_bytes, and by max_inflight_bytes with SMTP together
// (DESIGN.md §8).
func TestIMAPLiteralLimits(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) {
		c.Server.MaxMessageBytes = 1536 << 10
		c.Limits.MaxInflightBytes = 1536 << 10
	})
	c, err := net.Dial("tcp", ts.imap)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	line := func() string {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		return l
	}
	line()
	fmt.Fprintf(c, "a LOGIN {100000}\r\n") // and nothing more
	if l := line(); !strings.HasPrefix(l, "a NO [TOOBIG] ") {
		t.Fatalf("an over-long synchronizing literal on LOGIN: %q", l)
	}
	fmt.Fprintf(c, "b LOGIN alice@example.test demo-alice\r\n")
	for l := line(); !strings.HasPrefix(l, "b "); l = line() {
	}
	fmt.Fprintf(c, "c APPEND Drafts {%d}\r\n", 2<<20)
	if l := line(); !strings.HasPrefix(l, "c NO [TOOBIG] ") {
		t.Fatalf("an APPEND over max_message_bytes: %q", l)
	}
	// An SMTP message in flight holds most of the budget (see
	// TestInflightBudget); an APPEND then gets NO [LIMIT].
	sc, err := smtp.Dial(ts.mx)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.Mail("slow@customer.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := sc.Rcpt("support@example.test", nil); err != nil {
		t.Fatal(err)
	}
	w, err := sc.Data()
	if err != nil {
		t.Fatal(err)
	}
	big := customerMail("held@customer.example", "Big") + strings.Repeat("0123456789abcdef\r\n", 50000)
	if _, err := w.Write([]byte(big)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ts.srv.inflight.Used() < 1<<20; {
		if time.Now().After(deadline) {
			t.Fatal("the SMTP message is not held")
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Fprintf(c, "d APPEND Drafts {%d}\r\n", len(big))
	if l := line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND: %q", l)
	}
	io.WriteString(c, big+"\r\n")
	if l := line(); !strings.HasPrefix(l, "d NO [LIMIT] ") {
		t.Errorf("an APPEND over the budget: %q", l)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "e APPEND Drafts {%d}\r\n", len(big))
	line()
	io.WriteString(c, big+"\r\n")
	if l := line(); !strings.HasPrefix(l, "e OK ") {
		t.Errorf("the APPEND with the budget free: %q", l)
	}
	if u := ts.srv.inflight.Used(); u != 0 {
		t.Errorf("%d bytes still taken", u)
	}
}
