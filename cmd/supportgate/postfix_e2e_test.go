package main

// Debian's Postfix as the receiving MTA (issue 6): a private instance
// (postfix -c DIR) on a free loopback port, STARTTLS with a certificate the
// test makes, virtual delivery of customer.example into a Maildir; the
// daemon relays an agent's reply to it.
//
// Why a private Postfix used to fail inside a test: t.TempDir makes its
// directories 0700 and root's, and Postfix's master opens
// data_directory/master.lock (and its daemons the queue) as mail_owner
// (postfix), which cannot traverse them: "fatal: open lock file
// .../master.lock: cannot open file: Permission denied" in the maillog,
// while `postfix start` only exits 1. The directories are made 0755 here.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// asRoot returns the prefix that runs a command as root: none when the
// test runs as root, sudo -n when that works. Otherwise the test is skipped,
// or fails under CI=true.
func asRoot(t *testing.T) []string {
	t.Helper()
	if os.Geteuid() == 0 {
		return nil
	}
	if err := exec.Command("sudo", "-n", "true").Run(); err == nil {
		return []string{"sudo", "-n"}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Postfix needs root: run the tests as root or with password-less sudo under CI")
	}
	t.Skip("Postfix needs root (or password-less sudo)")
	return nil
}

// postfix is a private Postfix instance.
type postfix struct {
	t       *testing.T
	root    []string // the prefix that runs a command as root
	conf    string   // config_directory
	dir     string
	Addr    string // host:port of its smtpd
	Maildir string // where mail to any address at customer.example goes
}

