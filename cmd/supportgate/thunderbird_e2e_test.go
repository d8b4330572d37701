package main

// Issue 12: a real Thunderbird (Debian's, under Xvfb) driven with its
// keyboard shortcuts against the daemon, as an agent would use it. The
// peer kit ../shared/peers/thunderbird (beside the repository) starts it
// for one agent; xdotool presses the keys; the outbox, the store and a
// second agent's IMAP session say what happened.

import (
	"fmt"
	"net/smtp"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
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
// Thunderbird opens at most this many connections to a server (default 5).
// After start it brings every folder up to date and downloads its messages
// for offline use, a connection each; under CI's load that held every
// connection for more than 90 s while the STORE of a tag in INBOX waited in
// Thunderbird's queue ("queuing url …customKeywords…>$label1>", then
// nothing; .ci/run at 998acdb). With more, an INBOX command finds one free.
user_pref("mail.server.default.max_cached_connections", 10);
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
		tb.keyOnMessage(t, "Invoice copy needed", "Invoice copy needed", "1", "$label1")
		// A STORE that Thunderbird queued waits for a free connection.
		waitFor(t, 90*time.Second, "bob to see Thunderbird's tag 1 ($label1) on Judy's message", func() bool {
			return slices.Contains(lowered(inboxFlags(t, d.addr(p.IMAP), "bob@example.test", "demo-bob")["Invoice copy needed"]), "$label1")
		})
	})

	t.Run("JunkKeyIsNotShared", func(t *testing.T) {
		defer tb.onFailure(t, time.Now())
		id := conv["Cheap pills"]
		tb.keyOnMessage(t, "Cheap pills", "Cheap pills", "j", "Junk")
		// Thunderbird stores its junk keyword on alice's copy: that is
		// when J has reached the server.
		waitFor(t, 90*time.Second, "Thunderbird's junk keyword on alice's copy of Finn's message", func() bool {
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
		// Keys pressed while the dialog is still closing go to it: under
		// load ctrl+Home was lost and "#send" ended the first line (CI).
		waitFor(t, 30*time.Second, "the Send Message Error dialog to close", func() bool {
			out, _ := tb.xdo("search", "--onlyvisible", "--name", "^Send Message Error$")
			return strings.TrimSpace(out) == ""
		})
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
