package gateway

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Issue 18: QRESYNC (RFC 7162 3.2), at the wire, in a private folder and in
// the shared INBOX.

var (
	uidValidityRE = regexp.MustCompile(`UIDVALIDITY (\d+)`)
	vanishedRE    = regexp.MustCompile(`^\* VANISHED (\(EARLIER\) )?([0-9:,]+)\r?\n?$`)
)

func uidValidity(t *testing.T, lines []string) uint64 {
	t.Helper()
	return responseNumber(t, lines, uidValidityRE, "UIDVALIDITY")
}

// uidSetHas reports whether the sequence set s ("1:3,7") holds uid.
func uidSetHas(s string, uid int) bool {
	for _, r := range strings.Split(s, ",") {
		lo, hi, ok := strings.Cut(r, ":")
		a, _ := strconv.Atoi(lo)
		b := a
		if ok {
			b, _ = strconv.Atoi(hi)
		}
		if min(a, b) <= uid && uid <= max(a, b) {
			return true
		}
	}
	return false
}

// vanishedLines returns the VANISHED responses: earlier is whether they
// carry (EARLIER), sets their UID sets; a response of the other kind fails.
func vanishedLines(t *testing.T, lines []string, earlier bool) (sets []string) {
	t.Helper()
	for _, l := range lines {
		if !strings.HasPrefix(l, "* VANISHED") {
			continue
		}
		m := vanishedRE.FindStringSubmatch(l)
		if m == nil || (m[1] != "") != earlier {
			t.Fatalf("VANISHED response %q, want earlier=%v", l, earlier)
		}
		sets = append(sets, m[2])
	}
	return sets
}

// fetchUIDs returns the UIDs of the untagged FETCH responses, in order.
func fetchUIDs(lines []string) []int {
	var out []int
	for _, l := range fetches(lines) {
		if m := regexp.MustCompile(`UID (\d+)`).FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, n)
		}
	}
	return out
}

