package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/supportgate/supportgate/gateway"
	"github.com/supportgate/supportgate/internal/pgtest"
	"github.com/supportgate/supportgate/store/postgres"
)

// pg is the PostgreSQL server of the tests that run daemons on the
// postgres engine (internal/pgtest): started at the first that needs it.
var pg = pgtest.New()

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

// usePostgres puts the daemon of the configuration file cfg on the
// PostgreSQL database dsn.
func usePostgres(t *testing.T, cfg, dsn string) {
	t.Helper()
	doc, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	doc = append(doc, fmt.Sprintf("\n[store]\nengine = \"postgres\"\ndsn = %q\n", dsn)...)
	if err := os.WriteFile(cfg, doc, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPostgresTwoNodes runs two daemons on one PostgreSQL database
// (DESIGN.md §15): mail to either lands in the same INBOX, seen with the
// same UIDs and UIDVALIDITY on both, and a message delivered to both is
// stored once. The nodes share the reply-token key through the database:
// the first node's.
func TestPostgresTwoNodes(t *testing.T) {
	dsn := pg.DSN(t)
	var nodes [2]*daemon
	var addrs [2]ports
	var dirs [2]string
	for i := range nodes {
		dir := t.TempDir()
		p := freePorts(t)
		cfg := testConfig(t, dir, p)
		usePostgres(t, cfg, dsn)
		nodes[i], addrs[i], dirs[i] = startDaemon(t, dir, p, "-config", cfg), p, dir
	}
	a, b := nodes[0], nodes[1]
	sendCustomerMail(t, a.addr(addrs[0].MX), 1)
	sendCustomerMail(t, b.addr(addrs[1].MX), 2)
	// The same message to both nodes (a sender's retry at another MX).
	sendCustomerMail(t, b.addr(addrs[1].MX), 1)

	onA := fetchInbox(t, a.addr(addrs[0].IMAP), "alice@example.test", "demo-alice")
	onB := fetchInbox(t, b.addr(addrs[1].IMAP), "carol@example.test", "demo-carol")
	if len(onA) != 2 || len(onB) != 2 {
		t.Fatalf("INBOX on node A has %d messages, on node B %d; want 2 on both", len(onA), len(onB))
	}
	for i := range onA {
		if onA[i].uid != onB[i].uid || !bytes.Equal(onA[i].body, onB[i].body) {
			t.Errorf("message %d: UID %d on node A, %d on node B, or other bytes", i, onA[i].uid, onB[i].uid)
		}
	}
	va := selectValidity(t, a.addr(addrs[0].IMAP), "bob@example.test", "demo-bob")
	vb := selectValidity(t, b.addr(addrs[1].IMAP), "bob@example.test", "demo-bob")
	if va != vb {
		t.Errorf("UIDVALIDITY %d on node A, %d on node B", va, vb)
	}
	// An agent's IDLE on node B sees node A's new mail (LISTEN/NOTIFY,
	// DESIGN.md §15) as fast as on one node.
	exists := make(chan uint32, 10)
	c, err := imapclient.DialInsecure(b.addr(addrs[1].IMAP), &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@example.test", "demo-alice").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	sendCustomerMail(t, a.addr(addrs[0].MX), 3)
	select {
	case n := <-exists:
		if n != 3 {
			t.Errorf("EXISTS %d under IDLE on node B, want 3", n)
		}
		t.Logf("node B's IDLE saw node A's mail %v after its 250", time.Since(sent))
	case <-time.After(10 * time.Second):
		t.Fatal("no EXISTS under IDLE on node B within 10s of mail to node A")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}

	// Each node made a key in its data directory; both use node A's,
	// which it put in the database.
	keyA, err := os.ReadFile(filepath.Join(dirs[0], "data", gateway.SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if shared, err := st.SharedSecret(t.Context(), tokenSecret, []byte("unused")); err != nil || !bytes.Equal(shared, keyA) {
		t.Errorf("the database's token key is not node A's: %v", err)
	}
}
