package main

// Issue 12: a real Thunderbird (Debian's, under Xvfb) driven with its
// keyboard shortcuts against the daemon, as an agent would use it. The
// peer kit ../shared/peers/thunderbird (beside the repository) starts it
// for one agent; xdotool presses the keys; the outbox, the store and a
// second agent's IMAP session say what happened.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// tbExtraPrefs are appended to the kit's profile template (in a copy of the
// kit: the kit itself is shared and read-only). Each one removes a modal
// dialog or an ambiguity from the keyboard path; none touches what the
// test is about (junk handling, reply addressing, tags, deletion), which
// stays at Thunderbird's defaults: the junk filter on (spamLevel 100),
// J only marks (mail.spam.manualMark false), Delete moves to Trash.
const tbExtraPrefs = `
// Added by cmd/supportgate/thunderbird_e2e_test.go.
// Ctrl+Return sends without asking "Are you sure you are ready to send this message?".
user_pref("mail.warn_on_send_accel_key", false);
// A flat message list: a quick-filter result is one row per message, never a collapsed thread.
user_pref("mailnews.default_view_flags", 0);
user_pref("mail.warn_on_collapsed_thread_operation", false);
// Return on the selected message opens it in a tab (the default, relied upon).
user_pref("mail.openMessageBehavior", 2);
// An IMAP connection that waits on a read this long is given up and made
// again, its queued commands replayed (default 100 s). Once in three CI runs
// Thunderbird's INBOX connection sat in a read after "OK UID STORE" with no
// command outstanding (its trace sends nothing for 100 s, then times out and
// replays the queued STORE), longer than a subtest waits.
user_pref("mail.server.default.timeout", 10);
// Thunderbird's SMTP client (JavaScript) logs to the console, which goes
// to its output: the server's answers can be read there (issue 17's
// collision hold; MOZ_LOG has no SMTP module any more).
user_pref("mailnews.smtp.loglevel", "All");
user_pref("devtools.console.stdout.chrome", true);
`

// The window title of Thunderbird's main window while it shows INBOX (and
// no message tab).
const tbFolderTitle = "Inbox - supportgate - Mozilla Thunderbird"

// The title of a message tab while it loads.
const tbLoadingTitle = "Home - Mozilla Thunderbird"

// junkKeywords are the keywords mail clients set by themselves for junk
// classification (DESIGN.md §6): never conversation tags, never seen by
// another agent.
var junkKeywords = []string{"junk", "nonjunk", "$junk", "$notjunk", "$phishing"}