// TestQResyncPrivateFolder: ENABLE QRESYNC; expunges are VANISHED with the
// UID, and EXPUNGE's tagged OK carries HIGHESTMODSEQ; SELECT (QRESYNC ...)
// tells what left and what changed since, in that order, within the known
// UIDs, and nothing when UIDVALIDITY changed; UID FETCH (CHANGEDSINCE n
// VANISHED) too; each misuse is a BAD.
func TestQResyncPrivateFolder(t *testing.T) {
	w := newWorkspace(t, nil)
	c := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	other := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	if u := c.ok("CAPABILITY"); !has(u, " QRESYNC") {
		t.Fatalf("QRESYNC is not advertised: %q", u)
	}
	for _, msg := range []string{"a", "b", "c", "d", "e"} {
		c.appendRaw("Drafts", "", "Subject: "+msg+"\r\n\r\n"+msg+"\r\n")
	}
	// RFC 7162 3.2.5, 3.2.6: BAD before ENABLE QRESYNC.
	if _, st := c.cmd("SELECT Drafts (QRESYNC (1 1))"); !strings.HasPrefix(st, "BAD") {
		t.Errorf("SELECT (QRESYNC) before ENABLE QRESYNC: %s, want BAD", st)
	}
	if u := c.ok("ENABLE QRESYNC"); !has(u, "* ENABLED QRESYNC") {
		t.Fatalf("ENABLE QRESYNC: %q", u)
	}
	sel := c.ok("SELECT Drafts")
	v, h0 := uidValidity(t, sel), highestModSeq(t, sel)
	uids := fetchUIDs(c.ok("UID FETCH 1:* (FLAGS)"))
	if len(uids) != 5 {
		t.Fatalf("UIDs %v, want 5", uids)
	}
	for _, bad := range []string{
		"FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)", // not UID FETCH
		"UID FETCH 1:* (FLAGS) (VANISHED)",            // without CHANGEDSINCE
	} {
		if _, st := c.cmd("%s", bad); !strings.HasPrefix(st, "BAD") {
			t.Errorf("%s: %s, want BAD (RFC 7162 3.2.6)", bad, st)
		}
	}

	// Another session (QRESYNC enabled too) tags b and expunges c and e:
	// VANISHED with the UIDs, never EXPUNGE, and HIGHESTMODSEQ in the OK.
	other.ok("ENABLE QRESYNC")
	other.ok("SELECT Drafts")
	other.ok("UID STORE %d +FLAGS.SILENT ($label1)", uids[1])
	other.ok("UID STORE %d,%d +FLAGS.SILENT (\\Deleted)", uids[2], uids[4])
	u, st := other.cmd("EXPUNGE")
	if has(u, "EXPUNGE") {
		t.Errorf("EXPUNGE with QRESYNC enabled sent EXPUNGE responses: %q", u)
	}
	if got := vanishedLines(t, u, false); len(got) != 2 || !uidSetHas(strings.Join(got, ","), uids[2]) || !uidSetHas(strings.Join(got, ","), uids[4]) {
		t.Errorf("EXPUNGE answered %q, want VANISHED %d and %d", u, uids[2], uids[4])
	}
	if !strings.HasPrefix(st, "OK [HIGHESTMODSEQ ") {
		t.Errorf("EXPUNGE's tagged response %q, want OK [HIGHESTMODSEQ n] (RFC 7162 3.2.7)", st)
	}
	// The session that has the folder selected is told by UID too.
	if u := c.ok("NOOP"); has(u, "EXPUNGE") || len(vanishedLines(t, u, false)) != 2 {
		t.Errorf("the other session's expunges reached this one as %q, want two VANISHED", u)
	}

	// SELECT (QRESYNC (v h0)): VANISHED (EARLIER) with c and e and none of
	// the others, before the FETCH of b alone, with UID, FLAGS and MODSEQ.
	c.ok("UNSELECT")
	u = c.ok("SELECT Drafts (QRESYNC (%d %d))", v, h0)
	gone := vanishedLines(t, u, true)
	if len(gone) != 1 || !uidSetHas(gone[0], uids[2]) || !uidSetHas(gone[0], uids[4]) ||
		uidSetHas(gone[0], uids[0]) || uidSetHas(gone[0], uids[1]) || uidSetHas(gone[0], uids[3]) {
		t.Errorf("SELECT (QRESYNC) sent VANISHED (EARLIER) %q, want %d and %d and none of %v", gone, uids[2], uids[4], uids)
	}
	if got := fetchUIDs(u); !slices.Equal(got, []int{uids[1]}) || !strings.Contains(fetches(u)[0], "$label1") ||
		!modSeqRE.MatchString(fetches(u)[0]) {
		t.Errorf("SELECT (QRESYNC) fetched %q, want UID %d with FLAGS and MODSEQ", fetches(u), uids[1])
	}
	vi := slices.IndexFunc(u, func(l string) bool { return strings.HasPrefix(l, "* VANISHED") })
	fi := slices.IndexFunc(u, func(l string) bool { return strings.Contains(l, " FETCH ") })
	if vi < 0 || fi < 0 || vi > fi {
		t.Errorf("VANISHED (EARLIER) must come before the FETCH responses: %q", u)
	}
	// With known UIDs: only about those.
	u = c.ok("SELECT Drafts (QRESYNC (%d %d %d,%d))", v, h0, uids[0], uids[2])
	if gone := vanishedLines(t, u, true); len(gone) != 1 || gone[0] != strconv.Itoa(uids[2]) {
		t.Errorf("known UIDs %d,%d: VANISHED (EARLIER) %q, want %d", uids[0], uids[2], gone, uids[2])
	}
	if f := fetches(u); len(f) != 0 {
		t.Errorf("known UIDs %d,%d: FETCH %q, want none (only b changed)", uids[0], uids[2], f)
	}
	// Another UIDVALIDITY: the folder as if nothing changed.
	u = c.ok("SELECT Drafts (QRESYNC (%d %d))", v+1, h0)
	if has(u, "VANISHED") || len(fetches(u)) != 0 {
		t.Errorf("QRESYNC with another UIDVALIDITY: %q, want neither VANISHED nor FETCH", u)
	}

	// UID FETCH (CHANGEDSINCE h0 VANISHED): the same, for the set asked.
	u = c.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", h0)
	if gone := vanishedLines(t, u, true); len(gone) != 1 || !uidSetHas(gone[0], uids[2]) || !uidSetHas(gone[0], uids[4]) ||
		uidSetHas(gone[0], uids[3]) {
		t.Errorf("UID FETCH (VANISHED): VANISHED (EARLIER) %q", gone)
	}
	if got := fetchUIDs(u); !slices.Equal(got, []int{uids[1]}) {
		t.Errorf("UID FETCH (CHANGEDSINCE %d VANISHED) fetched UIDs %v, want %d", h0, got, uids[1])
	}
}

