package gateway

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/threading"
)

// corpusSecret is testdata/threading/generate.py's SECRET.
const corpusSecret = "supportgate threading corpus secret, 32 bytes or more"

// TestThreadingCorpus delivers testdata/threading over the MX socket, in
// order, and checks where each message lands (DESIGN.md §4, issue 3), and
// what it does to its conversation: auto-replies never reopen, strangers
// join, a closed conversation reopens on a customer's mail.
func TestThreadingCorpus(t *testing.T) {
	ts := newTestServer(t, nil, func(c *config.Config) {
		if err := os.WriteFile(filepath.Join(c.Server.DataDir, SecretFile), []byte(corpusSecret), 0o600); err != nil {
			t.Fatal(err)
		}
	})
	ctx := context.Background()
	files, err := filepath.Glob("../testdata/threading/*.eml")
	if err != nil || len(files) < 15 {
		t.Fatalf("corpus: %v, %d files", err, len(files))
	}
	// before runs ahead of a case; after checks what it did.
	before := map[string]func(){
		"09": func() { mustSetStatus(t, ts.store, 1, store.StatusClosed) },
		"16": func() { mustSetStatus(t, ts.store, 2, store.StatusClosed) },
	}
	after := map[string]func(){
		"09": func() { wantConversation(t, ts.store, 1, store.StatusClosed, nil) },                             // auto-reply: stays closed
		"10": func() { wantConversation(t, ts.store, 1, store.StatusOpen, []string{"dora@customer.example"}) }, // stranger joins and reopens
		"12": func() { wantConversation(t, ts.store, 1, store.StatusOpen, []string{"dora@customer.example"}) },
		"16": func() { wantConversation(t, ts.store, 2, store.StatusOpen, nil) },
	}
	for _, f := range files {
		name := filepath.Base(f)
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rcpt, expect := header(raw, "X-Test-Rcpt"), header(raw, "X-Test-Expect")
		from := header(raw, "From")
		if i := strings.LastIndexByte(from, '<'); i >= 0 {
			from = strings.Trim(from[i:], "<>")
		}
		if fn := before[name[:2]]; fn != nil {
			fn()
		}
		entriesBefore := countEntries(t, ts.store)
		if err := smtpSend(ts.mx, nil, from, []string{rcpt}, string(raw)); err != nil {
			t.Fatalf("%s: MX refused it: %v", name, err)
		}
		msgID := threading.ParseMessageID(header(raw, "Message-ID"))
		conv, found, err := ts.store.ConversationByMessageID(ctx, []string{msgID})
		if err != nil || !found {
			t.Fatalf("%s: not in the index: %v", name, err)
		}
		kind, n, _ := strings.Cut(expect, " ")
		if n == "" {
			kind, n = "", kind
		}
		want, _ := strconv.ParseInt(n, 10, 64)
		if conv != want {
			t.Errorf("%s: landed in conversation %d, want %s", name, conv, expect)
		}
		grew := countEntries(t, ts.store) - entriesBefore
		switch {
		case kind == "dup" && grew != 0:
			t.Errorf("%s: a duplicate was stored again", name)
		case kind != "dup" && grew == 0 && name[:2] != "09":
			t.Errorf("%s: nothing new in INBOX", name)
		}
		if fn := after[name[:2]]; fn != nil {
			fn()
		}
	}
}

func header(raw []byte, name string) string {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for _, line := range strings.Split(string(head), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func mustSetStatus(t *testing.T, st store.Store, conv int64, s store.Status) {
	t.Helper()
	if err := st.UpdateConversation(context.Background(), store.StatusUpdate(conv, s)); err != nil {
		t.Fatal(err)
	}
}

func wantConversation(t *testing.T, st store.Store, id int64, status store.Status, participants []string) {
	t.Helper()
	c, err := st.Conversation(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != status || !slices.Equal(c.Participants, participants) {
		t.Errorf("conversation %d: status %s, participants %v; want %s, %v", id, c.Status, c.Participants, status, participants)
	}
}

func countEntries(t *testing.T, st store.Store) int {
	t.Helper()
	e, _, err := st.Entries(context.Background(), store.MailboxView{Agent: "alice@example.test", Folder: store.FolderInbox, Inboxes: []string{"support@example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	return len(e)
}
