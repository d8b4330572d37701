package gateway

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/supportgate/supportgate/config"
)

// rawIMAP is a hand-driven IMAP connection.
type rawIMAP struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRawIMAP(t *testing.T, addr string) *rawIMAP {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &rawIMAP{t: t, c: c, r: bufio.NewReader(c)}
	r.until("* OK")
	return r
}

// until reads lines until one starts with prefix, within 10 s; it returns
// that line, or "" and the error when the connection ends first.
func (r *rawIMAP) until(prefix string) (string, error) {
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		line, err := r.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(line, prefix) {
			return line, nil
		}
	}
}

// droppedWithin reports how soon the server closes the connection, false
// when it is still open after d.
func (r *rawIMAP) droppedWithin(d time.Duration) (time.Duration, bool) {
	start := time.Now()
	r.c.SetReadDeadline(start.Add(d))
	for {
		if _, err := r.r.ReadString('\n'); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return d, false
			}
			return time.Since(start), true
		}
	}
}

// TestIMAPSlowLoris: with read_timeout 1s, a client that stays silent
// before login, leaves a command unfinished, trickles a command a byte at a
// time or stalls in a literal is dropped within about read_timeout (the
// library alone would wait 30 s, 30 s, 30 s and 5 min), while a logged-in
// client may stay silent, also under IDLE (RFC 9051 5.4, RFC 2177), and the
// server serves a normal client all the while.
func TestIMAPSlowLoris(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) { c.Limits.ReadTimeout = time.Second })
	const bound = 3 * time.Second // read_timeout and some slack

	type result struct {
		name    string
		dropped bool
		after   time.Duration
		detail  string
	}
	results := make(chan result, 10)
	var wg sync.WaitGroup
	slow := func(name string, f func(r *rawIMAP) result) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := f(dialRawIMAP(t, ts.imap))
			res.name = name
			results <- res
		}()
	}
	login := func(r *rawIMAP) {
		r.c.Write([]byte("l1 LOGIN alice@example.test demo-alice\r\n"))
		if _, err := r.until("l1 OK"); err != nil {
			t.Errorf("login: %v", err)
		}
	}
	slow("silent before login", func(r *rawIMAP) result {
		d, dropped := r.droppedWithin(bound)
		return result{dropped: dropped, after: d}
	})
	slow("unfinished command", func(r *rawIMAP) result {
		r.c.Write([]byte("a1 LOGIN alice@example.test"))
		d, dropped := r.droppedWithin(bound)
		return result{dropped: dropped, after: d}
	})
	slow("trickled command", func(r *rawIMAP) result {
		cmd := "a1 CAPABILITY\r\n"
		start := time.Now()
		for i := 0; i < len(cmd); i++ {
			if _, err := r.c.Write([]byte{cmd[i]}); err != nil {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		line, err := r.until("a1 ")
		return result{dropped: err != nil, after: time.Since(start), detail: line}
	})
	slow("NOOPs without ever logging in", func(r *rawIMAP) result {
		// Each command is answered at once, so no single read waits long;
		// the connection still has read_timeout in all to log in.
		start := time.Now()
		for i := 0; time.Since(start) < 2*bound; i++ {
			if _, err := fmt.Fprintf(r.c, "n%d NOOP\r\n", i); err != nil {
				break
			}
			if _, err := r.until(fmt.Sprintf("n%d ", i)); err != nil {
				return result{dropped: true, after: time.Since(start)}
			}
			time.Sleep(300 * time.Millisecond)
		}
		return result{after: time.Since(start)}
	})
	slow("stalled literal", func(r *rawIMAP) result {
		login(r)
		r.c.Write([]byte("a2 APPEND Drafts {100}\r\n"))
		if _, err := r.until("+"); err != nil {
			return result{detail: "no continuation: " + err.Error()}
		}
		r.c.Write([]byte("Subject: x\r\n"))
		d, dropped := r.droppedWithin(bound)
		return result{dropped: dropped, after: d}
	})
	slow("logged in and silent", func(r *rawIMAP) result {
		login(r)
		time.Sleep(2500 * time.Millisecond)
		r.c.Write([]byte("a3 NOOP\r\n"))
		line, err := r.until("a3 ")
		return result{dropped: err != nil || !strings.HasPrefix(line, "a3 OK"), detail: line}
	})
	slow("IDLE", func(r *rawIMAP) result {
		login(r)
		r.c.Write([]byte("a4 SELECT INBOX\r\n"))
		r.until("a4 OK")
		r.c.Write([]byte("a5 IDLE\r\n"))
		r.until("+")
		time.Sleep(2500 * time.Millisecond)
		r.c.Write([]byte("DONE\r\n"))
		line, err := r.until("a5 ")
		return result{dropped: err != nil || !strings.HasPrefix(line, "a5 OK"), detail: line}
	})

	// Meanwhile, a normal client is served.
	time.Sleep(500 * time.Millisecond)
	c := imapLogin(t, ts.imap, "bob@example.test", "demo-bob", nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Errorf("a normal client beside the slow ones: %v", err)
	}
	c.Logout().Wait()

	wg.Wait()
	close(results)
	for res := range results {
		keep := res.name == "logged in and silent" || res.name == "IDLE"
		switch {
		case keep && res.dropped:
			t.Errorf("%s: dropped (%q); an authenticated session may stay silent 30 minutes", res.name, res.detail)
		case !keep && !res.dropped:
			t.Errorf("%s: still served after %v (%q), want dropped within read_timeout", res.name, res.after, res.detail)
		case !keep && res.after > bound:
			t.Errorf("%s: dropped after %v, want within %v", res.name, res.after, bound)
		}
	}
}

// TestIMAPSTLSHandshakeDeadline: on implicit TLS, a client that connects
// and never starts the handshake is dropped after read_timeout (go-imap
// writes its greeting, and so runs the handshake, with no read deadline).
func TestIMAPSTLSHandshakeDeadline(t *testing.T) {
	s, _ := tlsTestServer(t, t.TempDir(), "imaps.example")
	c := *s.cfg()
	c.Limits.ReadTimeout = time.Second
	s.conf.Store(&c)
	srv := s.newIMAP()
	t.Cleanup(func() { srv.Close() })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(l)

	silent, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	r := &rawIMAP{t: t, c: silent, r: bufio.NewReader(silent)}
	if d, dropped := r.droppedWithin(3 * time.Second); !dropped {
		t.Errorf("a client that never starts TLS still held the connection after %v", d)
	}

	// A real client still gets in.
	conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.HasPrefix(line, "* OK") {
		t.Errorf("greeting over TLS: %q, %v", line, err)
	}
}
