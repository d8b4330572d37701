package queue

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// oneShotSMTP is a minimal SMTP server on loopback that carries one
// transaction per connection, like a relay with a per-connection message
// limit or a short idle timeout: after it, it answers the next MAIL FROM
// with 421 and closes (say421), or closes at once after its 250.
type oneShotSMTP struct {
	addr   string
	say421 bool

	mu    sync.Mutex
	conns int
	got   []string // the recipients of accepted messages
}

func startOneShotSMTP(t *testing.T, say421 bool) *oneShotSMTP {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &oneShotSMTP{addr: l.Addr().String(), say421: say421}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); s.serve(c) }()
		}
	}()
	return s
}

func (s *oneShotSMTP) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	say := func(line string) { c.Write([]byte(line + "\r\n")) }
	say("220 oneshot.test ESMTP")
	done, rcpt := 0, ""
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250 oneshot.test")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			if done > 0 {
				say("421 4.7.0 oneshot.test One message per connection, closing")
				return
			}
			say("250 2.1.0 Ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			rcpt = strings.Trim(strings.TrimSpace(line)[len("RCPT TO:"):], "<>")
			say("250 2.1.5 Ok")
		case cmd == "DATA":
			say("354 End data with <CR><LF>.<CR><LF>")
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			s.mu.Lock()
			s.got = append(s.got, rcpt)
			s.mu.Unlock()
			say("250 2.0.0 Ok: queued")
			done++
			if !s.say421 {
				return // closed without a word, like an idle timeout
			}
		case cmd == "RSET", cmd == "NOOP":
			say("250 2.0.0 Ok")
		case cmd == "QUIT":
			say("221 2.0.0 Bye")
			return
		default:
			say("502 5.5.2 Error: command not recognized")
		}
	}
}

// TestConnectionClosedBetweenTransactionsIsReopened: a relay that takes one
// message per connection (421 at the next MAIL FROM, or a silent close)
// gets every recipient of a batch at the first attempt, each on a new
// connection; before, the recipient after the close was deferred by the
// retry schedule (here an hour) and the team told of a delay.
func TestConnectionClosedBetweenTransactionsIsReopened(t *testing.T) {
	for _, tc := range []struct {
		name   string
		say421 bool
	}{{"421", true}, {"close", false}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startOneShotSMTP(t, tc.say421)
			es := &eventStore{Store: openStore(t)}
			queueReply(t, es, 1, "a@customer.example", "b@customer.example", "c@customer.example")
			runWorker(t, es, &RelayTransport{Hostname: "sg.test", Relay: srv.addr}, time.Hour, 24*time.Hour)
			rs := waitState(t, es, map[string]store.RecipientState{"a@customer.example": store.RecipientDelivered,
				"b@customer.example": store.RecipientDelivered, "c@customer.example": store.RecipientDelivered})
			for _, r := range rs {
				if r.Attempts != 1 {
					t.Errorf("%s: %d attempts, want 1", r.Recipient, r.Attempts)
				}
			}
			if ev := es.eventsOf(t, "delivery-delayed"); len(ev) != 0 {
				t.Errorf("delay events %+v, want none", ev)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.got) != 3 || srv.conns != 3 {
				t.Errorf("server got %v over %d connections, want 3 messages over 3", srv.got, srv.conns)
			}
		})
	}
}
