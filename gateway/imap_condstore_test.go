package gateway

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Issue 12: CONDSTORE (RFC 7162 3.1), at the wire, in a shared folder
// (per-agent views of the conversations) and in a private one.

var (
	modSeqRE        = regexp.MustCompile(`MODSEQ \((\d+)\)`)
	highestModSeqRE = regexp.MustCompile(`HIGHESTMODSEQ (\d+)`)
	fetchUIDRE      = regexp.MustCompile(`^\* (\d+) FETCH .*UID (\d+)`)
)

// highestModSeq returns the HIGHESTMODSEQ in untagged responses.
func highestModSeq(t *testing.T, lines []string) uint64 {
	t.Helper()
	return responseNumber(t, lines, highestModSeqRE, "HIGHESTMODSEQ")
}

// responseNumber returns the number that re's first group matches in the
// first of lines it matches, failing when none does.
func responseNumber(t *testing.T, lines []string, re *regexp.Regexp, what string) uint64 {
	t.Helper()
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in %q", what, lines)
	return 0
}

// fetchModSeqs returns the MODSEQ of each untagged FETCH by sequence
// number, failing on a FETCH without one.
func fetchModSeqs(t *testing.T, lines []string) map[int]uint64 {
	t.Helper()
	out := map[int]uint64{}
	for _, l := range lines {
		if !strings.Contains(l, " FETCH ") {
			continue
		}
		var seq int
		fmt.Sscanf(l, "* %d FETCH", &seq)
		m := modSeqRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("FETCH without MODSEQ: %q", l)
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		out[seq] = n
	}
	return out
}

func fetches(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, " FETCH ") {
			out = append(out, l)
		}
	}
	return out
}

