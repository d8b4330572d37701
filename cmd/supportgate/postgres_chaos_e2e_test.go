package main

// Two nodes on one PostgreSQL database under load, one of them killed with
// SIGKILL at random instants and restarted (DESIGN.md §15, issue 16):
// every message answered 250 is stored once, every reply is delivered, and
// none twice beyond what was in flight at a kill.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"
)

const (
	// chaosInbound customer messages go to the MX of both nodes, and
	// chaosReplies agents' messages to their submission, meanwhile.
	chaosInbound = 2000
	chaosReplies = 500
	// chaosMXClients send the inbound mail at once (half start at each
	// node), chaosSubmitters the replies: each keeps its connection.
	chaosMXClients  = 8
	chaosSubmitters = 4
	// chaosMinKills: the killing goes on until the workload is done and
	// at least this many kills happened; a kill comes chaosKillMin to
	// chaosKillMin+chaosKillSpread after the previous node was back.
	chaosMinKills   = 3
	chaosKillMin    = 200 * time.Millisecond
	chaosKillSpread = 1200 * time.Millisecond
	// chaosLease is the queue's retry time, which is a claim's lease: a
	// dead node's claims are delivered by the other this long after.
	chaosLease = "4s"
	// chaosConnections is [outbound] max_connections per node.
	chaosConnections = 2
	// recordsInFlight is queue/worker.go's: the outcomes of one
	// connection not yet written while it sends the next. A kill can
	// find that many delivered but not recorded per open connection:
	// they are sent again (SMTP's at-least-once, RFC 5321 6.1).
	recordsInFlight = 4
)

// chaosSender is one SMTP client of the workload: it keeps a connection,
// and on a lost connection or a 4xx tries again at the other node, as a
// sender's MTA tries the next MX (RFC 5321 5.1).
type chaosSender struct {
	addrs [2]string
	node  int // where the connection is, or goes next
	auth  func() sasl.Client
	c     *smtp.Client
}