// qresyncInbox makes a workspace whose INBOX holds a conversation from each
// of customers, and alice's and bob's connections to it: alice enabled
// QRESYNC and selected INBOX (sel is the answer); uids are the messages'
// UIDs, in the customers' order.
func qresyncInbox(t *testing.T, customers ...string) (w *workspace, alice, bob *wireIMAP, sel []string, uids []int) {
	t.Helper()
	w = newWorkspace(t, nil)
	for i, c := range customers {
		w.customer(c, fmt.Sprintf("Request %d", i+1))
	}
	alice = dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	bob = dialRaw(t, w.imap, "bob@example.test", "demo-bob")
	alice.ok("ENABLE QRESYNC")
	sel = alice.ok("SELECT INBOX")
	if uids = fetchUIDs(alice.ok("UID FETCH 1:* (FLAGS)")); len(uids) != len(customers) {
		t.Fatalf("INBOX UIDs %v, want %d", uids, len(customers))
	}
	return w, alice, bob, sel, uids
}

// TestQResyncSharedFolder: in INBOX, a conversation that bob closes leaves
// alice's INBOX as VANISHED with its UID, and a later SELECT (QRESYNC) of
// another of alice's sessions names it in VANISHED (EARLIER) and fetches the
// conversation bob tagged.
func TestQResyncSharedFolder(t *testing.T) {
	w, alice, bob, sel, uids := qresyncInbox(t, "qr1@customer.example", "qr2@customer.example", "qr3@customer.example")
	later := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	v, h0 := uidValidity(t, sel), highestModSeq(t, sel)

	bob.ok("SELECT INBOX")
	bob.ok("UID STORE %d +FLAGS.SILENT (billing)", uids[2])
	bob.ok("UID MOVE %d Closed", uids[0]) // closes conversation 1
	u := alice.ok("NOOP")
	if has(u, "EXPUNGE") || !slices.Equal(vanishedLines(t, u, false), []string{strconv.Itoa(uids[0])}) {
		t.Errorf("bob closing a conversation reached alice as %q, want VANISHED %d", u, uids[0])
	}

	later.ok("ENABLE QRESYNC")
	u = later.ok("SELECT INBOX (QRESYNC (%d %d))", v, h0)
	if gone := vanishedLines(t, u, true); len(gone) != 1 || !uidSetHas(gone[0], uids[0]) || uidSetHas(gone[0], uids[1]) ||
		uidSetHas(gone[0], uids[2]) {
		t.Errorf("SELECT INBOX (QRESYNC): VANISHED (EARLIER) %q, want %d only among %v", gone, uids[0], uids)
	}
	if got := fetchUIDs(u); !slices.Equal(got, []int{uids[2]}) || !strings.Contains(fetches(u)[0], "billing") {
		t.Errorf("SELECT INBOX (QRESYNC) fetched %q, want UID %d tagged billing", fetches(u), uids[2])
	}
}

