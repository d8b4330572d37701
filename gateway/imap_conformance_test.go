package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// Issue 12: what imaptest found, each at the wire, as a client sees it.

// wireIMAP is an IMAP connection driven with the protocol's own lines, for
// the answers a library client would hide (tagged codes, untagged RECENT,
// literals as sent).
type wireIMAP struct {
	t   *testing.T
	c   net.Conn
	r   *bufio.Reader
	tag int
}

func dialRaw(t *testing.T, addr, user, pass string) *wireIMAP {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &wireIMAP{t: t, c: c, r: bufio.NewReader(c)}
	r.line() // greeting
	if _, st := r.cmd("LOGIN %s %s", user, pass); !strings.HasPrefix(st, "OK") {
		t.Fatalf("LOGIN: %s", st)
	}
	return r
}

// line reads one response line, with the literals it announces inline.
func (r *wireIMAP) line() string {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a hang fails, it is never waited for
	var b strings.Builder
	for {
		l, err := r.r.ReadString('\n')
		if err != nil {
			r.t.Fatalf("reading a response: %v (so far %q)", err, b.String())
		}
		b.WriteString(l)
		m := regexp.MustCompile(`\{(\d+)\}\r\n$`).FindStringSubmatch(l)
		if m == nil {
			return b.String()
		}
		n, _ := strconv.Atoi(m[1])
		lit := make([]byte, n)
		if _, err := io.ReadFull(r.r, lit); err != nil {
			r.t.Fatal(err)
		}
		b.Write(lit)
	}
}

// cmd sends a command and returns its untagged responses and the tagged
// status ("OK ...", "NO ...", "BAD ...").
func (r *wireIMAP) cmd(format string, args ...any) (untagged []string, status string) {
	r.t.Helper()
	r.tag++
	tag := fmt.Sprintf("t%d", r.tag)
	if _, err := fmt.Fprintf(r.c, tag+" "+format+"\r\n", args...); err != nil {
		r.t.Fatal(err)
	}
	for {
		l := r.line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return untagged, strings.TrimRight(rest, "\r\n")
		}
		untagged = append(untagged, strings.TrimRight(l, "\r\n"))
	}
}

// ok runs a command that must succeed.
func (r *wireIMAP) ok(format string, args ...any) []string {
	r.t.Helper()
	u, st := r.cmd(format, args...)
	if !strings.HasPrefix(st, "OK") {
		r.t.Fatalf("%s: %s", fmt.Sprintf(format, args...), st)
	}
	return u
}

// appendRaw appends msg to a folder with a non-synchronizing literal.
func (r *wireIMAP) appendRaw(folder, flags, msg string) {
	r.t.Helper()
	r.ok("APPEND %s (%s) {%d+}\r\n%s", folder, flags, len(msg), msg)
}