// TestCondStoreSharedFolder: in INBOX, a message's MODSEQ as an agent sees
// it grows with what that agent sees of its flags change: a tag by another
// agent (shared), their own \Seen (not another agent's), a new message;
// CHANGEDSINCE returns exactly those, UNCHANGEDSINCE refuses to overwrite
// them, SEARCH MODSEQ finds them, and HIGHESTMODSEQ is at least every
// MODSEQ and grows.
func TestCondStoreSharedFolder(t *testing.T) {
	w := newWorkspace(t, nil)
	w.customer("cs1@customer.example", "One")
	w.customer("cs2@customer.example", "Two")
	alice := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	bob := dialRaw(t, w.imap, "bob@example.test", "demo-bob")
	if u := alice.ok("CAPABILITY"); !has(u, " CONDSTORE") {
		t.Fatalf("CONDSTORE is not advertised: %q", u)
	}

	h0 := highestModSeq(t, alice.ok("SELECT INBOX (CONDSTORE)"))
	first := fetchModSeqs(t, alice.ok("FETCH 1:* (FLAGS MODSEQ)"))
	if len(first) != 2 || first[1] > h0 || first[2] > h0 || first[1] == 0 || first[1] >= first[2] {
		t.Fatalf("MODSEQ %v, HIGHESTMODSEQ %d", first, h0)
	}
	if u := alice.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)", h0); len(fetches(u)) != 0 {
		t.Errorf("CHANGEDSINCE HIGHESTMODSEQ returned %q", u)
	}

	// Another agent tags conversation 1: alice is told, with its MODSEQ.
	bob.ok("SELECT INBOX")
	bob.ok("STORE 1 +FLAGS.SILENT (billing)")
	u := alice.ok("NOOP")
	if f := fetches(u); len(f) != 1 || !strings.HasPrefix(f[0], "* 1 FETCH") || !strings.Contains(f[0], "billing") ||
		fetchModSeqs(t, f)[1] <= h0 {
		t.Errorf("after bob's tag alice got %q, want FETCH 1 with FLAGS and a MODSEQ above %d", u, h0)
	}
	// bob's \Seen is his own: nothing changes for alice.
	bob.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
	if f := fetches(alice.ok("NOOP")); len(f) != 0 {
		t.Errorf("bob's \\Seen reached alice: %q", f)
	}
	if f := fetches(alice.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)", h0)); len(f) != 1 || !strings.HasPrefix(f[0], "* 1 FETCH") ||
		!modSeqRE.MatchString(f[0]) {
		t.Errorf("CHANGEDSINCE %d = %q, want message 1 alone, with MODSEQ", h0, f)
	}

	// UNCHANGEDSINCE: message 1 changed after h0 and is left as it is;
	// message 2 is stored and reported with its new MODSEQ.
	u, st := alice.cmd("STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)", h0)
	if !strings.HasPrefix(st, "OK [MODIFIED 1]") {
		t.Errorf("conditional STORE: %s, want OK [MODIFIED 1]", st)
	}
	f := fetches(u)
	if len(f) != 1 || !strings.HasPrefix(f[0], "* 2 FETCH") || !strings.Contains(f[0], `\Seen`) || fetchModSeqs(t, f)[2] <= h0 {
		t.Errorf("conditional STORE answered %q, want FETCH 2 with \\Seen and a MODSEQ above %d", u, h0)
	}
	if fl := alice.ok("FETCH 1 FLAGS"); has(fl, `\Seen`) {
		t.Errorf("a conditional STORE changed a message modified since: %q", fl)
	}
	// UNCHANGEDSINCE 0 always fails (RFC 7162 3.1.3), named by UID in UID STORE.
	uid := fetchUIDRE.FindStringSubmatch(fetches(alice.ok("FETCH 2 UID"))[0])[2]
	if _, st := alice.cmd("UID STORE %s (UNCHANGEDSINCE 0) -FLAGS (\\Seen)", uid); !strings.HasPrefix(st, "OK [MODIFIED "+uid+"]") {
		t.Errorf("UNCHANGEDSINCE 0: %s, want OK [MODIFIED %s]", st, uid)
	}

	// SEARCH MODSEQ finds the messages changed since; the highest MODSEQ
	// of those found comes with the result.
	now := fetchModSeqs(t, alice.ok("FETCH 1:* (MODSEQ)"))
	if u := alice.ok("SEARCH MODSEQ %d", h0+1); len(u) != 1 || u[0] != fmt.Sprintf("* SEARCH 1 2 (MODSEQ %d)", max(now[1], now[2])) {
		t.Errorf("SEARCH MODSEQ %d = %q (MODSEQ %v)", h0+1, u, now)
	}
	if u := alice.ok("SEARCH RETURN (MIN) MODSEQ %d", now[2]); len(u) != 1 || !strings.Contains(u[0], fmt.Sprintf("MIN 2 MODSEQ %d", now[2])) {
		t.Errorf("ESEARCH MIN MODSEQ %d = %q", now[2], u)
	}

	// A new message enters with a MODSEQ above everything before; STATUS
	// and SELECT give a HIGHESTMODSEQ at least every MODSEQ, grown.
	h1 := highestModSeq(t, alice.ok("STATUS INBOX (HIGHESTMODSEQ)"))
	if h1 < now[1] || h1 < now[2] || h1 <= h0 {
		t.Errorf("STATUS HIGHESTMODSEQ %d: below MODSEQ %v or not above %d", h1, now, h0)
	}
	w.customer("cs3@customer.example", "Three")
	if u := alice.ok("NOOP"); !has(u, "* 3 EXISTS") {
		t.Fatalf("the new message: %q", u)
	}
	if ms := fetchModSeqs(t, alice.ok("FETCH 3 (MODSEQ)"))[3]; ms <= h1 {
		t.Errorf("a new message's MODSEQ %d is not above %d", ms, h1)
	}
	if h2 := highestModSeq(t, alice.ok("EXAMINE INBOX")); h2 <= h1 {
		t.Errorf("HIGHESTMODSEQ after a new message: %d, was %d", h2, h1)
	}
}

