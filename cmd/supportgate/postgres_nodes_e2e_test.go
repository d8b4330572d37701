package main

// Several nodes on one PostgreSQL database (DESIGN.md §15, issue 16): how
// fast one node's IMAP session sees another node's change, and what a
// node killed at random instants under load loses (nothing) and sends
// twice (only what was in flight at the kill).

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"
)

// pgNode is one supportgate node of a test on PostgreSQL: its process
// (replaced when restarted), ports, directory and configuration.
type pgNode struct {
	d   *daemon
	p   ports
	dir string
	cfg string
}

// pgNodeConfig writes the demo configuration of a node on the database
// dsn, with extra appended (more tables), and returns the node unstarted.
// edit, when set, changes the configuration before (relayConfig...).
func pgNodeConfig(t *testing.T, dsn, extra string, edit func(path string)) *pgNode {
	t.Helper()
	n := &pgNode{dir: t.TempDir(), p: freePorts(t)}
	n.cfg = testConfig(t, n.dir, n.p)
	if edit != nil {
		edit(n.cfg)
	}
	doc, err := os.ReadFile(n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	doc = append(doc, fmt.Sprintf("\n[store]\nengine = \"postgres\"\ndsn = %q\n%s", dsn, extra)...)
	if err := os.WriteFile(n.cfg, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	return n
}

// start runs the node with bin and waits until it listens.
func (n *pgNode) start(t *testing.T, bin string) {
	t.Helper()
	n.d = startDaemonBinary(t, bin, n.dir, n.p, "-config", n.cfg)
}

// idleWatch is an agent's IMAP session in IDLE on a mailbox, reporting
// when each EXISTS and EXPUNGE arrived.
type idleWatch struct {
	c       *imapclient.Client
	idle    *imapclient.IdleCommand
	exists  chan event
	expunge chan event
}

// event is an untagged response under IDLE: when it came, and the count
// (EXISTS) or sequence number (EXPUNGE) it carried.
type event struct {
	at time.Time
	n  uint32
}

func watchIdle(t *testing.T, addr, user, pass, mailbox string) *idleWatch {
	t.Helper()
	w := &idleWatch{exists: make(chan event, 100), expunge: make(chan event, 100)}
	c, err := imapclient.DialInsecure(addr, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					w.exists <- event{time.Now(), *d.NumMessages}
				}
			},
			Expunge: func(n uint32) { w.expunge <- event{time.Now(), n} },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select(mailbox, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if w.idle, err = c.Idle(); err != nil {
		t.Fatal(err)
	}
	w.c = c
	return w
}

// within waits for the event of ch that carries n, and fails the test
// unless it came less than limit after since (the contract: as fast as on
// one node).
func within(t *testing.T, ch <-chan event, n uint32, since time.Time, limit time.Duration, what string) time.Duration {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-ch:
			if e.n != n {
				continue // another response (an EXISTS after an EXPUNGE)
			}
			d := e.at.Sub(since)
			if d >= limit {
				t.Errorf("%s came %v after the command on the other node; want < %v", what, d, limit)
			}
			return d
		case <-timeout:
			t.Fatalf("no %s within 10s", what)
			return 0
		}
	}
}

// sendCustomerMailAt sends customer mail i like sendCustomerMail and
// returns the instant its 250 arrived.
func sendCustomerMailAt(t *testing.T, addr string, i int) time.Time {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := fmt.Sprintf("From: Erin <erin@customer.example>\r\nTo: support@example.test\r\nSubject: Latency %d\r\n"+
		"Message-ID: <latency-%d@customer.example>\r\n\r\nIt crashed %d times.\r\n", i, i, i)
	if err := c.SendMail("erin@customer.example", []string{"support@example.test"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("MX: %v", err)
	}
	at := time.Now()
	c.Quit()
	return at
}

// TestPostgresIdleSeesOtherNode: an agent's IDLE on node B sees node A's
// new mail (EXISTS) and node A's move of a conversation to Closed
// (EXPUNGE from INBOX) less than a second after A answered (DESIGN.md §15:
// LISTEN/NOTIFY, as fast as on one node). The nodes run without the race
// detector: this measures the product's latency, not the detector's;
// TestPostgresTwoNodes runs the same path under it.
func TestPostgresIdleSeesOtherNode(t *testing.T) {
	const rounds = 3
	dsn := pg.DSN(t)
	bin := daemonBinaryPlain(t)
	a, b := pgNodeConfig(t, dsn, "", nil), pgNodeConfig(t, dsn, "", nil)
	a.start(t, bin)
	b.start(t, bin)

	onB := watchIdle(t, b.d.addr(b.p.IMAP), "carol@example.test", "demo-carol", "INBOX")
	onA, err := imapclient.DialInsecure(a.d.addr(a.p.IMAP), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer onA.Close()
	if err := onA.Login("alice@example.test", "demo-alice").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := onA.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	// Negative: B's response came before A's answer reached its client.
	worstMail, worstMove := -time.Hour, -time.Hour
	for i := 1; i <= rounds; i++ {
		sent := sendCustomerMailAt(t, a.d.addr(a.p.MX), i)
		worstMail = max(worstMail, within(t, onB.exists, 1, sent, time.Second, "EXISTS for node A's mail under IDLE on node B"))

		// Alice on node A closes the conversation: its message leaves INBOX.
		if err := onA.Noop().Wait(); err != nil { // A's session learns of the message
			t.Fatal(err)
		}
		if _, err := onA.Move(imap.SeqSetNum(1), "Closed").Wait(); err != nil {
			t.Fatalf("MOVE to Closed on node A: %v", err)
		}
		moved := time.Now()
		worstMove = max(worstMove, within(t, onB.expunge, 1, moved, time.Second, "EXPUNGE for node A's MOVE under IDLE on node B"))
	}
	t.Logf("node B's IDLE saw node A's mail at most %v after its 250, node A's MOVE at most %v after its OK", worstMail, worstMove)
	if err := onB.idle.Close(); err != nil {
		t.Fatal(err)
	}
}
