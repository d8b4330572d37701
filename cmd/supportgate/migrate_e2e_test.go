package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/supportgate/supportgate/gateway"
	"github.com/supportgate/supportgate/store/postgres"
)

// TestMigrateStoreKeepsUIDs: a daemon on SQLite, an agent's client that
// knows INBOX and a private folder; `supportgate migrate-store` into
// PostgreSQL; the daemon on PostgreSQL with the same data directory shows
// the client the same UIDVALIDITY, UIDs, flags and bytes (no resync,
// issue 16), and a customer's reply to an agent's reply sent before the
// migration threads by its token (the key moved into the database).
func TestMigrateStoreKeepsUIDs(t *testing.T) {
	dsn := pg.DSN(t)
	dir := t.TempDir()
	p := freePorts(t)
	cfg := testConfig(t, dir, p)
	d := startDaemon(t, dir, p, "-config", cfg)
	imapAddr := d.addr(p.IMAP)
	for i := range 3 {
		sendCustomerMail(t, d.addr(p.MX), i)
	}
	reply := "From: Bob <bob@example.test>\r\nTo: erin@customer.example\r\nSubject: Re: Crash 1\r\n" +
		"In-Reply-To: <crash-1@customer.example>\r\n\r\nOn it.\r\n"
	if err := sendMail(d.addr(p.Submission), sasl.NewPlainClient("", "bob@example.test", "demo-bob"),
		"bob@example.test", []string{"erin@customer.example"}, reply); err != nil {
		t.Fatalf("bob's reply: %v", err)
	}
	sent := waitOutbox(t, filepath.Join(dir, "data", "outbox"), 1)[0].raw
	appendPrivate(t, imapAddr, "alice@example.test", "demo-alice", "Archive", 2)
	before := fetchInbox(t, imapAddr, "alice@example.test", "demo-alice")
	validity := selectValidity(t, imapAddr, "alice@example.test", "demo-alice")
	archiveValidity, archiveUIDs := mailboxUIDs(t, imapAddr, "alice@example.test", "demo-alice", "Archive")
	d.stop()

	out, err := exec.Command(daemonBinary(t), "migrate-store", "-config", cfg, "-dsn", dsn).CombinedOutput()
	if err != nil {
		t.Fatalf("migrate-store: %v\n%s", err, out)
	}
	for _, want := range []string{"conversations", "folder_entries", "private_messages", "token.key"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("migrate-store's output does not name %s:\n%s", want, out)
		}
	}
	// The key is in the database before any node put its own there.
	key, err := os.ReadFile(filepath.Join(dir, "data", gateway.SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	shared, err := st.SharedSecret(t.Context(), tokenSecret, []byte("not the key"))
	st.Close()
	if err != nil || !bytes.Equal(shared, key) {
		t.Errorf("the database's token key is not the data directory's: %v", err)
	}
	// Run again: refused, nothing written.
	out, err = exec.Command(daemonBinary(t), "migrate-store", "-config", cfg, "-dsn", dsn).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !bytes.Contains(out, []byte("already holds a store")) {
		t.Errorf("a second migrate-store: %v\n%s", err, out)
	}

	usePostgres(t, cfg, dsn)
	d = startDaemon(t, dir, p, "-config", cfg)
	if v := selectValidity(t, imapAddr, "alice@example.test", "demo-alice"); v != validity {
		t.Errorf("INBOX's UIDVALIDITY %d on SQLite, %d on PostgreSQL", validity, v)
	}
	after := fetchInbox(t, imapAddr, "alice@example.test", "demo-alice")
	if len(after) != len(before) || len(before) != 4 {
		t.Fatalf("INBOX: %d messages on SQLite, %d on PostgreSQL; want 4", len(before), len(after))
	}
	for i := range before {
		if before[i].uid != after[i].uid || before[i].seen != after[i].seen || !bytes.Equal(before[i].body, after[i].body) {
			t.Errorf("INBOX message %d: UID %d then %d, \\Seen %v then %v, or other bytes", i, before[i].uid, after[i].uid, before[i].seen, after[i].seen)
		}
	}
	if v, uids := mailboxUIDs(t, imapAddr, "alice@example.test", "demo-alice", "Archive"); v != archiveValidity || fmt.Sprint(uids) != fmt.Sprint(archiveUIDs) {
		t.Errorf("Archive: UIDVALIDITY %d UIDs %v on SQLite, %d %v on PostgreSQL", archiveValidity, archiveUIDs, v, uids)
	}

	// The customer answers the reply sent before: by its signed
	// Message-ID, and by its Reply-To token.
	conv := header(before[1].body, "X-Supportgate-Conversation")
	followUps := []struct{ rcpt, msg string }{
		{"support@example.test", "From: erin@customer.example\r\nSubject: Re: Crash 1\r\nIn-Reply-To: " + header(sent, "Message-Id") +
			"\r\nMessage-ID: <after-1@customer.example>\r\n\r\nThanks!\r\n"},
		{strings.Trim(header(sent, "Reply-To"), "<>"), "From: erin@customer.example\r\nSubject: something else\r\n" +
			"Message-ID: <after-2@customer.example>\r\n\r\nAnd one more.\r\n"},
	}
	for _, f := range followUps {
		if err := sendMail(d.addr(p.MX), nil, "erin@customer.example", []string{f.rcpt}, f.msg); err != nil {
			t.Fatalf("follow-up to %s: %v", f.rcpt, err)
		}
	}
	after = fetchInbox(t, imapAddr, "alice@example.test", "demo-alice")
	if len(after) != 6 {
		t.Fatalf("INBOX holds %d messages after the follow-ups, want 6", len(after))
	}
	for i, m := range after[4:] {
		if got := header(m.body, "X-Supportgate-Conversation"); got != conv || conv == "" {
			t.Errorf("follow-up %d threaded into conversation %q, want %q", i, got, conv)
		}
		if m.uid <= before[len(before)-1].uid {
			t.Errorf("follow-up %d has UID %d, not above the migrated ones", i, m.uid)
		}
	}
}

// appendPrivate creates the agent's private mailbox name and appends n
// messages to it.
func appendPrivate(t *testing.T, addr, user, pass, name string, n int) {
	t.Helper()
	c := login(t, addr, user, pass)
	defer c.Close()
	if err := c.Create(name, nil).Wait(); err != nil {
		t.Fatalf("CREATE %s: %v", name, err)
	}
	for i := range n {
		msg := fmt.Sprintf("From: alice@example.test\r\nSubject: kept %d\r\n\r\nkeep this %d\r\n", i, i)
		cmd := c.Append(name, int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagFlagged}, Time: time.Unix(1_700_000_000, 0)})
		cmd.Write([]byte(msg))
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatalf("APPEND to %s: %v", name, err)
		}
	}
}

// mailboxUIDs returns a mailbox's UIDVALIDITY and UIDs.
func mailboxUIDs(t *testing.T, addr, user, pass, name string) (uint32, []imap.UID) {
	t.Helper()
	c := login(t, addr, user, pass)
	defer c.Close()
	sel, err := c.Select(name, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("SELECT %s: %v", name, err)
	}
	res, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		t.Fatalf("UID SEARCH in %s: %v", name, err)
	}
	return sel.UIDValidity, res.AllUIDs()
}

func login(t *testing.T, addr, user, pass string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(user, pass).Wait(); err != nil {
		c.Close()
		t.Fatalf("IMAP login %s: %v", user, err)
	}
	return c
}