func has(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

const conformanceMsg = "From: User1 <user1@domain.org>\r\nDate: Sat, 24 Mar 2007 23:00:00 +0200\r\n" +
	"Subject: s1\r\n\tcontinued\r\nTo: group: g1@d1.org, g2@d2.org;, other@x.org\r\n" +
	"Cc: <user-cc (comment)@ (comment) domain.org>\r\n\r\nbody\r\n"

// TestIMAPHeaderFields: BODY[HEADER.FIELDS (...)] and HEADER.FIELDS.NOT
// return the fields asked for (with their continuation lines) and the blank
// line, also when no field is left; they used to return the whole header.
func TestIMAPHeaderFields(t *testing.T) {
	w := newWorkspace(t, nil)
	c := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	c.appendRaw("Drafts", "", conformanceMsg)
	c.ok("SELECT Drafts")
	for _, tc := range []struct{ section, want string }{
		{"HEADER.FIELDS (from)", "From: User1 <user1@domain.org>\r\n\r\n"},
		{"HEADER.FIELDS (FROM subject from)", "From: User1 <user1@domain.org>\r\nSubject: s1\r\n\tcontinued\r\n\r\n"},
		{"HEADER.FIELDS.NOT (date to cc subject)", "From: User1 <user1@domain.org>\r\n\r\n"},
		{"HEADER.FIELDS (xyz)", "\r\n"},
	} {
		u := c.ok("FETCH 1 (BODY.PEEK[%s])", tc.section)
		want := fmt.Sprintf("{%d}\r\n%s)", len(tc.want), tc.want)
		if len(u) != 1 || !strings.HasSuffix(u[0], want) {
			t.Errorf("BODY[%s] = %q, want the literal %q", tc.section, u, tc.want)
		}
	}
}

// TestIMAPEnvelopeAndSearchAddresses: ENVELOPE keeps RFC 5322 groups as
// RFC 3501 markers, and SEARCH CC finds an address written with comments
// inside it.
func TestIMAPEnvelopeAndSearchAddresses(t *testing.T) {
	w := newWorkspace(t, nil)
	c := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	c.appendRaw("Drafts", "", conformanceMsg)
	c.appendRaw("Drafts", "", "From: x@y.org\r\nCc: someone@else.org\r\n\r\nb\r\n")
	c.ok("SELECT Drafts")
	u := c.ok("FETCH 1 ENVELOPE")
	want := `((NIL NIL "group" NIL) (NIL NIL "g1" "d1.org") (NIL NIL "g2" "d2.org") (NIL NIL NIL NIL) (NIL NIL "other" "x.org"))`
	if len(u) != 1 || !strings.Contains(u[0], want) {
		t.Errorf("ENVELOPE = %q, want the To list %s", u, want)
	}
	if u := c.ok("SEARCH CC user-cc@domain.org"); len(u) != 1 || u[0] != "* SEARCH 1" {
		t.Errorf("SEARCH CC with a commented address = %q, want 1", u)
	}
	if u := c.ok("SEARCH FROM \"User1 <user1@\""); len(u) != 1 || u[0] != "* SEARCH 1" {
		t.Errorf("SEARCH FROM display name and address = %q, want 1", u)
	}
}

// TestIMAPClientErrorsAreNoServerBug: what a client got wrong is BAD or NO
// with a sentence, never NO [SERVERBUG], and the connection goes on.
func TestIMAPClientErrorsAreNoServerBug(t *testing.T) {
	w := newWorkspace(t, nil)
	c := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	c.ok("SELECT INBOX")
	for _, tc := range []struct{ cmd, want string }{
		{"SELECT &Jjo", "NO [CANNOT] "},        // not modified UTF-7
		{"CREATE a&b", "NO [CANNOT] "},         // not modified UTF-7
		{"SEARCH FROMM x", "BAD [CLIENTBUG] "}, // no such key
		{"SEARCH SINCE 99-Foo-2000", "BAD [CLIENTBUG] "},
		{"FETCH 1:x FLAGS", "BAD [CLIENTBUG] "}, // not a sequence set
		{"SELECT " + strings.Repeat("x", 60<<10), "BAD [CLIENTBUG] "},
	} {
		_, st := c.cmd("%s", tc.cmd)
		if !strings.HasPrefix(st, tc.want) || len(st) < len(tc.want)+10 || strings.Contains(st, "SERVERBUG") {
			t.Errorf("%.40s: %q, want %q and a sentence", tc.cmd, st, tc.want)
		}
	}
	// imaptest's atoms group: a pattern that is not modified UTF-7 matches
	// nothing, and is no error.
	c.ok("LIST \"\" !#$&'+,-.0123456789:;<=>?@^_`|[}%%*")
	c.ok("NOOP") // the over-long line above was skipped whole
}

// TestIMAPCloseAfterExamine: CLOSE of a folder opened read-only is OK and
// expunges nothing (RFC 9051 6.4.1).
func TestIMAPCloseAfterExamine(t *testing.T) {
	w := newWorkspace(t, nil)
	c := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	c.appendRaw("Drafts", `\Deleted`, "Subject: x\r\n\r\nx\r\n")
	c.ok("EXAMINE Drafts")
	c.ok("CLOSE")
	if u := c.ok("STATUS Drafts (MESSAGES)"); !has(u, "MESSAGES 1") {
		t.Errorf("CLOSE after EXAMINE expunged: %q", u)
	}
	c.ok("SELECT Drafts")
	c.ok("CLOSE")
	if u := c.ok("STATUS Drafts (MESSAGES)"); !has(u, "MESSAGES 0") {
		t.Errorf("CLOSE after SELECT did not expunge: %q", u)
	}
}

// TestIMAPSubscriptions (DESIGN.md §6): per agent and real.
func TestIMAPSubscriptions(t *testing.T) {
	w := newWorkspace(t, nil)
	c := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	bob := dialRaw(t, w.imap, "bob@example.test", "demo-bob")
	if u := c.ok(`LSUB "" *`); !has(u, `"INBOX"`) && !has(u, ` INBOX`) || !has(u, "Closed") || !has(u, "Sent") {
		t.Fatalf("the shared folders and Sent do not start subscribed: %q", u)
	}
	c.ok("UNSUBSCRIBE Closed")
	if u := c.ok(`LSUB "" *`); has(u, "Closed") {
		t.Errorf("LSUB after UNSUBSCRIBE Closed: %q", u)
	}
	if u := c.ok(`LIST (SUBSCRIBED) "" *`); has(u, "Closed") {
		t.Errorf("LIST (SUBSCRIBED) after UNSUBSCRIBE Closed: %q", u)
	}
	if u := c.ok(`LIST "" Closed RETURN (SUBSCRIBED)`); len(u) != 1 || strings.Contains(u[0], `\Subscribed`) {
		t.Errorf("LIST RETURN (SUBSCRIBED) of an unsubscribed folder: %q", u)
	}
	if u := bob.ok(`LSUB "" Closed`); !has(u, "Closed") {
		t.Errorf("alice's UNSUBSCRIBE changed bob's subscriptions: %q", u)
	}
	c.ok("CREATE Projects/Acme")
	if u := c.ok(`LSUB "" Projects*`); len(u) != 0 {
		t.Errorf("CREATE subscribed: %q", u)
	}
	c.ok("SUBSCRIBE Projects/Acme")
	c.ok("SUBSCRIBE Nowhere")
	if u := c.ok(`LSUB "" %%`); !has(u, `(\Noselect) "/" Projects`) && !has(u, `(\Noselect) "/" "Projects"`) {
		t.Errorf(`LSUB %% does not give the parent of a subscribed child with \Noselect: %q`, u)
	}
	if u := c.ok(`LIST (SUBSCRIBED) "" Nowhere`); !has(u, `\NonExistent`) || !has(u, `\Subscribed`) {
		t.Errorf("a subscribed name that does not exist: %q", u)
	}
	c.ok("RENAME Projects Clients")
	if u := c.ok(`LIST (SUBSCRIBED) "" Clients/*`); !has(u, "Clients/Acme") {
		t.Errorf("RENAME did not move the subscription: %q", u)
	}
	c.ok("DELETE Clients/Acme")
	if u := c.ok(`LIST (SUBSCRIBED) "" Clients/*`); !has(u, `\NonExistent`) {
		t.Errorf("DELETE dropped the subscription (RFC 3501 6.3.6 keeps it): %q", u)
	}
	if u := c.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" %%`); !has(u, `CHILDINFO ("SUBSCRIBED")`) {
		t.Errorf("RECURSIVEMATCH gives no CHILDINFO for Clients: %q", u)
	}
}

