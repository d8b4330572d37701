package imapgw

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// Regressions found by imaptest's stress run on the shared INBOX
// (cmd/supportgate/imaptest_stress_e2e_test.go).

var (
	existsLine = regexp.MustCompile(`^\* (\d+) EXISTS`)
	expungeLn  = regexp.MustCompile(`^\* \d+ EXPUNGE`)
	fetchLine  = regexp.MustCompile(`^\* (\d+) FETCH `)
	flagsLine  = regexp.MustCompile(`^\* FLAGS \(([^)]*)\)`)
	permLine   = regexp.MustCompile(`^\* OK \[PERMANENTFLAGS \(([^)]*)\)\]`)
	fetchFlags = regexp.MustCompile(`FLAGS \(([^)]*)\)`)
)

// clientView follows what a client knows of the selected folder from the
// responses it read: the number of messages and the keywords announced.
type clientView struct {
	exists   int
	keywords map[string]bool
}

// read checks the untagged responses of out in order, as imaptest does:
// a FETCH names a message the client was told of ("seq too high"), and
// shows only keywords that an untagged FLAGS announced before ("Keyword
// used without being in FLAGS"); FLAGS never drops one (RFC 9051 7.3.5).
func (v *clientView) read(t *testing.T, what, out string) {
	t.Helper()
	for _, l := range strings.Split(out, "\r\n") {
		if m := existsLine.FindStringSubmatch(l); m != nil {
			v.exists, _ = strconv.Atoi(m[1])
		}
		if expungeLn.MatchString(l) {
			v.exists--
		}
		if m := flagsLine.FindStringSubmatch(l); m != nil {
			now := map[string]bool{}
			for _, f := range strings.Fields(m[1]) {
				if !strings.HasPrefix(f, `\`) {
					now[strings.ToLower(f)] = true
				}
			}
			for k := range v.keywords {
				if !now[k] {
					t.Errorf("%s: FLAGS dropped keyword %s: %s", what, k, l)
				}
			}
			v.keywords = now
		}
		if m := permLine.FindStringSubmatch(l); m != nil {
			for _, f := range strings.Fields(m[1]) {
				if !strings.HasPrefix(f, `\`) && !v.keywords[strings.ToLower(f)] {
					t.Errorf("%s: PERMANENTFLAGS keyword %s not in FLAGS: %s", what, f, l)
				}
			}
		}
		m := fetchLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if seq, _ := strconv.Atoi(m[1]); seq > v.exists {
			t.Errorf("%s: FETCH of message %d, the client knows %d: %s", what, seq, v.exists, l)
		}
		if fm := fetchFlags.FindStringSubmatch(l); fm != nil {
			for _, f := range strings.Fields(fm[1]) {
				if !strings.HasPrefix(f, `\`) && !v.keywords[strings.ToLower(f)] {
					t.Errorf("%s: keyword %s shown before FLAGS announced it: %s", what, f, l)
				}
			}
		}
	}
}

func addCustomerMail(t *testing.T, st store.Store, n int) {
	t.Helper()
	for i := range n {
		in := store.Inbound{Inbox: testInbox, Owner: "n@customer.example", Subject: "New", Sender: "n@customer.example",
			SenderRole: store.SenderOwner, MessageIDHeader: fmt.Sprintf("new%d.%d@customer.example", i, time.Now().UnixNano()),
			Raw: benchRaw(1000 + i), Received: time.Now()}
		if _, err := st.AddInbound(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFetchOnlyAnnouncedMessages: when several messages arrive between two
// commands, a FETCH 1:* answers only for the messages the client knows; the
// new ones are announced by EXISTS after its answer. The library's tracker
// turns server sequence numbers into the client's only when EXISTS grows by
// one at a time (SessionTracker.EncodeSeqNum: "doesn't handle increments >
// 1"); imaptest saw "seq too high (276 > 275, state=UIDFETCH)".
func TestFetchOnlyAnnouncedMessages(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t)
	fillStore(t, st, 6) // conversations of UIDs 1-2, 3-4, 5-6
	c := dialTest(t, testServer(t, st))
	var v clientView
	v.read(t, "SELECT", c.must(t, "SELECT INBOX"))
	v.read(t, "NOOP", c.must(t, "NOOP")) // a FETCH right after SELECT shows SELECT's picture

	addCustomerMail(t, st, 3)
	v.read(t, "FETCH after 3 new messages", c.must(t, "FETCH 1:* (FLAGS)"))
	v.read(t, "UID FETCH after 3 new messages", c.must(t, "UID FETCH 1:* (FLAGS)"))
	if v.exists != 9 {
		t.Fatalf("the client knows %d messages, want 9", v.exists)
	}

	// A conversation closed (its EXPUNGEs wait: a FETCH may not send
	// them) and new mail.
	if err := st.UpdateConversation(ctx, store.StatusUpdate(2, store.StatusClosed)); err != nil { // UIDs 3 and 4
		t.Fatal(err)
	}
	addCustomerMail(t, st, 2)
	v.read(t, "UID FETCH after a close and 2 new messages", c.must(t, "UID FETCH 1:* (FLAGS)"))
	v.read(t, "NOOP", c.must(t, "NOOP"))
	if v.exists != 9 {
		t.Fatalf("the client knows %d messages, want 9", v.exists)
	}
}

// TestKeywordsAnnouncedBeforeUse: SELECT's FLAGS and PERMANENTFLAGS list
// the folder's keywords; a keyword set later, by another session or by
// this one's STORE, reaches a client in an untagged FLAGS before any FETCH
// shows it (RFC 9051 7.3.5; imaptest: "Keyword used without being in FLAGS").
func TestKeywordsAnnouncedBeforeUse(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t)
	fillStore(t, st, 6)
	if err := st.UpdateConversation(ctx, store.KeywordsUpdate(1, []string{"$Label1"}, nil)); err != nil {
		t.Fatal(err)
	}
	addr := testServer(t, st)
	a, b := dialTest(t, addr), dialTest(t, addr)
	var va, vb clientView
	out := a.must(t, "SELECT INBOX")
	wantLine(t, "SELECT", out, `(?m)^\* FLAGS \(.*\$Label1.*\)`)
	wantLine(t, "SELECT", out, `(?m)^\* OK \[PERMANENTFLAGS \(.*\$Label1.*\\\*\)\]`)
	va.read(t, "a's SELECT", out)
	vb.read(t, "b's SELECT", b.must(t, "SELECT INBOX"))

	// b tags conversation 2 (UIDs 3-4) from message 3: its own answer,
	// then a's FETCH and a's NOOP.
	vb.read(t, "b's STORE", b.must(t, "STORE 3 +FLAGS ($Label2)"))
	wantLine(t, "b's STORE", strings.Join([]string{b.must(t, "FETCH 3:4 (FLAGS)")}, ""), `(?m)^\* 4 FETCH \(UID 4 FLAGS \(\$Label2\)\)`)
	va.read(t, "a's FETCH", a.must(t, "FETCH 1:* (FLAGS)"))
	if !va.keywords["$label2"] {
		t.Fatal("a was not told of $Label2")
	}
	// A keyword set with .SILENT is announced all the same, and a new
	// keyword of a session's own STORE too; and one from the store while
	// a waits, at its NOOP.
	vb.read(t, "b's STORE.SILENT", b.must(t, "STORE 5 +FLAGS.SILENT (Billing)"))
	vb.read(t, "b's NOOP", b.must(t, "NOOP"))
	va.read(t, "a's STORE", a.must(t, "UID STORE 1 +FLAGS (urgent)"))
	if err := st.UpdateConversation(ctx, store.KeywordsUpdate(3, []string{"vip"}, nil)); err != nil {
		t.Fatal(err)
	}
	va.read(t, "a's NOOP", a.must(t, "NOOP"))
	vb.read(t, "b's FETCH", b.must(t, "FETCH 1:* (FLAGS)"))
	for _, k := range []string{"$label1", "$label2", "billing", "urgent", "vip"} {
		if !va.keywords[k] || !vb.keywords[k] {
			t.Errorf("%s not announced: a %v, b %v", k, va.keywords, vb.keywords)
		}
	}
	// A new session's SELECT lists them all.
	var vc clientView
	vc.read(t, "c's SELECT", dialTest(t, addr).must(t, "SELECT INBOX"))
	if len(vc.keywords) < 5 {
		t.Errorf("SELECT announced %v", vc.keywords)
	}
}

// TestStoreNewKeywordWithExpungePending: a STORE of a keyword new to the
// session answers with it before its tagged OK, announced by FLAGS first,
// even while an EXPUNGE waits for the client (it cannot be sent during
// FETCH or STORE). imaptest: "STORE didn't update keyword".
func TestStoreNewKeywordWithExpungePending(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t)
	fillStore(t, st, 6) // conversations of UIDs 1-2, 3-4, 5-6
	c := dialTest(t, testServer(t, st))
	var v clientView
	v.read(t, "SELECT", c.must(t, "SELECT INBOX"))
	if err := st.UpdateConversation(ctx, store.StatusUpdate(3, store.StatusClosed)); err != nil { // UIDs 5 and 6 leave
		t.Fatal(err)
	}
	out := c.must(t, "FETCH 1:4 (FLAGS)") // takes in the change; its EXPUNGEs wait
	v.read(t, "FETCH", out)
	out = c.must(t, "STORE 1 +FLAGS (NewTag)")
	v.read(t, "STORE", out)
	wantLine(t, "STORE", out, `(?m)^\* 1 FETCH \(.*FLAGS \(NewTag\)`)
	v.read(t, "NOOP", c.must(t, "NOOP"))
	if v.exists != 4 {
		t.Fatalf("the client knows %d messages, want 4", v.exists)
	}
}