// TestThunderbird is issue 12's "Thunderbird in CI": alice works in Debian's
// Thunderbird (under Xvfb, keys from xdotool) on customers' mail, a reply
// and a note of bob's, and each subtest checks one thing an agent does:
// Reply on a customer's message and on bob's public reply reaches the
// customer, rewritten; Reply on a note stays a note; Reply All reaches the
// participants; tag 1 is seen by bob; J (Thunderbird's defaults, junk filter
// on) shares nothing and marks nothing spam; moving to Spam marks spam;
// Delete closes; a reply to a message bob answered meanwhile gets the
// collision hold's 550 naming bob (issue 17), Thunderbird shows its Send
// Message Error and keeps the message, and #send at its top sends it. The
// subtests run in order on one Thunderbird; a failing one
// logs a screenshot (under $SUPPORTGATE_TEST_ARTIFACTS, else the temporary
// directory) and Thunderbird's IMAP/SMTP commands.
//
//	go test -run TestThunderbird -v ./cmd/supportgate
//
// It needs thunderbird, Xvfb, xdotool, ImageMagick's import and the kit
// ../shared/peers/thunderbird: skipped without them, failed under CI=true.
func TestThunderbird(t *testing.T) {
	for _, tool := range []string{"thunderbird", "Xvfb", "xdotool", "import"} {
		needTool(t, tool)
	}
	kit := thunderbirdKit(t)
	start := time.Now()
	dir := t.TempDir()
	p := freePorts(t)
	cfg := testConfig(t, dir, p)
	d := startDaemon(t, dir, p, "-config", cfg)
	outbox := filepath.Join(dir, "data", "outbox")

	// Customers write in over the MX: one conversation per action.
	customers := []struct{ name, addr, subject, body string }{
		{"Dana", "dana@customer.example", "Printer on fire", "The printer in room 4 is on fire."},
		{"Erin", "erin@customer.example", "Refund please", "I was charged twice for order 1234."},
		{"Gail", "gail@customer.example", "Password reset", "I am locked out of my account."},
		{"Judy", "judy@customer.example", "Invoice copy needed", "Could you send me a copy of invoice 77?"},
		{"Finn", "finn@customer.example", "Cheap pills", "Buy cheap pills now!!!"},
		{"Ivan", "ivan@lottery.example", "You won the lottery", "Send us your bank details to claim the prize."},
		{"Hugo", "hugo@customer.example", "All sorted, thanks", "It works now, you can close this."},
		// Kim copies her colleague Lee, who becomes a participant.
		{"Kim", "kim@customer.example", "Wrong size delivered", "We ordered XL and got S. Lee in Cc handles returns."},
	}
	for i, c := range customers {
		cc := ""
		if c.name == "Kim" {
			cc = "Cc: Lee <lee@customer.example>\r\n"
		}
		msg := fmt.Sprintf("From: %s <%s>\r\nTo: support@example.test\r\n%sSubject: %s\r\nMessage-ID: <tb-%d@customer.example>\r\n"+
			"Date: %s\r\n\r\n%s\r\n", c.name, c.addr, cc, c.subject, i, time.Now().Add(time.Duration(i-len(customers))*time.Minute).Format(time.RFC1123Z), c.body)
		if err := sendMail(d.addr(p.MX), nil, c.addr, []string{"support@example.test"}, msg); err != nil {
			t.Fatalf("MX: %s: %v", c.subject, err)
		}
	}
	conv := map[string]int64{} // customer subject -> conversation
	code, out, errOut := runCLI("", "conversations", "list", "--json", "-config", cfg)
	var list []conversationJSON
	if code != 0 || jsonUnmarshal(out, &list) != nil || len(list) != len(customers) {
		t.Fatalf("conversations list --json: exit %d, %q %q", code, out, errOut)
	}
	for _, c := range list {
		conv[c.Subject] = c.ID
	}

	// bob answers Erin in public and leaves a note on Gail's request, from
	// Go's net/smtp (a client we did not write) over submission.
	bobSends := func(to, subject, inReplyTo, body string) {
		t.Helper()
		msg := fmt.Sprintf("From: Bob <bob@example.test>\r\nTo: %s\r\nSubject: %s\r\nIn-Reply-To: %s\r\nReferences: %s\r\n"+
			"Message-ID: <%d@bob.example.test>\r\nDate: %s\r\n\r\n%s\r\n", to, subject, inReplyTo, inReplyTo,
			time.Now().UnixNano(), time.Now().Format(time.RFC1123Z), body)
		auth := smtp.PlainAuth("", "bob@example.test", "demo-bob", "127.0.0.1")
		if err := smtp.SendMail(d.addr(p.Submission), auth, "bob@example.test", []string{to}, []byte(msg)); err != nil {
			t.Fatalf("bob's %q: %v", subject, err)
		}
	}
	bobSends("erin@customer.example", "Re: Refund please", "<tb-1@customer.example>", "The second charge is refunded; it shows in 3 days.")
	bobSends("support@example.test", "Re: Password reset", "<tb-2@customer.example>", "Internal: she is on SSO, check with IT first.")
	for subject, kind := range map[string]string{"Refund please": "reply", "Password reset": "note"} {
		m := showConversation(t, cfg, conv[subject]).Messages
		if len(m) != 2 || m[1].Kind != kind {
			t.Fatalf("bob's message on %q: %+v, want a %s", subject, m, kind)
		}
	}
	bobReplyEnv := waitOutbox(t, outbox, 1)
	if len(bobReplyEnv) != 1 || !slices.Equal(bobReplyEnv[0].RcptTo, []string{"erin@customer.example"}) {
		t.Fatalf("bob's public reply in the outbox: %+v", bobReplyEnv)
	}

	x := startXvfb(t)
	tb := startThunderbird(t, x, kit, dir, p, "alice@example.test", "demo-alice", "Alice", len(customers)+2)
	t.Logf("Xvfb %s, Thunderbird pid %d ready after %v", x, tb.pid, time.Since(start).Round(time.Millisecond))

	// Reply, from Thunderbird, and what it became: the test waits until the
	// store holds alice's new message in the conversation.
	reply := func(t *testing.T, key, filter, subject string, id int64, text string) messageJSON {
		t.Helper()
		before := showConversation(t, cfg, id).Messages
		tb.selectMessage(t, filter, subject)
		tb.reply(t, key, subject, text, func() bool { return len(showConversation(t, cfg, id).Messages) > len(before) })
		after := showConversation(t, cfg, id).Messages
		m := after[len(before)]
		if m.Sender != "alice@example.test" {
			t.Fatalf("the new message of conversation %d is from %s, want alice", id, m.Sender)
		}
		return m
	}

	t.Run("ReplyToCustomer", func(t *testing.T) {
		defer tb.onFailure(t, time.Now())
		id := conv["Printer on fire"]
		m := reply(t, "ctrl+r", "Printer on fire", "Printer on fire", id, "A technician is on the way.")
		if m.Kind != "reply" {
			t.Fatalf("alice's reply to Dana was recorded as a %s, want a reply", m.Kind)
		}
		checkRewritten(t, outbox, m, id, "Alice", "dana@customer.example", "A technician is on the way.")
	})

	t.Run("ReplyToColleaguesPublicReply", func(t *testing.T) {
		defer tb.onFailure(t, time.Now())
		id := conv["Refund please"]
		m := reply(t, "ctrl+r", "Re: Refund please", "Re: Refund please", id, "Adding to Bob's answer: the refund reference is R-1234.")
		if m.Kind != "reply" {
			t.Errorf("Reply on bob's public reply was recorded as a %s, want a reply to the customer "+
				"(DESIGN.md §6: the served copy of a public reply carries Reply-To: the owner); "+
				"the copy alice was served says %s", m.Kind, servedHeader(t, d.addr(p.IMAP), "Re: Refund please", "Reply-To"))
			if rows := queueRowsOf(t, cfg, m.ID); len(rows) != 0 {
				t.Errorf("and yet it was queued: %+v", rows)
			}
			return
		}
		checkRewritten(t, outbox, m, id, "Alice", "erin@customer.example", "the refund reference is R-1234.")
	})

	t.Run("ReplyToNote", func(t *testing.T) {
		defer tb.onFailure(t, time.Now())
		id := conv["Password reset"]
		m := reply(t, "ctrl+r", "Re: Password reset", "Re: Password reset", id, "Internal: IT confirmed, resetting now.")
		if m.Kind != "note" {
			t.Errorf("Reply on bob's note was recorded as a %s, want a note", m.Kind)
		}
		// A reply is queued in the transaction that records it, so
		// there is nothing to wait for.
		if rows := queueRowsOf(t, cfg, m.ID); len(rows) != 0 {
			t.Errorf("Reply on a note was queued for %+v; a note never leaves", rows)
		}
		if e, ok := outboxEntryOf(outbox, m.MessageID); ok {
			t.Errorf("Reply on a note is in the outbox, to %v", e.RcptTo)
		}
		if m.Kind == "note" {
			t.Logf("Reply on the note went to %s and was recorded as a note", servedHeader(t, d.addr(p.IMAP), "Re: Password reset", "Reply-To", "From"))
		}
	})

	t.Run("ReplyAllReachesParticipants", func(t *testing.T) {
		defer tb.onFailure(t, time.Now())
		id := conv["Wrong size delivered"]
		if c := showConversation(t, cfg, id); !slices.Equal(c.Participants, []string{"lee@customer.example"}) {
			t.Fatalf("Kim's Cc made participants %v, want Lee", c.Participants)
		}
		m := reply(t, "ctrl+shift+r", "Wrong size delivered", "Wrong size delivered", id, "An XL is on its way; Lee, no return needed.")
		if m.Kind != "reply" {
			t.Fatalf("Reply All on Kim's message was recorded as a %s, want a reply", m.Kind)
		}
		var e outboxEntry
		waitFor(t, 30*time.Second, "the Reply All in the outbox", func() bool {
			var ok bool
			e, ok = outboxEntryOf(outbox, m.MessageID)
			return ok
		})
		t.Logf("Reply All went to %v with To %q, Cc %q", e.RcptTo, header(e.raw, "To"), header(e.raw, "Cc"))
		if got := slices.Sorted(slices.Values(e.RcptTo)); !slices.Equal(got, []string{"kim@customer.example", "lee@customer.example"}) {
			t.Errorf("Reply All went to %v, want Kim and Lee (and never back to the support address)", got)
		}
		if to, cc := header(e.raw, "To"), header(e.raw, "Cc"); !strings.Contains(to, "kim@customer.example") || !strings.Contains(cc, "lee@customer.example") ||
			strings.Contains(to+cc, "support@") {
			t.Errorf("Reply All: To %q, Cc %q; want Kim in To, Lee in Cc, no support address", to, cc)
		}
	})

	t.Run("TagKey1SeenByColleague", func(t *testing.T) {
		defer tb.onFailure(t, time.Now())
		tb.selectMessage(t, "Invoice copy needed", "Invoice copy needed")
		tb.key(t, "1")
		waitFor(t, 30*time.Second, "bob to see Thunderbird's tag 1 ($label1) on Judy's message", func() bool {
			return slices.Contains(lowered(inboxFlags(t, d.addr(p.IMAP), "bob@example.test", "demo-bob")["Invoice copy needed"]), "$label1")
		})
	})

	t.Run("JunkKeyIsNotShared", func(t *testing.T) {
		defer tb.onFailure(t, time.Now())
		id := conv["Cheap pills"]
		tb.selectMessage(t, "Cheap pills", "Cheap pills")
		tb.key(t, "j")
		// Thunderbird stores its junk keyword on alice's copy: that is
		// when J has reached the server.
		waitFor(t, 30*time.Second, "Thunderbird's junk keyword on alice's copy of Finn's message", func() bool {
			return slices.ContainsFunc(lowered(inboxFlags(t, d.addr(p.IMAP), "alice@example.test", "demo-alice")["Cheap pills"]),
				func(f string) bool { return f == "junk" || f == "$junk" })
		})
		if c := showConversation(t, cfg, id); c.Status != "open" {
			t.Errorf("J (Thunderbird's defaults: mark only, no move) made conversation %d %s; marking spam is moving to Spam", id, c.Status)
		}
		checkNoJunkShared(t, cfg, d.addr(p.IMAP))
	})

	t.Run("MoveToSpamMarksSpam", func(t *testing.T) {
		defer tb.onFailure(t, time.Now())
		id := conv["You won the lottery"]
		tb.selectMessage(t, "You won the lottery", "You won the lottery")
		// The message's context menu (Shift+F10): Move To (m) > supportgate
		// (s, the only item with that letter) > Spam, the fourth folder
		// (Inbox, Drafts, Sent, Spam: special-use folders first). Home first:
		// a submenu opened from the keyboard may or may not highlight its
		// first item.
		tb.key(t, "shift+F10")
		tb.menuKeys(t, "m", "s", "Home", "Down", "Down", "Down", "Return")
		waitFor(t, 30*time.Second, fmt.Sprintf("conversation %d to be spam", id), func() bool {
			return showConversation(t, cfg, id).Status == "spam"
		})
	})

	t.Run("DeleteCloses", func(t *testing.T) {
		defer tb.onFailure(t, time.Now())
		id := conv["All sorted, thanks"]
		tb.selectMessage(t, "All sorted, thanks", "All sorted, thanks")
		tb.key(t, "Delete")
		waitFor(t, 30*time.Second, fmt.Sprintf("conversation %d to be closed", id), func() bool {
			return showConversation(t, cfg, id).Status == "closed"
		})
	})

	// After everything, Thunderbird's junk filter (trained by J) has had
	// its say on the other messages: still nothing of it is shared.
	t.Run("JunkFilterLeavesNoSharedTag", func(t *testing.T) {
		defer tb.onFailure(t, time.Now())
		checkNoJunkShared(t, cfg, d.addr(p.IMAP))
		list := listConversations(t, cfg)
		for _, c := range list {
			want := "open"
			switch c.Subject {
			case "You won the lottery":
				want = "spam"
			case "All sorted, thanks":
				want = "closed"
			}
			if c.Status != want {
				t.Errorf("conversation %d (%q) is %s, want %s", c.ID, c.Subject, c.Status, want)
			}
		}
	})
	// Issue 17: bob answers Judy first; alice, in Thunderbird, answers
	// Judy's message too. Thunderbird gets the 550 that names bob and keeps
	// the message in its compose window; #send at the top sends it.
	t.Run("CollisionHoldSentence", func(t *testing.T) {
		defer tb.onFailure(t, time.Now())
		id := conv["Invoice copy needed"]
		bobSends("judy@customer.example", "Invoice 77", "<tb-3@customer.example>", "Invoice 77 is attached.")
		before := len(showConversation(t, cfg, id).Messages)
		since := time.Now()
		tb.selectMessage(t, "Invoice copy needed", "Invoice copy needed")
		tb.key(t, "ctrl+r")
		compose := tb.compose(t, "Invoice copy needed")
		tb.focus(t, compose)
		tb.must(t, "type", "--delay", "10", "Here is invoice 77.")
		tb.must(t, "key", "--clearmodifiers", "ctrl+Return")
		var sentence string
		waitFor(t, 30*time.Second, "Thunderbird to receive the collision hold's 550", func() bool {
			sentence = tb.traceLine(since, "Not sent: since the message you answered")
			return sentence != ""
		})
		t.Logf("what Thunderbird received: %s", sentence)
		if !strings.Contains(sentence, "550") || !strings.Contains(sentence, "bob@example.test replied") || !strings.Contains(sentence, "#send") {
			t.Errorf("the sentence alice sees does not name bob's reply and #send: %s", sentence)
		}
		// Thunderbird's error dialog shows the server's sentence; closing
		// it leaves the message in its compose window.
		var dialog string
		waitFor(t, 30*time.Second, "Thunderbird's Send Message Error dialog", func() bool {
			out, _ := tb.xdo("search", "--onlyvisible", "--name", "^Send Message Error$")
			if f := strings.Fields(out); len(f) > 0 {
				dialog = f[0]
			}
			return dialog != ""
		})
		if n := len(showConversation(t, cfg, id).Messages); n != before {
			t.Fatalf("the held reply was recorded: %d messages, want %d", n, before)
		}
		tb.focus(t, dialog)
		tb.must(t, "key", "Return")
		tb.focus(t, compose)
		tb.must(t, "key", "--clearmodifiers", "ctrl+Home")
		tb.must(t, "type", "--delay", "10", "#send")
		tb.must(t, "key", "Return", "Return")
		tb.must(t, "key", "--clearmodifiers", "ctrl+Return")
		tb.sent(t, func() bool { return len(showConversation(t, cfg, id).Messages) > before })
		m := showConversation(t, cfg, id).Messages[before]
		if m.Kind != "reply" || m.Sender != "alice@example.test" {
			t.Fatalf("after #send: %+v, want alice's reply", m)
		}
		checkRewritten(t, outbox, m, id, "Alice", "judy@customer.example", "Here is invoice 77.")
		if e, ok := outboxEntryOf(outbox, m.MessageID); ok && strings.Contains(string(e.raw), "#send") {
			t.Errorf("the #send line reached the customer:\n%s", e.raw)
		}
	})
	t.Logf("Thunderbird test took %v", time.Since(start).Round(time.Millisecond))
}