// TestIMAPConcurrentPrivateStore: two sessions change different flags of
// one private message; both changes are kept (imaptest's store group). The
// second session's picture is older than the first one's change.
func TestIMAPConcurrentPrivateStore(t *testing.T) {
	w := newWorkspace(t, nil)
	a := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	b := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	a.appendRaw("Drafts", `\Seen`, "Subject: x\r\n\r\nx\r\n")
	a.ok("SELECT Drafts")
	b.ok("SELECT Drafts")
	a.ok(`STORE 1 +FLAGS.SILENT (\Answered)`)
	b.ok(`STORE 1 -FLAGS.SILENT (\Seen)`)
	for _, c := range []*wireIMAP{a, b} {
		if u := c.ok("FETCH 1 FLAGS"); !has(u, `\Answered)`) || has(u, `\Seen`) {
			t.Errorf("after +\\Answered and -\\Seen from two sessions: %q", u)
		}
	}
}

// TestIMAPDeleteSelectedFolder: deleting the selected private folder is
// answered, and the session goes on with it empty.
func TestIMAPDeleteSelectedFolder(t *testing.T) {
	w := newWorkspace(t, nil)
	a := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	b := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	a.ok("CREATE Old")
	a.appendRaw("Old", "", "Subject: x\r\n\r\nx\r\n")
	a.ok("SELECT Old")
	b.ok("SELECT Old")
	if u := a.ok("DELETE Old"); !has(u, "* 1 EXPUNGE") {
		t.Errorf("DELETE of the selected folder: %q, want its message expunged", u)
	}
	if u := b.ok("NOOP"); !has(u, "* 1 EXPUNGE") {
		t.Errorf("another session on the deleted folder: %q", u)
	}
	a.ok("NOOP")
	if _, st := a.cmd("SELECT Old"); !strings.HasPrefix(st, "NO [NONEXISTENT]") {
		t.Errorf("SELECT of the deleted folder: %s", st)
	}
}