// startPostfix starts a private Postfix that accepts mail for
// customer.example on a free port of 127.0.0.1, offers STARTTLS with
// certFile and keyFile, and delivers into a Maildir.
func startPostfix(t *testing.T, certFile, keyFile string) *postfix {
	t.Helper()
	bin := needTool(t, "postfix")
	root := asRoot(t)
	pfUser, err := user.Lookup("postfix")
	if err != nil {
		t.Fatalf("the postfix user does not exist (is Postfix installed?): %v", err)
	}
	// -d: the compiled-in default, readable also before any main.cf exists
	// (Debian's "No configuration" install writes none).
	out, err := exec.Command("postconf", "-d", "-h", "config_directory").Output()
	if err != nil {
		t.Fatalf("postconf: %v", err)
	}
	master, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "master.cf"))
	if errors.Is(err, fs.ErrNotExist) {
		// Debian's package as shipped, before its postinst made one.
		master, err = os.ReadFile("/usr/share/postfix/master.cf.dist")
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// See the file comment: mail_owner must reach its directories.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", reservePort(t))
	pf := &postfix{t: t, root: root, conf: filepath.Join(dir, "conf"), dir: dir, Addr: addr,
		Maildir: filepath.Join(dir, "vmail", "carla")}
	for _, d := range []string{"conf", "spool", "data", "vmail"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pf.run("chown", pfUser.Username, filepath.Join(dir, "data"), filepath.Join(dir, "vmail"))
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/spool
data_directory = %[1]s/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.customer.example
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = customer.example
virtual_mailbox_base = %[1]s/vmail
virtual_mailbox_maps = static:carla/
virtual_uid_maps = static:%[2]s
virtual_gid_maps = static:%[3]s
virtual_minimum_uid = 1
maillog_file = %[1]s/postfix.log
maillog_file_prefixes = %[1]s
smtpd_tls_security_level = may
smtpd_tls_cert_file = %[4]s
smtpd_tls_key_file = %[5]s
smtpd_tls_received_header = yes
`, dir, pfUser.Uid, pfUser.Gid, certFile, keyFile)
	if err := os.WriteFile(filepath.Join(pf.conf, "main.cf"), []byte(mainCF), 0o644); err != nil {
		t.Fatal(err)
	}
	// Debian's master.cf without chroot (the spool has no copy of the
	// system's files), smtpd on our address instead of port 25.
	var mcf strings.Builder
	for _, line := range strings.Split(string(master), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "smtp" && f[1] == "inet":
			line = addr + " inet n - n - - smtpd"
		case len(line) > 0 && line[0] >= 'a' && line[0] <= 'z' && len(f) >= 8:
			f[4] = "n"
			line = strings.Join(f, " ")
		}
		mcf.WriteString(line + "\n")
	}
	if err := os.WriteFile(filepath.Join(pf.conf, "master.cf"), []byte(mcf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	pf.run(bin, "-c", pf.conf, "check")
	t.Cleanup(pf.stop)
	pf.run(bin, "-c", pf.conf, "start")
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return pf
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postfix does not listen on %s:\n%s", addr, pf.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run runs a command as root; a failure ends the test with the maillog.
func (p *postfix) run(args ...string) {
	p.t.Helper()
	args = append(append([]string(nil), p.root...), args...)
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		p.t.Fatalf("%s: %v\n%s\nmaillog:\n%s", strings.Join(args, " "), err, out, p.log())
	}
}

func (p *postfix) log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "postfix.log"))
	return string(b)
}

func (p *postfix) stop() {
	args := append(append([]string(nil), p.root...), "postfix", "-c", p.conf, "stop")
	exec.Command(args[0], args[1:]...).Run()
	// postfix stop signals the master; wait until the listener is gone so
	// that the temporary directory can be removed.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", p.Addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
	}
	if p.t.Failed() {
		p.t.Logf("Postfix maillog:\n%s", p.log())
	}
}

// delivered returns the messages in the Maildir (new and cur).
func (p *postfix) delivered() [][]byte {
	p.t.Helper()
	var out [][]byte
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(p.Maildir, sub))
		if err != nil && !os.IsNotExist(err) {
			p.t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(p.Maildir, sub, e.Name()))
			if err != nil {
				p.t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

// TestPostfixRelayDeliversOnceSignedOverTLS: an agent's reply submitted to
// the daemon in relay mode reaches Postfix's Maildir exactly once, over
// STARTTLS with Postfix's certificate verified, from the VERP return path,
// with a DKIM signature that verifies against the published key.
func TestPostfixRelayDeliversOnceSignedOverTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir)
	pf := startPostfix(t, certFile, keyFile)
	// The relay's certificate is verified against the system's roots; the
	// test's CA is the system's for the daemon (Go reads SSL_CERT_FILE).
	t.Setenv("SSL_CERT_FILE", certFile)
	p := freePorts(t)
	cfg := relayConfig(t, dir, p, pf.Addr, "")
	dkimFile, record := dkimKey(t, dir, "rsa")
	withDKIM(t, cfg, dkimFile)
	d := startDaemon(t, dir, p, "-config", cfg)
	submitReply(t, d, "postfix", "carla@customer.example")
	waitRows(t, dir, cfg, map[string]string{"carla@customer.example": "delivered"})
	var got [][]byte
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got = pf.delivered(); len(got) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Maildir is empty 20s after the daemon's delivery\nmaillog:\n%s", pf.log())
		}
	}
	time.Sleep(2 * time.Second) // past the 1s retry: a second copy would be here now
	if got = pf.delivered(); len(got) != 1 {
		t.Fatalf("the Maildir holds %d messages, want exactly 1", len(got))
	}
	msg := got[0]
	if !regexp.MustCompile(`(?m)^Return-Path: <bounces\+[^>]+@example\.test>`).Match(msg) {
		t.Errorf("Return-Path is not the VERP address:\n%s", msg)
	}
	if !regexp.MustCompile(`(?s)^(.*\n)?Received: from .*\(using TLSv1\.[23] `).Match(msg) {
		t.Errorf("Postfix did not receive it over TLS:\n%s", msg)
	}
	if !bytes.Contains(msg, []byte("Hello from support.")) {
		t.Errorf("the body is not the reply:\n%s", msg)
	}
	// Postfix stores LF line ends; DKIM's relaxed canonicalization
	// verifies on CRLF.
	verifyDKIM(t, bytes.ReplaceAll(msg, []byte("\n"), []byte("\r\n")), record)
}
