package gateway

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// FuzzQResyncParams sends fuzzed QRESYNC parameters of SELECT (RFC 7162
// 3.2.5) and fuzzed modifiers of UID FETCH (CHANGEDSINCE, VANISHED) on one
// logged-in connection that enabled QRESYNC: each gets a tagged OK, NO or
// BAD, never an untagged BYE, a dropped connection or no answer.
func FuzzQResyncParams(f *testing.F) {
	for _, seed := range [][2]string{
		{"1 1", "CHANGEDSINCE 1 VANISHED"},
		{"4294967295 18446744073709551615 1:*", "VANISHED"},
		{"1 1 1,3:5 (1:2 1,4)", "CHANGEDSINCE 0"},
		{"1 1 (1 1)", "CHANGEDSINCE 1 VANISHED VANISHED"},
		{"0 0", "CHANGEDSINCE 18446744073709551616"},
		{"1 1 5:1 (3,2 9:8)", "CHANGEDSINCE 1 (VANISHED)"},
		{"1", ""},
		{"((((", "CHANGEDSINCE"},
	} {
		f.Add(seed[0], seed[1])
	}
	ts := newTestServer(f, nil, nil)
	for i := range 3 {
		if err := smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"},
			customerMail(fmt.Sprintf("fuzz-%d", i), "Fuzz")); err != nil {
			f.Fatal(err)
		}
	}
	c, err := net.Dial("tcp", ts.imap)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	tag := 0
	// command sends a command and returns its tagged status, failing on a
	// BYE, a read error or a response that does not come.
	command := func(t testing.TB, line string) string {
		t.Helper()
		tag++
		id := fmt.Sprintf("f%d", tag)
		if _, err := fmt.Fprintf(c, "%s %s\r\n", id, line); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		for {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%q: reading the answer: %v", line, err)
			}
			if strings.HasPrefix(l, "* BYE") {
				t.Fatalf("%q: the server said %q", line, l)
			}
			if strings.HasPrefix(l, id+" ") {
				status := strings.TrimPrefix(l, id+" ")
				if !strings.HasPrefix(status, "OK") && !strings.HasPrefix(status, "NO") && !strings.HasPrefix(status, "BAD") {
					t.Fatalf("%q: tagged answer %q", line, l)
				}
				return status
			}
		}
	}
	if st := command(f, "LOGIN alice@example.test demo-alice"); !strings.HasPrefix(st, "OK") {
		f.Fatalf("LOGIN: %s", st)
	}
	command(f, "ENABLE QRESYNC")
	f.Fuzz(func(t *testing.T, selectParam, fetchMods string) {
		// One command line each: no line ends, no literals.
		if strings.ContainsAny(selectParam+fetchMods, "\r\n{") {
			return
		}
		command(t, "SELECT INBOX (QRESYNC ("+selectParam+"))")
		command(t, "SELECT INBOX")
		command(t, "UID FETCH 1:* (FLAGS) ("+fetchMods+")")
		if st := command(t, "NOOP"); !strings.HasPrefix(st, "OK") {
			t.Fatalf("NOOP after the fuzzed commands: %s", st)
		}
	})
}
