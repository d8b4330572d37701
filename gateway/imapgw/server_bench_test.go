package imapgw

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/desk"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/sqlite"
)

const (
	testInbox = "support@example.test"
	testAgent = "alice@example.test"
	testPass  = "secret"
)

// testConfig is one inbox with one admin agent.
func testConfig() *config.Config {
	return &config.Config{
		Inboxes: []config.Inbox{{Address: testInbox, Name: testInbox}},
		Agents: []config.Agent{{Email: testAgent, Name: "alice",
			Roles: map[string]config.Role{testInbox: config.RoleAdmin}}},
	}
}

// testServer serves st on a loopback port and returns its address.
func testServer(tb testing.TB, st store.Store) string {
	tb.Helper()
	cfg := testConfig()
	srv := New(Options{
		Config: cfg, Store: st, Desk: desk.New(st, func() *config.Config { return cfg }),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Authenticate: func(email, password string) (config.Agent, bool) {
			if email == testAgent && password == testPass {
				return cfg.Agents[0], true
			}
			return config.Agent{}, false
		},
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Serve(l)
	tb.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// benchRaw is message i of the benchmark folder: 4 KiB, like sgbench's,
// every third one a multipart with an attachment.
func benchRaw(i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Carla <c%d@customer.example>\r\nTo: <%s>\r\nCc: dan@customer.example\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n"+
		"Message-ID: <fill%d@customer.example>\r\nSubject: =?UTF-8?Q?Caf=C3=A9?= printer %d\r\nMIME-Version: 1.0\r\n", i%1000, testInbox, i, i)
	if i%3 != 0 {
		b.WriteString("Content-Type: text/plain; charset=us-ascii\r\n\r\n")
		for b.Len() < 4096 {
			b.WriteString("The printer on the third floor is on fire again; please send someone.\r\n")
		}
		return b.Bytes()
	}
	b.WriteString("Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n")
	for b.Len() < 3000 {
		b.WriteString("The coffee machine makes tea instead of coffee since the last update.\r\n")
	}
	b.WriteString("--b1\r\nContent-Type: application/octet-stream; name=\"log.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for b.Len() < 4096 {
		b.WriteString("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n")
	}
	b.WriteString("--b1--\r\n")
	return b.Bytes()
}

// fillStore stores n messages in INBOX, two per conversation.
// openTestStore opens a store of its own for a test, closed after it.
func openTestStore(tb testing.TB) *sqlite.Store {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

func fillStore(tb testing.TB, st *sqlite.Store, n int) {
	tb.Helper()
	ctx := context.Background()
	var conv int64
	for i := range n {
		in := store.Inbound{Inbox: testInbox, Owner: "c@customer.example", Subject: "Printer", NormSubject: "printer",
			Sender: "c@customer.example", SenderRole: store.SenderOwner, MessageIDHeader: fmt.Sprintf("fill%d@customer.example", i),
			Raw: benchRaw(i), Received: time.Unix(1_700_000_000+int64(i), 0)}
		if i%2 == 1 {
			in.Conversation = conv
		}
		res, err := st.AddInbound(ctx, in)
		if err != nil {
			tb.Fatal(err)
		}
		conv = res.Conversation
	}
}

// testClient is a minimal IMAP client that reads to the tagged answer.
type testClient struct {
	c   net.Conn
	r   *bufio.Reader
	seq int
}

var testLiteral = regexp.MustCompile(`\{(\d+)\}\r\n$`)

func dialTest(tb testing.TB, addr string) *testClient {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	tc := &testClient{c: c, r: bufio.NewReaderSize(c, 64<<10)}
	if _, err := tc.r.ReadString('\n'); err != nil {
		tb.Fatal(err)
	}
	tc.must(tb, fmt.Sprintf("LOGIN %s %s", testAgent, testPass))
	return tc
}

// cmd runs a command and returns its untagged lines with their literals.
func (t *testClient) cmd(line string) (string, error) {
	t.seq++
	tag := "t" + strconv.Itoa(t.seq)
	if _, err := io.WriteString(t.c, tag+" "+line+"\r\n"); err != nil {
		return "", err
	}
	var out strings.Builder
	for {
		l, err := t.r.ReadString('\n')
		if err != nil {
			return out.String(), err
		}
		for {
			out.WriteString(l)
			sm := testLiteral.FindStringSubmatch(l)
			if sm == nil {
				break
			}
			n, _ := strconv.Atoi(sm[1])
			if _, err := io.CopyN(&out, t.r, int64(n)); err != nil {
				return out.String(), err
			}
			if l, err = t.r.ReadString('\n'); err != nil {
				return out.String(), err
			}
		}
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				return out.String(), fmt.Errorf("%s: %s", line, strings.TrimSpace(l))
			}
			return out.String(), nil
		}
	}
}

func (t *testClient) must(tb testing.TB, line string) string {
	tb.Helper()
	out, err := t.cmd(line)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// benchServer is a served store of n messages and a selected session.
func benchServer(b *testing.B, n int) *testClient {
	st, err := sqlite.Open(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	fillStore(b, st, n)
	c := dialTest(b, testServer(b, st))
	c.must(b, "SELECT INBOX")
	return c
}

// BenchmarkServerFetchMeta drives a real server socket: UID FETCH 1:*
// (FLAGS ENVELOPE BODYSTRUCTURE) over a 2,000-message INBOX.
func BenchmarkServerFetchMeta(b *testing.B) {
	c := benchServer(b, 2000)
	b.ReportAllocs()
	for b.Loop() {
		c.must(b, "UID FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "ns/msg")
}

// BenchmarkServerFetchBody: UID FETCH 1:* BODY.PEEK[] over 2,000 messages.
func BenchmarkServerFetchBody(b *testing.B) {
	c := benchServer(b, 2000)
	b.ReportAllocs()
	for b.Loop() {
		c.must(b, "UID FETCH 1:* BODY.PEEK[]")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/2000, "ns/msg")
}

// BenchmarkServerSelect: SELECT INBOX of 2,000 messages.
func BenchmarkServerSelect(b *testing.B) {
	c := benchServer(b, 2000)
	b.ReportAllocs()
	for b.Loop() {
		c.must(b, "SELECT INBOX")
	}
}