// TestCondStoreEnabling: HIGHESTMODSEQ comes with every SELECT; untagged
// FETCH responses carry MODSEQ only once a CONDSTORE-enabling command was
// issued, the first of which, with a folder selected, gets an untagged OK
// [HIGHESTMODSEQ] (RFC 7162 3.1); a .SILENT conditional STORE reports the
// new MODSEQ, and a FETCH that sets \Seen reports its MODSEQ.
func TestCondStoreEnabling(t *testing.T) {
	w := newWorkspace(t, nil)
	c := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	other := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	c.appendRaw("Drafts", "", "Subject: a\r\n\r\na\r\n")
	c.appendRaw("Drafts", "", "Subject: b\r\n\r\nb\r\n")
	h0 := highestModSeq(t, c.ok("SELECT Drafts"))
	other.ok("SELECT Drafts")
	other.ok("STORE 1 +FLAGS.SILENT ($label1)")
	if f := fetches(c.ok("NOOP")); len(f) != 1 || modSeqRE.MatchString(f[0]) {
		t.Errorf("before CONDSTORE is enabled: %q, want one FETCH without MODSEQ", f)
	}
	u := c.ok("FETCH 2 (MODSEQ)")
	h1 := highestModSeq(t, u)
	if h1 <= h0 || fetchModSeqs(t, u)[2] > h1 {
		t.Errorf("the first CONDSTORE-enabling command: %q (HIGHESTMODSEQ before %d)", u, h0)
	}
	if u := c.ok("FETCH 2 (MODSEQ)"); highestModSeqRE.MatchString(strings.Join(u, "")) {
		t.Errorf("HIGHESTMODSEQ again at the second: %q", u)
	}
	other.ok("STORE 1 -FLAGS.SILENT ($label1)")
	if f := fetches(c.ok("NOOP")); len(f) != 1 || fetchModSeqs(t, f)[1] <= h1 || !strings.Contains(f[0], "UID ") {
		t.Errorf("after CONDSTORE is enabled: %q, want FETCH with UID and a MODSEQ above %d", f, h1)
	}
	// .SILENT: no FLAGS, but the new MODSEQ (RFC 7162 3.1.3).
	u = c.ok("STORE 2 (UNCHANGEDSINCE %d) +FLAGS.SILENT ($label2)", h1+100)
	if f := fetches(u); len(f) != 1 || strings.Contains(f[0], "FLAGS") || fetchModSeqs(t, f)[2] <= h1 {
		t.Errorf("STORE .SILENT (UNCHANGEDSINCE): %q, want FETCH 2 (UID MODSEQ) only", u)
	}
	// BODY[] sets \Seen: the FETCH says so, with the MODSEQ of the change.
	before := fetchModSeqs(t, c.ok("FETCH 1 (MODSEQ)"))[1]
	f := fetches(c.ok("FETCH 1 BODY[]"))
	if len(f) != 1 || !strings.Contains(f[0], `\Seen`) || fetchModSeqs(t, f)[1] <= before {
		t.Errorf("FETCH BODY[]: %q, want \\Seen and a MODSEQ above %d", f, before)
	}
	// STATUS HIGHESTMODSEQ of a private folder; ENABLE CONDSTORE.
	if h := highestModSeq(t, c.ok("STATUS Drafts (HIGHESTMODSEQ)")); h < fetchModSeqs(t, f)[1] {
		t.Errorf("STATUS HIGHESTMODSEQ %d below a MODSEQ", h)
	}
	fresh := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	if u := fresh.ok("ENABLE CONDSTORE"); !has(u, "* ENABLED CONDSTORE") {
		t.Errorf("ENABLE CONDSTORE: %q", u)
	}
	fresh.ok("SELECT Drafts")
	other.ok("STORE 2 +FLAGS.SILENT ($label3)")
	if f := fetches(fresh.ok("NOOP")); len(f) != 1 || !modSeqRE.MatchString(f[0]) {
		t.Errorf("after ENABLE CONDSTORE: %q, want FETCH with MODSEQ", f)
	}
	// A search key or data item the client got wrong is a BAD.
	for _, cmd := range []string{"FETCH 1 (FLAGS) (CHANGEDSINCE x)", "STORE 1 (UNCHANGEDSINCE) +FLAGS (x)", "SEARCH MODSEQ"} {
		if _, st := c.cmd("%s", cmd); !strings.HasPrefix(st, "BAD") {
			t.Errorf("%s: %s, want BAD", cmd, st)
		}
	}
}

// TestCondStoreModSeqNeverDecreases: a FETCH of flags queued behind an
// EXPUNGE (which waits for a command that allows it) is written with the
// flags and MODSEQ the message has then, never older ones than a FETCH the
// client got meanwhile (imaptest's stress run saw "MODSEQ dropped").
func TestCondStoreModSeqNeverDecreases(t *testing.T) {
	w := newWorkspace(t, nil)
	a := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	b := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	a.appendRaw("Drafts", "", "Subject: a\r\n\r\na\r\n")
	a.appendRaw("Drafts", "", "Subject: b\r\n\r\nb\r\n")
	a.ok("SELECT Drafts (CONDSTORE)")
	b.ok("SELECT Drafts")
	b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
	b.ok("EXPUNGE")
	a.ok("FETCH 2 UID") // EXPUNGE 1 is queued: FETCH may not write it
	b.ok("STORE 1 +FLAGS.SILENT ($a)")
	a.ok("FETCH 2 UID") // the FETCH of $a is queued behind it
	b.ok("STORE 1 +FLAGS.SILENT ($b)")
	latest := fetchModSeqs(t, a.ok("FETCH 2 (FLAGS MODSEQ)"))[2]
	u := a.ok("NOOP")
	if !has(u, "* 1 EXPUNGE") {
		t.Fatalf("NOOP: %q, want the EXPUNGE", u)
	}
	for _, l := range fetches(u) {
		if ms := fetchModSeqs(t, []string{l}); ms[1] < latest || !strings.Contains(l, "$b") {
			t.Errorf("after MODSEQ %d the client got %q", latest, l)
		}
	}
}
