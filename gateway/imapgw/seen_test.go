package imapgw

import (
	"strings"
	"testing"
)

// TestOwnSeenReportedOnce: a session's own \Seen (STORE, and FETCH BODY[])
// is shown in the answer of the command that set it, and not again by the
// next poll, without the session copying the folder (issue 18); another
// session of the agent is told by its next poll, and a keyword set on the
// same message afterwards still reaches both.
func TestOwnSeenReportedOnce(t *testing.T) {
	st := openTestStore(t)
	fillStore(t, st, 4)
	addr := testServer(t, st)
	a, b := dialTest(t, addr), dialTest(t, addr)
	a.must(t, "SELECT INBOX")
	b.must(t, "SELECT INBOX")
	want := func(c *testClient, cmd string, has ...string) string {
		t.Helper()
		out := c.must(t, cmd)
		for _, h := range has {
			if !strings.Contains(out, h) {
				t.Errorf("%s: %q lacks %q", cmd, out, h)
			}
		}
		return out
	}
	want(a, `UID STORE 1 +FLAGS (\Seen)`, `* 1 FETCH (UID 1 FLAGS (\Seen))`)
	if out := a.must(t, "NOOP"); strings.Contains(out, "FETCH") {
		t.Errorf("the storing session was told its own \\Seen again: %q", out)
	}
	want(a, "FETCH 1:2 (FLAGS)", `* 1 FETCH (UID 1 FLAGS (\Seen))`, `* 2 FETCH (UID 2 FLAGS ())`)
	want(b, "NOOP", `* 1 FETCH (UID 1 FLAGS (\Seen))`)

	want(a, "FETCH 2 (BODY[])", `FLAGS (\Seen)`)
	if out := a.must(t, "NOOP"); strings.Contains(out, "FETCH") {
		t.Errorf("the fetching session was told its own \\Seen again: %q", out)
	}
	want(a, `SEARCH SEEN`, `* SEARCH 1 2`)
	want(b, "NOOP", `* 2 FETCH (UID 2 FLAGS (\Seen))`)

	want(b, `UID STORE 1 +FLAGS (\Flagged)`, `\Flagged`)
	want(a, "NOOP", `* 1 FETCH (UID 1 FLAGS (\Seen \Flagged))`)
	want(a, `UID STORE 1 -FLAGS (\Seen)`, `* 1 FETCH (UID 1 FLAGS (\Flagged))`)
	want(b, "NOOP", `* 1 FETCH (UID 1 FLAGS (\Flagged))`)
	if out := a.must(t, "NOOP"); strings.Contains(out, "FETCH") {
		t.Errorf("the storing session was told its own -\\Seen again: %q", out)
	}
}