// traceLine returns the first line of Thunderbird's IMAP trace (MOZ_LOG)
// written since since, or of its output (where its SMTP client logs), that
// contains s; "" when there is none yet.
func (tb *thunderbird) traceLine(since time.Time, s string) string {
	from := since.UTC().Format("2006-01-02 15:04:05.000000")
	logs, _ := filepath.Glob(tb.profile + ".moz.log*")
	if b, err := os.ReadFile(tb.profile + ".log"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, s) {
				return l
			}
		}
	}
	for _, f := range logs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l >= from && strings.Contains(l, s) {
				return l
			}
		}
	}
	return ""
}

// thunderbirdKit is the peer kit beside the repository: ../shared/peers/thunderbird.
func thunderbirdKit(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	kit := filepath.Join(root, "..", "shared", "peers", "thunderbird")
	for _, f := range []string{"tb_start.sh", "prefs.js.template"} {
		if _, err := os.Stat(filepath.Join(kit, f)); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("the Thunderbird peer kit is required under CI: %v", err)
			}
			t.Skipf("no Thunderbird peer kit: %v", err)
		}
	}
	return kit
}

// startXvfb starts an X server on a display number it picks itself
// (-displayfd: Xvfb writes the number once it accepts connections).
func startXvfb(t *testing.T) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1600x1000x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logBuf := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logBuf, logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case n := <-line:
		if _, err := strconv.Atoi(n); err != nil {
			t.Fatalf("Xvfb did not report its display (%q):\n%s", n, logBuf.String())
		}
		if _, err := os.Stat("/tmp/.X11-unix/X" + n); err != nil {
			t.Fatalf("Xvfb reports display :%s but has no socket: %v", n, err)
		}
		return ":" + n
	case <-time.After(60 * time.Second):
		t.Fatalf("Xvfb reported no display within 60s:\n%s", logBuf.String())
	}
	return ""
}