// TestQResyncDeferredChanges: a FETCH (which may not be answered with
// expunges, RFC 9051 7.5.1) that shows a MODSEQ while another session's
// expunge and a flag change with a lower mod-sequence wait behind it is
// followed by OK [HIGHESTMODSEQ] below them (RFC 7162 3.2, errata 1810):
// else a client that resynchronizes later from the highest MODSEQ it saw
// never learns of the change.
func TestQResyncDeferredChanges(t *testing.T) {
	_, alice, bob, _, uids := qresyncInbox(t, "dz@customer.example", "dy@customer.example", "dx@customer.example") // Zed, Why, Ex
	bob.ok("SELECT INBOX")
	bob.ok("UID STORE %d +FLAGS.SILENT (billing)", uids[1]) // Why, then Zed: Zed's MODSEQ is the higher
	bob.ok("UID STORE %d +FLAGS.SILENT (refund)", uids[0])
	bob.ok("UID MOVE %d Closed", uids[2]) // Ex leaves INBOX

	// alice fetches Zed: its MODSEQ is shown; Ex's expunge and Why's tag
	// wait for a command that allows expunges.
	u := alice.ok("FETCH 1 (FLAGS MODSEQ)")
	zed := fetchModSeqs(t, u)[1]
	var below uint64
	for _, l := range u {
		if m := highestModSeqRE.FindStringSubmatch(l); m != nil && strings.HasPrefix(l, "* OK [HIGHESTMODSEQ") {
			below, _ = strconv.ParseUint(m[1], 10, 64)
		}
	}
	u = alice.ok("NOOP")
	if got := vanishedLines(t, u, false); !slices.Equal(got, []string{strconv.Itoa(uids[2])}) {
		t.Fatalf("NOOP after the FETCH: %q, want VANISHED %d and Why's tag", u, uids[2])
	}
	why := fetchModSeqs(t, fetches(u))[2]
	if why == 0 || why >= zed {
		t.Fatalf("Why's MODSEQ %d, Zed's %d: the test needs Why's below", why, zed)
	}
	if below == 0 || below >= why {
		t.Errorf("the FETCH showed MODSEQ %d while Why's change (MODSEQ %d) waited, and then HIGHESTMODSEQ %d; want an untagged OK [HIGHESTMODSEQ] below %d", zed, why, below, why)
	}
}

// TestFlagsKeepAnnouncedKeywords: a keyword once announced in a folder's
// FLAGS to an agent stays in the FLAGS of their later SELECTs after the
// last message with it lost it, as Dovecot keeps a folder's keywords: a
// client whose cached copy of a message still has it (it stored -FLAGS
// .SILENT and was told only the MODSEQ) would otherwise be told the keyword
// no longer exists (imaptest's qresync stress: "Keyword dropped, but it
// still had references").
func TestFlagsKeepAnnouncedKeywords(t *testing.T) {
	w := newWorkspace(t, nil)
	w.customer("kw@customer.example", "Keyword")
	alice := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	bob := dialRaw(t, w.imap, "bob@example.test", "demo-bob")
	alice.ok("SELECT INBOX")
	bob.ok("SELECT INBOX")
	bob.ok("STORE 1 +FLAGS.SILENT (warranty)")
	if u := alice.ok("NOOP"); !has(u, "* FLAGS (") || !has(u, "warranty") {
		t.Fatalf("bob's new keyword was not announced to alice: %q", u)
	}
	bob.ok("STORE 1 -FLAGS.SILENT (warranty)")
	later := dialRaw(t, w.imap, "alice@example.test", "demo-alice")
	u := later.ok("SELECT INBOX")
	var flags string
	for _, l := range u {
		if strings.HasPrefix(l, "* FLAGS (") {
			flags = l
		}
	}
	if !strings.Contains(flags, "warranty") {
		t.Errorf("a later SELECT's FLAGS %q dropped the keyword announced before", flags)
	}
	if f := fetches(later.ok("FETCH 1 FLAGS")); len(f) != 1 || strings.Contains(f[0], "warranty") {
		t.Errorf("the message's flags %q: the keyword is listed, not set", f)
	}
}
