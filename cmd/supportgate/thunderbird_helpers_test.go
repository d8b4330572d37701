package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// What TestThunderbird reads back: conversations, queue rows, served
// copies and flags, through the CLI and IMAP.

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