// thunderbird is one running Thunderbird, for one agent, on one display.
type thunderbird struct {
	display, profile, pass string
	pid, pgid              int
	main                   string // the main window's X id
	artifacts              string // where screenshots go, made on the first failure
	outputShown            bool   // its output is in the log already
}

// startThunderbird runs the kit's tb_start.sh (from a copy whose profile
// template has tbExtraPrefs) and waits until the offline INBOX holds n
// messages and the main window shows it.
func startThunderbird(t *testing.T, display, kit, dir string, p ports, user, pass, name string, n int) *thunderbird {
	t.Helper()
	own := filepath.Join(dir, "tb-kit")
	if err := os.MkdirAll(own, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tb_start.sh", "prefs.js.template"} {
		b, err := os.ReadFile(filepath.Join(kit, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "prefs.js.template" {
			b = append(b, tbExtraPrefs...)
		}
		if err := os.WriteFile(filepath.Join(own, f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	home := filepath.Join(dir, "tb-home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	tb := &thunderbird{display: display, profile: filepath.Join(dir, "tb", user), pass: pass}
	cmd := exec.Command("bash", filepath.Join(own, "tb_start.sh"), tb.profile, user, pass, name, itoa(p.IMAP), itoa(p.Submission), itoa(n))
	cmd.Env = append(os.Environ(), "DISPLAY="+display, "HOME="+home)
	// Thunderbird stays in the script's process group: the cleanup ends
	// the group, so nothing it started outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tb.pgid = cmd.Process.Pid
	t.Cleanup(tb.stop)
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			tb.onFailure(t, time.Time{})
			t.Fatalf("tb_start.sh: %v\n%s%s", err, stdout.String(), stderr.String())
		}
	case <-time.After(4 * time.Minute):
		cmd.Process.Kill()
		tb.onFailure(t, time.Time{})
		t.Fatal("tb_start.sh did not finish within 4 minutes")
	}
	lines := strings.Fields(stdout.String())
	if len(lines) == 0 {
		t.Fatalf("tb_start.sh printed no pid:\n%s", stderr.String())
	}
	pid, err := strconv.Atoi(lines[len(lines)-1])
	if err != nil {
		t.Fatalf("tb_start.sh printed %q, not a pid", stdout.String())
	}
	tb.pid = pid
	waitFor(t, 60*time.Second, "Thunderbird's main window to show INBOX", func() bool {
		out, err := tb.xdo("search", "--name", " - Mozilla Thunderbird$")
		if err != nil {
			return false
		}
		for _, w := range strings.Fields(out) {
			if name, _ := tb.xdo("getwindowname", w); strings.TrimSpace(name) == tbFolderTitle {
				tb.main = w
				return true
			}
		}
		return false
	})
	return tb
}

func (tb *thunderbird) stop() {
	alive := func() bool {
		return syscall.Kill(-tb.pgid, 0) == nil || (tb.pid > 0 && syscall.Kill(tb.pid, 0) == nil)
	}
	syscall.Kill(-tb.pgid, syscall.SIGTERM)
	if tb.pid > 0 {
		syscall.Kill(tb.pid, syscall.SIGTERM)
	}
	for deadline := time.Now().Add(15 * time.Second); alive() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if alive() {
		syscall.Kill(-tb.pgid, syscall.SIGKILL)
		if tb.pid > 0 {
			syscall.Kill(tb.pid, syscall.SIGKILL)
		}
		for deadline := time.Now().Add(10 * time.Second); alive() && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// xdo runs xdotool on the display.
func (tb *thunderbird) xdo(args ...string) (string, error) {
	cmd := exec.Command("xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+tb.display)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("xdotool %s: %v: %s", strings.Join(args, " "), err, ee.Stderr)
		}
	}
	return string(out), err
}

func (tb *thunderbird) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := tb.xdo(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// title is the main window's title: the folder's, or the open message tab's
// subject.
func (tb *thunderbird) title() string {
	out, _ := tb.xdo("getwindowname", tb.main)
	return strings.TrimSpace(out)
}

// focus gives the X input focus to window w (there is no window manager).
func (tb *thunderbird) focus(t *testing.T, w string) {
	t.Helper()
	tb.must(t, "windowfocus", "--sync", w)
}

// key presses keys in the main window.
func (tb *thunderbird) key(t *testing.T, keys ...string) {
	t.Helper()
	tb.focus(t, tb.main)
	tb.must(t, append([]string{"key", "--clearmodifiers"}, keys...)...)
}

// menuKeys presses keys one at a time in an open menu, leaving each
// submenu the time to open (a menu gives no sign to wait for).
func (tb *thunderbird) menuKeys(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		time.Sleep(400 * time.Millisecond)
		tb.must(t, "key", k)
	}
}

// toFolder brings the folder's tab (the first) to the front with Alt+1,
// which leaves any message tab open behind it. (Ctrl+W would close the
// message tab, but on the folder tab it closes the window: it is never
// pressed.)
func (tb *thunderbird) toFolder(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for tb.title() != tbFolderTitle {
		if time.Now().After(deadline) {
			t.Fatalf("the folder tab does not come back: the title is %q", tb.title())
		}
		tb.key(t, "alt+1")
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && tb.title() != tbFolderTitle; {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// selectMessage selects the message with subject in INBOX's message list
// and leaves the keyboard focus on the list, for the next key to act on
// that message. It types filter into the quick filter (Ctrl+Shift+K),
// selects the first result (Down moves from the filter to the list, Home)
// and opens it in a tab (Return): the main window's title is then the
// message's subject, which proves the selection. Until it is the right
// message (the quick filter applies what is typed after a 250 ms pause), it
// tries again, waiting longer. Back on the folder tab (Alt+1), the
// selection is the one proven, and Ctrl+Shift+K then Down puts the focus
// on the list again without changing it.
func (tb *thunderbird) selectMessage(t *testing.T, filter, subject string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	settle := 500 * time.Millisecond
	var seen []string
	for {
		tb.toFolder(t)
		tb.key(t, "ctrl+shift+k")
		tb.key(t, "ctrl+a")
		tb.must(t, "type", "--delay", "20", filter)
		time.Sleep(settle)
		tb.key(t, "Down", "Home", "Return")
		// A new tab is titled "Home" until its message is loaded.
		var got string
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if got = tb.title(); got != tbFolderTitle && got != tbLoadingTitle {
				break
			}
		}
		got = strings.TrimSuffix(got, " - Mozilla Thunderbird")
		if got == subject || strings.HasPrefix(got, subject+" [#") {
			break
		}
		seen = append(seen, got)
		if time.Now().After(deadline) {
			t.Fatalf("could not select the message %q with the quick filter %q; opened %q", subject, filter, seen)
		}
		settle = min(2*settle, 4*time.Second)
	}
	tb.toFolder(t)
	tb.key(t, "ctrl+shift+k")
	tb.key(t, "Down")
}

// reply presses key (Ctrl+R: Reply, Ctrl+Shift+R: Reply All) on the
// selected message, whose subject is subject,
// types text at the top once the compose window has its subject, presses
// Ctrl+Return and answers the SMTP password prompt (the first send asks),
// until recorded() says the daemon has the message.
func (tb *thunderbird) reply(t *testing.T, key, subject, text string, recorded func() bool) {
	t.Helper()
	tb.key(t, key)
	tb.focus(t, tb.compose(t, subject))
	tb.must(t, "type", "--delay", "10", text)
	tb.must(t, "key", "--clearmodifiers", "ctrl+Return")
	tb.sent(t, recorded)
}

// compose waits for the compose window of a reply to subject and returns its
// X id. The window shows up as "Write: (no subject)"; its editor takes keys
// once the fields are filled in, which sets the title.
func (tb *thunderbird) compose(t *testing.T, subject string) string {
	t.Helper()
	var compose string
	waitFor(t, 30*time.Second, "the compose window (Write: Re: "+subject+")", func() bool {
		out, err := tb.xdo("search", "--onlyvisible", "--name", "^Write: ")
		if err != nil {
			return false
		}
		for _, w := range strings.Fields(out) {
			if name, _ := tb.xdo("getwindowname", w); strings.Contains(name, subject) {
				compose = w
				return true
			}
		}
		return false
	})
	return compose
}

// sent answers the SMTP password prompt (the first send asks) until
// recorded() says the daemon has the message.
func (tb *thunderbird) sent(t *testing.T, recorded func() bool) {
	t.Helper()
	answered := false
	waitFor(t, 90*time.Second, "the daemon to record alice's message", func() bool {
		if recorded() {
			return true
		}
		if !answered {
			out, _ := tb.xdo("search", "--onlyvisible", "--name", "Password Required|Enter your password")
			if f := strings.Fields(out); len(f) > 0 {
				tb.focus(t, f[0])
				time.Sleep(300 * time.Millisecond) // the dialog's field takes the keys once it is drawn
				tb.must(t, "type", "--delay", "20", tb.pass)
				tb.must(t, "key", "Return")
				answered = true
			}
		}
		return false
	})
}

// onFailure, deferred by each subtest, shows what Thunderbird showed: a
// screenshot of the display, the windows, the IMAP and SMTP commands it
// sent since the subtest started, and (once) its output.
func (tb *thunderbird) onFailure(t *testing.T, since time.Time) {
	t.Helper()
	if !t.Failed() || tb.display == "" {
		return
	}
	if tb.artifacts == "" {
		base := os.Getenv("SUPPORTGATE_TEST_ARTIFACTS")
		if base == "" {
			base = os.TempDir()
		}
		os.MkdirAll(base, 0o755)
		dir, err := os.MkdirTemp(base, "thunderbird-")
		if err != nil {
			t.Logf("no directory for screenshots: %v", err)
			return
		}
		tb.artifacts = dir
	}
	name := regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(t.Name(), "_")
	png := filepath.Join(tb.artifacts, name+".png")
	cmd := exec.Command("import", "-window", "root", png)
	cmd.Env = append(os.Environ(), "DISPLAY="+tb.display)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Logf("screenshot failed: %v %s", err, out)
	} else {
		t.Logf("screenshot of the display: %s", png)
	}
	if out, err := tb.xdo("search", "--onlyvisible", "--name", "."); err == nil {
		var names []string
		for _, w := range strings.Fields(out) {
			n, _ := tb.xdo("getwindowname", w)
			names = append(names, strings.TrimSpace(n))
		}
		t.Logf("visible windows: %q", names)
	}
	// Thunderbird's IMAP and SMTP commands (MOZ_LOG; the kit names it
	// PROFILE.moz.log, Mozilla adds .moz_log).
	logs, _ := filepath.Glob(tb.profile + ".moz.log*")
	for _, f := range logs {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 {
			continue
		}
		dst := filepath.Join(tb.artifacts, filepath.Base(f))
		os.WriteFile(dst, b, 0o644)
		// Lines start with "2026-12-07 11:32:12.026582 UTC".
		from := since.UTC().Format("2006-01-02 15:04:05.000000")
		var cmds []string
		for _, l := range strings.Split(string(b), "\n") {
			if l < from {
				continue
			}
			if strings.Contains(l, "SendData") && !strings.Contains(l, "FETCH") && !strings.Contains(l, "fetch") &&
				!strings.Contains(l, "noop") && !strings.Contains(l, "IDLE") && !strings.Contains(l, "DONE") ||
				strings.Contains(l, "SMTP") && (strings.Contains(l, "Sending") || strings.Contains(l, "Response")) ||
				strings.Contains(l, " NO ") || strings.Contains(l, " BAD ") {
				cmds = append(cmds, l)
			}
		}
		if len(cmds) > 150 {
			cmds = cmds[len(cmds)-150:]
		}
		t.Logf("Thunderbird's trace %s (copied to %s), its commands since %s:\n%s", f, dst, from, strings.Join(cmds, "\n"))
	}
	if b, err := os.ReadFile(tb.profile + ".log"); err == nil && !tb.outputShown {
		tb.outputShown = true
		t.Logf("Thunderbird's output:\n%s", b)
	}
}

// waitFor polls cond until it holds, or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func showConversation(t *testing.T, cfg string, id int64) conversationJSON {
	t.Helper()
	code, out, errOut := runCLI("", "conversations", "show", strconv.FormatInt(id, 10), "--json", "-config", cfg)
	var c conversationJSON
	if code != 0 || jsonUnmarshal(out, &c) != nil {
		t.Fatalf("conversations show %d --json: exit %d, %q %q", id, code, out, errOut)
	}
	return c
}

func listConversations(t *testing.T, cfg string) []conversationJSON {
	t.Helper()
	code, out, errOut := runCLI("", "conversations", "list", "--json", "-config", cfg)
	var list []conversationJSON
	if code != 0 || jsonUnmarshal(out, &list) != nil {
		t.Fatalf("conversations list --json: exit %d, %q %q", code, out, errOut)
	}
	return list
}

// queueRowsOf are the outbound queue's rows of one message.
func queueRowsOf(t *testing.T, cfg string, message int64) []queueRow {
	t.Helper()
	var rows []queueRow
	for _, r := range queueList(t, "", cfg) {
		if r.Message == message {
			rows = append(rows, r)
		}
	}
	return rows
}

// outboxEntryOf is the outbox's message whose Message-Id is id.
func outboxEntryOf(dir, id string) (outboxEntry, bool) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, f := range files {
		var e outboxEntry
		b, err := os.ReadFile(f)
		if err != nil || json.Unmarshal(b, &e) != nil {
			continue
		}
		if e.raw, err = os.ReadFile(strings.TrimSuffix(f, ".json") + ".eml"); err != nil {
			continue
		}
		if strings.Trim(header(e.raw, "Message-Id"), "<>") == id {
			return e, true
		}
	}
	return outboxEntry{}, false
}

// checkRewritten waits for message m in the outbox and checks that it
// reaches the customer alone, rewritten as DESIGN.md §5.6 says.
func checkRewritten(t *testing.T, outbox string, m messageJSON, conv int64, agent, customer, text string) {
	t.Helper()
	var e outboxEntry
	waitFor(t, 30*time.Second, fmt.Sprintf("message %d (%s) in the outbox", m.ID, m.MessageID), func() bool {
		var ok bool
		e, ok = outboxEntryOf(outbox, m.MessageID)
		return ok
	})
	t.Logf("sent to %v: From %q, Reply-To %q, Subject %q", e.RcptTo, header(e.raw, "From"), header(e.raw, "Reply-To"), header(e.raw, "Subject"))
	if !slices.Equal(e.RcptTo, []string{customer}) {
		t.Errorf("sent to %v, want %s", e.RcptTo, customer)
	}
	if got, want := header(e.raw, "From"), fmt.Sprintf(`"%s via Example Support" <support@example.test>`, agent); got != want {
		t.Errorf("From: %s, want %s", got, want)
	}
	if got := header(e.raw, "Reply-To"); !regexp.MustCompile(`^<support\+[^@>\s]+@example\.test>$`).MatchString(got) {
		t.Errorf("Reply-To: %s, want <support+token@example.test>", got)
	}
	if got := header(e.raw, "To"); !strings.Contains(got, customer) {
		t.Errorf("To: %s, want %s", got, customer)
	}
	if got := header(e.raw, "Subject"); !strings.Contains(got, fmt.Sprintf("[#%d]", conv)) {
		t.Errorf("Subject: %s, want the tag [#%d]", got, conv)
	}
	head, body, _ := bytes.Cut(e.raw, []byte("\r\n\r\n"))
	if bytes.Contains(bytes.ToLower(head), []byte("\nx-mozilla-")) {
		t.Errorf("Thunderbird's X-Mozilla-* headers were sent:\n%s", head)
	}
	if !bytes.Contains(body, []byte(text)) {
		t.Errorf("the body lacks what alice typed (%q):\n%s", text, body)
	}
}

// inboxFlags logs in as user and reads INBOX read-only (EXAMINE, so that
// nothing changes): each message's flags by subject, lowercase.
func inboxFlags(t *testing.T, addr, user, pass string) map[string][]string {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("IMAP login %s: %v", user, err)
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("EXAMINE INBOX: %v", err)
	}
	out := map[string][]string{}
	if sel.NumMessages == 0 {
		return out
	}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, Envelope: true}).Collect()
	if err != nil {
		t.Fatalf("FETCH: %v", err)
	}
	for _, m := range msgs {
		if m.Envelope == nil {
			continue
		}
		for _, f := range m.Flags {
			out[m.Envelope.Subject] = append(out[m.Envelope.Subject], string(f))
		}
		if _, ok := out[m.Envelope.Subject]; !ok {
			out[m.Envelope.Subject] = []string{}
		}
	}
	c.Logout().Wait()
	return out
}

// servedHeader is what alice's IMAP copy of the message with subject
// (or subject [#n]) says in the named header fields.
func servedHeader(t *testing.T, addr, subject string, names ...string) string {
	t.Helper()
	for _, m := range fetchInboxPeek(t, addr, "alice@example.test", "demo-alice") {
		s := header(m, "Subject")
		if s != subject && !strings.HasPrefix(s, subject+" [#") {
			continue
		}
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s: %q", n, header(m, n)))
		}
		return strings.Join(parts, ", ")
	}
	return "(no such message)"
}