// goneStore is a store whose private messages vanish between a session's
// picture and its FETCH, as when another session expunges them then.
type goneStore struct {
	store.Store
	mu   sync.Mutex
	gone bool
}

func (g *goneStore) PrivateRaw(ctx context.Context, agent, name string, uid uint32) ([]byte, error) {
	g.mu.Lock()
	gone := g.gone
	g.mu.Unlock()
	if gone && uid == 1 {
		return nil, store.ErrNotFound
	}
	return g.Store.PrivateRaw(ctx, agent, name, uid)
}

// TestIMAPFetchExpungedMeanwhile: a FETCH of a message another session
// expunged after this one's picture sends the others and NO
// [EXPUNGEISSUED], with no error logged (RFC 9051 7.5.2).
func TestIMAPFetchExpungedMeanwhile(t *testing.T) {
	var log syncLog
	var gs *goneStore
	ts := newLoggingTestServer(t, func(s store.Store) store.Store { gs = &goneStore{Store: s}; return gs }, nil, &log)
	c := dialRaw(t, ts.imap, "alice@example.test", "demo-alice")
	c.appendRaw("Drafts", "", "Subject: one\r\n\r\nx\r\n")
	c.appendRaw("Drafts", "", "Subject: two\r\n\r\nx\r\n")
	c.ok("SELECT Drafts")
	gs.mu.Lock()
	gs.gone = true
	gs.mu.Unlock()
	u, st := c.cmd("FETCH 1:2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	if !strings.HasPrefix(st, "NO [EXPUNGEISSUED] ") || !has(u, "Subject: two") || has(u, "Subject: one") {
		t.Errorf("FETCH of an expunged message: %q %s", u, st)
	}
	if strings.Contains(log.String(), "level=ERROR") {
		t.Errorf("logged as an error:\n%s", log.String())
	}
}

type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestIMAPRecent: \Recent for IMAP4rev1 clients in private folders (RFC
// 3501 2.3.2): EXAMINE shows without taking, SELECT takes, a session that
// has the folder selected takes what arrives.
func TestIMAPRecent(t *testing.T) {
	w := newWorkspace(t, nil)
	a := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	b := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	a.ok("CREATE New")
	a.appendRaw("New", "", "Subject: 1\r\n\r\nx\r\n")
	a.appendRaw("New", "", "Subject: 2\r\n\r\nx\r\n")
	if u := a.ok("EXAMINE New"); !has(u, "* 2 RECENT") {
		t.Errorf("EXAMINE: %q", u)
	}
	a.ok("CLOSE")
	if u := a.ok("STATUS New (RECENT)"); !has(u, "RECENT 2") {
		t.Errorf("STATUS after EXAMINE: %q", u)
	}
	if u := a.ok("SELECT New"); !has(u, "* 2 RECENT") {
		t.Errorf("SELECT: %q", u)
	}
	if u := b.ok("SELECT New"); !has(u, "* 0 RECENT") {
		t.Errorf("a second SELECT: %q", u)
	}
	b.ok("UNSELECT")
	b.appendRaw("New", "", "Subject: 3\r\n\r\nx\r\n")
	if u := a.ok("NOOP"); !has(u, "* 3 EXISTS") || !has(u, "* 3 RECENT") {
		t.Errorf("a new message while selected: %q", u)
	}
	if u := a.ok("SEARCH RECENT"); !has(u, "* SEARCH 1 2 3") {
		t.Errorf("SEARCH RECENT: %q", u)
	}
	b.ok("SELECT New")
	if u := b.ok("FETCH 3 FLAGS"); has(u, `\Recent`) {
		t.Errorf("a message recent in two sessions: %q", u)
	}
	if u := a.ok("FETCH 3 FLAGS"); !has(u, `\Recent`) {
		t.Errorf("FETCH FLAGS: %q", u)
	}
}
