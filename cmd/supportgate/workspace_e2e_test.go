package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestWorkspacePythonIMAP is issue 5's "done when" with Python's imaplib
// against the daemon: the folder list, moves as actions seen by another
// agent, shared keywords, \Seen per agent, the view role, Mine, reopening
// by a customer reply, IDLE within a second, private folders and Trash.
func TestWorkspacePythonIMAP(t *testing.T) {
	python := needTool(t, "python3")
	dir := t.TempDir()
	p := freePorts(t)
	startDaemon(t, dir, p, "-config", testConfig(t, dir, p))
	script, err := filepath.Abs("../../testdata/e2e/workspace.py")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, script, itoa(p.MX), itoa(p.Submission), itoa(p.IMAP)).CombinedOutput()
	t.Logf("workspace.py:\n%s", out)
	if err != nil || !bytes.HasSuffix(bytes.TrimSpace(out), []byte("OK")) {
		t.Fatalf("workspace.py failed: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestWorkspaceMbsyncMuttCurl: clients we did not write against the daemon.
// mbsync (isync) syncs every folder to a local Maildir and back: a flag set
// locally arrives on the server. mutt reads INBOX in batch mode; curl lists
// and fetches. After a restart, UIDVALIDITY and every UID are the same.
func TestWorkspaceMbsyncMuttCurl(t *testing.T) {
	mbsync, mutt, curl := needTool(t, "mbsync"), needTool(t, "mutt"), needTool(t, "curl")
	dir := t.TempDir()
	p := freePorts(t)
	cfg := testConfig(t, dir, p)
	d := startDaemon(t, dir, p, "-config", cfg)
	for i := range 2 {
		sendCustomerMail(t, d.addr(p.MX), i)
	}
	home := filepath.Join(dir, "home")
	maildir := filepath.Join(home, "Mail")
	os.MkdirAll(maildir, 0o700)
	rc := "IMAPAccount sg\nHost 127.0.0.1\nPort " + itoa(p.IMAP) + "\nUser bob@example.test\nPass demo-bob\nSSLType None\nAuthMechs LOGIN\n\n" +
		"IMAPStore sg-remote\nAccount sg\n\nMaildirStore sg-local\nPath " + maildir + "/\nInbox " + maildir + "/INBOX\nSubFolders Verbatim\n\n" +
		"Channel sg\nFar :sg-remote:\nNear :sg-local:\nPatterns *\nCreate Near\nSync All\nExpunge None\nSyncState *\n"
	rcPath := filepath.Join(home, "mbsyncrc")
	os.WriteFile(rcPath, []byte(rc), 0o600)
	run := func(name string, cmd *exec.Cmd) string {
		t.Helper()
		cmd.Env = append(os.Environ(), "HOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		return string(out)
	}
	run("mbsync", exec.Command(mbsync, "-c", rcPath, "-a"))
	for _, f := range []string{"INBOX", "Mine", "Unassigned", "Closed", "Spam", "Sent", "Drafts", "Trash"} {
		if _, err := os.Stat(filepath.Join(maildir, f, "cur")); err != nil {
			t.Errorf("mbsync did not create the Maildir folder %s: %v", f, err)
		}
	}
	got, _ := filepath.Glob(filepath.Join(maildir, "INBOX", "*", "*"))
	if len(got) != 2 {
		t.Fatalf("mbsync fetched %d INBOX messages, want 2", len(got))
	}
	// Flag the first locally (Maildir info ",F"), then sync back.
	src := got[0]
	base := filepath.Base(src)
	if i := strings.Index(base, ":2,"); i >= 0 {
		base = base[:i]
	}
	if err := os.Rename(src, filepath.Join(maildir, "INBOX", "cur", base+":2,FS")); err != nil {
		t.Fatal(err)
	}
	run("mbsync back", exec.Command(mbsync, "-c", rcPath, "-a"))
	c, err := imapclient.DialInsecure(d.addr(p.IMAP), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("alice@example.test", "demo-alice").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	res, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}}, nil).Wait()
	if err != nil || len(res.AllUIDs()) == 0 {
		t.Errorf("the flag set in bob's Maildir did not arrive on the server (alice sees %v, %v)", res, err)
	}
	c.Close()

	// mutt in batch mode reads INBOX: under script(1) for its terminal, it
	// opens INBOX over IMAP, pipes the first message to a file and quits.
	muttrc := filepath.Join(home, "muttrc")
	piped := filepath.Join(home, "mutt-message.txt")
	os.WriteFile(muttrc, []byte("set ssl_starttls=no\nset ssl_force_tls=no\nset wait_key=no\nset imap_passive=no\n"+
		"set imap_user=bob@example.test\nset imap_pass=demo-bob\nset header_cache=\"\"\nset sort=date\n"+
		"push '<first-entry><pipe-message>cat > "+piped+"<enter><quit>'\n"), 0o600)
	script := needTool(t, "script")
	cmd := exec.Command(script, "-qec", mutt+" -n -F "+muttrc+" -f imap://127.0.0.1:"+itoa(p.IMAP)+"/INBOX", "/dev/null")
	cmd.Env = append(os.Environ(), "HOME="+home, "TERM=xterm")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mutt: %v\n%q", err, out)
	}
	if b, err := os.ReadFile(piped); err != nil || !strings.Contains(string(b), "X-Supportgate-Conversation:") {
		t.Errorf("mutt did not read a message of INBOX: %v\n%s", err, b)
	}
	var out string

	// curl lists the folders and fetches a message.
	url := "imap://127.0.0.1:" + itoa(p.IMAP) + "/"
	out = run("curl list", exec.Command(curl, "-s", "-u", "bob@example.test:demo-bob", url))
	for _, want := range []string{`\Junk`, `\Sent`, "Mine", "Closed"} {
		if !strings.Contains(out, want) {
			t.Errorf("curl's LIST lacks %s:\n%s", want, out)
		}
	}
	out = run("curl fetch", exec.Command(curl, "-s", "-u", "bob@example.test:demo-bob", url+"INBOX;UID=1"))
	if !strings.Contains(out, "X-Supportgate-Conversation:") || !strings.Contains(out, "crash-0@customer.example") {
		t.Errorf("curl's FETCH:\n%s", out)
	}

	// UIDVALIDITY and every UID survive a restart, in every shared folder.
	before := fetchInbox(t, d.addr(p.IMAP), "bob@example.test", "demo-bob")
	validity := selectValidity(t, d.addr(p.IMAP), "bob@example.test", "demo-bob")
	d.stop()
	d = startDaemon(t, dir, p, "-config", cfg)
	after := fetchInbox(t, d.addr(p.IMAP), "bob@example.test", "demo-bob")
	if v := selectValidity(t, d.addr(p.IMAP), "bob@example.test", "demo-bob"); v != validity || len(after) != len(before) {
		t.Fatalf("after a restart: UIDVALIDITY %d then %d, %d then %d messages", validity, v, len(before), len(after))
	}
	for i := range before {
		if before[i].uid != after[i].uid {
			t.Errorf("UID %d became %d", before[i].uid, after[i].uid)
		}
	}
	run("mbsync after restart", exec.Command(mbsync, "-c", rcPath, "-a"))
}
