package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/supportgate/supportgate/config"
)

// waitLog waits until the daemon's log holds n lines containing s.
func (d *daemon) waitLog(s string, n int) {
	d.t.Helper()
	for deadline := time.Now().Add(time.Minute); strings.Count(d.log.String(), s) < n; {
		if time.Now().After(deadline) {
			d.t.Fatalf("the log has no %q (×%d) after a minute:\n%s", s, n, d.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSIGHUPReload: SIGHUP reads the configuration again (DESIGN.md §11):
// an agent added to the file can log in while a session opened before
// goes on; a broken file is logged and not applied, and the daemon keeps
// the configuration it had.
func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	cfgPath := testConfig(t, dir, p)
	d := startDaemon(t, dir, p, "-config", cfgPath)
	imapAddr := d.addr(p.IMAP)
	sendCustomerMail(t, d.addr(p.MX), 1)

	alice, err := imapclient.DialInsecure(imapAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	if err := alice.Login("alice@example.test", "demo-alice").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	login := func(user, pass string) error {
		c, err := imapclient.DialInsecure(imapAddr, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Login(user, pass).Wait()
	}
	if login("dave@example.test", "dave-secret") == nil {
		t.Fatal("dave logs in before he is an agent")
	}

	hash, err := config.HashPassword("dave-secret")
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	withDave := string(good) + fmt.Sprintf("\n[[agent]]\nemail = \"dave@example.test\"\nname = \"Dave\"\npassword_hash = %q\nroles = { \"support@example.test\" = \"reply\" }\n", hash)
	if err := os.WriteFile(cfgPath, []byte(withDave), 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(`msg="configuration reloaded"`, 1)
	if err := login("dave@example.test", "dave-secret"); err != nil {
		t.Errorf("dave cannot log in after the reload: %v", err)
	}
	// alice's session, opened before, goes on.
	if err := alice.Noop().Wait(); err != nil {
		t.Fatalf("alice's session after the reload: %v", err)
	}
	if msgs, err := alice.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect(); err != nil || len(msgs) != 1 {
		t.Errorf("alice's FETCH after the reload: %d messages, %v", len(msgs), err)
	}

	// A broken file is not applied: dave stays, the daemon runs.
	broken := strings.Replace(withDave, `name = "Dave"`, `name = "Dave"`+"\nbogus_key = 1", 1)
	if err := os.WriteFile(cfgPath, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog("the configuration was not reloaded", 1)
	if !strings.Contains(d.log.String(), "bogus_key") {
		t.Errorf("the log does not say why the file was refused:\n%s", d.log.String())
	}
	if err := login("dave@example.test", "dave-secret"); err != nil {
		t.Errorf("a broken file undid the good one: dave cannot log in: %v", err)
	}
	if err := alice.Noop().Wait(); err != nil {
		t.Errorf("alice's session after a refused reload: %v", err)
	}
	sendCustomerMail(t, d.addr(p.MX), 2)
	select {
	case <-d.done:
		t.Fatalf("the daemon stopped: %v", d.waited)
	default:
	}
}

// TestSIGTERMSaysBye: SIGTERM ends IMAP sessions with an untagged BYE
// (DESIGN.md §11, RFC 9051 7.1.5), also one idling.
func TestSIGTERMSaysBye(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	d := startDaemon(t, dir, p, "-config", testConfig(t, dir, p))
	c, err := net.Dial("tcp", d.addr(p.IMAP))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	fmt.Fprintf(c, "a LOGIN alice@example.test demo-alice\r\nb SELECT INBOX\r\nc IDLE\r\n")
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(l, "+ ") {
			break
		}
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	var got []string
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			break
		}
		got = append(got, l)
	}
	if len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "* BYE ") {
		t.Errorf("the session ended with %q, want * BYE and a sentence", got)
	}
	<-d.done
}