// fetchInboxPeek reads every message of INBOX read-only.
func fetchInboxPeek(t *testing.T, addr, user, pass string) [][]byte {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	section := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, m := range msgs {
		out = append(out, m.FindBodySection(section))
	}
	return out
}

// checkNoJunkShared: no conversation holds a junk keyword as a tag, none
// is spam but the one moved there, and bob sees no junk keyword anywhere.
func checkNoJunkShared(t *testing.T, cfg, imapAddr string) {
	t.Helper()
	for _, c := range listConversations(t, cfg) {
		for _, tag := range c.Tags {
			if slices.Contains(junkKeywords, strings.ToLower(tag)) {
				t.Errorf("conversation %d (%q) has the shared tag %q: a mail client's junk bookkeeping became a tag", c.ID, c.Subject, tag)
			}
		}
		if c.Status == "spam" && c.Subject != "You won the lottery" {
			t.Errorf("conversation %d (%q) is spam, but nobody moved it to Spam", c.ID, c.Subject)
		}
	}
	for subject, flags := range inboxFlags(t, imapAddr, "bob@example.test", "demo-bob") {
		for _, f := range lowered(flags) {
			if slices.Contains(junkKeywords, f) {
				t.Errorf("bob sees alice's Thunderbird's %s on %q", f, subject)
			}
		}
	}
}

func lowered(l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = strings.ToLower(s)
	}
	return out
}