// send delivers one message until a 250; a 5xx or a minute of failures
// is an error.
func (s *chaosSender) send(from, to, msg string) error {
	deadline := time.Now().Add(time.Minute)
	for attempt := 0; ; attempt++ {
		err := s.try(from, to, msg)
		if err == nil {
			return nil
		}
		if s.c != nil {
			s.c.Close()
			s.c = nil
		}
		var smtpErr *smtp.SMTPError
		if errors.As(err, &smtpErr) && smtpErr.Code >= 500 {
			return fmt.Errorf("%s: %w", s.addrs[s.node], err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no 250 within a minute: %w", err)
		}
		s.node = 1 - s.node
		if attempt%2 == 1 { // both nodes failed: one may be starting
			<-time.After(50 * time.Millisecond)
		}
	}
}

func (s *chaosSender) try(from, to, msg string) error {
	if s.c == nil {
		c, err := smtp.Dial(s.addrs[s.node])
		if err != nil {
			return err
		}
		c.CommandTimeout, c.SubmissionTimeout = 30*time.Second, 30*time.Second
		s.c = c
		if s.auth != nil {
			if err := c.Auth(s.auth()); err != nil {
				return err
			}
		}
	}
	return s.c.SendMail(from, []string{to}, strings.NewReader(msg))
}

func (s *chaosSender) close() {
	if s.c != nil {
		s.c.Quit()
		s.c.Close()
	}
}

func chaosInboundMsg(i int) (from, msg string) {
	from = fmt.Sprintf("customer-%d@customer.example", i)
	return from, fmt.Sprintf("From: %s\r\nTo: support@example.test\r\nSubject: Chaos %d\r\n"+
		"Message-ID: <chaos-%d@customer.example>\r\n\r\nMessage %d.\r\n", from, i, i, i)
}

func chaosReplyMsg(i int) (to, msg string) {
	to = fmt.Sprintf("reply-%d@customer.example", i)
	return to, fmt.Sprintf("From: alice@example.test\r\nTo: %s\r\nSubject: Chaos reply %d\r\n"+
		"Message-ID: <chaos-reply-%d@alice.example.test>\r\n\r\nHello from support, %d.\r\n", to, i, i, i)
}

func TestPostgresNodesSurviveSIGKILL(t *testing.T) {
	began := time.Now()
	dsn := pg.DSN(t)
	bin := daemonBinaryPlain(t)
	relay := newTestRelay(t)
	relay.start(t)
	outbound := func(path string) {
		patchConfig(t, path, `mode = "directory"`, fmt.Sprintf("mode = \"relay\"\nrelay = %q\nretry = [%q]\nmax_connections = %d\nmax_connections_per_domain = %d\n",
			relay.addr, chaosLease, chaosConnections, chaosConnections))
	}
	// Every inbound message has its own sender: the per-sender rate is
	// not what this test is about.
	var nodes [2]*pgNode
	for i := range nodes {
		nodes[i] = pgNodeConfig(t, dsn, "", outbound)
		nodes[i].start(t, bin)
	}
	mx := [2]string{nodes[0].d.addr(nodes[0].p.MX), nodes[1].d.addr(nodes[1].p.MX)}
	sub := [2]string{nodes[0].d.addr(nodes[0].p.Submission), nodes[1].d.addr(nodes[1].p.Submission)}

	var (
		mu       sync.Mutex
		accepted = map[int]bool{} // inbound messages answered 250
		replied  = map[int]bool{} // replies answered 250
		failures []error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, err)
	}
	for c := range chaosMXClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &chaosSender{addrs: mx, node: c % 2}
			defer s.close()
			for i := c; i < chaosInbound; i += chaosMXClients {
				from, msg := chaosInboundMsg(i)
				if err := s.send(from, "support@example.test", msg); err != nil {
					fail(fmt.Errorf("inbound %d: %w", i, err))
					return
				}
				mu.Lock()
				accepted[i] = true
				mu.Unlock()
			}
		}()
	}
	for c := range chaosSubmitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &chaosSender{addrs: sub, node: c % 2, auth: func() sasl.Client {
				return sasl.NewPlainClient("", "alice@example.test", "demo-alice")
			}}
			defer s.close()
			for i := c; i < chaosReplies; i += chaosSubmitters {
				to, msg := chaosReplyMsg(i)
				if err := s.send("alice@example.test", to, msg); err != nil {
					fail(fmt.Errorf("reply %d: %w", i, err))
					return
				}
				mu.Lock()
				replied[i] = true
				mu.Unlock()
			}
		}()
	}
	workDone := make(chan struct{})
	go func() { wg.Wait(); close(workDone) }()

	// The chaos: one node at a time is killed at a random instant and
	// started again, until the workload is done.
	kills, finished := 0, false
	for !finished || kills < chaosMinKills {
		next := time.After(chaosKillMin + rand.N(chaosKillSpread))
		select {
		case <-workDone:
			finished = true
			<-next
		case <-next:
		}
		n := nodes[rand.IntN(len(nodes))]
		n.d.kill()
		kills++
		n.start(t, bin)
	}
	workload := time.Since(began)
	for _, err := range failures {
		t.Error(err)
	}
	if len(accepted) != chaosInbound || len(replied) != chaosReplies {
		t.Fatalf("%d of %d inbound messages and %d of %d replies answered 250", len(accepted), chaosInbound, len(replied), chaosReplies)
	}

	// Every inbound message answered 250 is stored once.
	ctx := t.Context()
	db, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	stored := map[string]int{}
	rows, err := db.Query(ctx, `SELECT message_id_header FROM messages WHERE message_id_header LIKE '%chaos-%@customer.example%'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		stored[strings.Trim(id, "<>")]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for i := range chaosInbound {
		if n := stored[fmt.Sprintf("chaos-%d@customer.example", i)]; n != 1 {
			t.Errorf("inbound message %d, answered 250, is stored %d times", i, n)
		}
	}

	// Every reply is delivered to the relay, the dead nodes' claims by
	// the living after their lease; the queue ends empty.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var left int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM outbound_recipients WHERE state <> 'delivered'`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d outbound recipients still not delivered two minutes after the workload", left)
		}
		<-time.After(50 * time.Millisecond)
	}
	perRecipient, perMessageID := map[string]int{}, map[string]int{}
	for _, m := range relay.received() {
		perRecipient[m.To]++
		perMessageID[header(m.Data, "Message-ID")]++
	}
	for i := range chaosReplies {
		to, _ := chaosReplyMsg(i)
		if perRecipient[to] == 0 {
			t.Errorf("reply %d, answered 250, never reached the relay", i)
		}
	}
	twice := 0
	for _, n := range perMessageID {
		twice += n - 1
	}
	// Beyond SMTP's at-least-once, none twice: only what a killed node
	// had sent and not yet recorded (DESIGN.md §9, §15). That is at most
	// chaosConnections × recordsInFlight per kill; at this test's rate
	// (tens of replies a second, an outcome written within milliseconds)
	// fewer than one is in that state at a random instant, so more than
	// one per kill on the whole means deliveries are repeated for another
	// reason (a lease shorter than an attempt, a claim taken twice).
	if twice > kills {
		t.Errorf("%d deliveries sent twice after %d kills; at most one per kill was in flight (at most %d could be)",
			twice, kills, kills*chaosConnections*recordsInFlight)
	}
	t.Logf("%d inbound messages and %d replies with %d kills in %v (workload) and %v (all delivered); %d replies delivered twice",
		chaosInbound, chaosReplies, kills, workload.Round(time.Millisecond), time.Since(began).Round(time.Millisecond), twice)
}
