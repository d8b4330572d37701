package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/sqlite"
)

// pageCounter is the real store, counting the pages the commands read.
type pageCounter struct {
	*sqlite.Store
	pages *atomic.Int32
}

func (p pageCounter) ListConversations(ctx context.Context, status store.Status, before int64, limit int) ([]store.Conversation, int64, error) {
	p.pages.Add(1)
	return p.Store.ListConversations(ctx, status, before, limit)
}

func (p pageCounter) QueuePage(ctx context.Context, q store.QueuePageQuery) ([]store.QueuedRecipient, error) {
	p.pages.Add(1)
	return p.Store.QueuePage(ctx, q)
}

// fixture is a configuration whose data directory holds a store of
// conversations conversations, each with a reply queued to two recipients.
type fixture struct {
	cfg   string
	pages atomic.Int32
	queue []int64 // queue IDs, by conversation
}

func newFixture(t *testing.T, conversations int) *fixture {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	ctx := context.Background()
	s, err := sqlite.Open(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := &fixture{cfg: filepath.Join(dir, "supportgate.toml")}
	for i := range conversations {
		in, err := s.AddInbound(ctx, store.Inbound{Inbox: "support@example.test", Owner: fmt.Sprintf("c%d@customer.example", i),
			Subject: fmt.Sprintf("Request %d", i), Sender: fmt.Sprintf("c%d@customer.example", i), MessageIDHeader: fmt.Sprintf("r%d@customer.example", i),
			Raw: []byte(fmt.Sprintf("From: c%d@customer.example\r\nSubject: Request %d\r\n\r\nhelp\r\n", i, i)), Received: time.UnixMilli(1_700_000_000_000 + int64(i)*1000)})
		if err != nil {
			t.Fatal(err)
		}
		msg, err := s.NextMessageNumber(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddOutbound(ctx, store.Outbound{Message: msg, Conversation: in.Conversation, Kind: store.KindReply,
			Agent: "alice@example.test", MessageIDHeader: fmt.Sprintf("m%d@example.test", msg), Raw: []byte("Subject: re\r\n\r\nok\r\n"),
			Received: time.Now(), MailFrom: "support@example.test",
			Recipients: []string{fmt.Sprintf("c%d@customer.example", i), fmt.Sprintf("d%d@customer.example", i)}}); err != nil {
			t.Fatal(err)
		}
		rs, err := s.MessageRecipients(ctx, msg)
		if err != nil || len(rs) != 2 {
			t.Fatalf("MessageRecipients = %+v, %v", rs, err)
		}
		f.queue = append(f.queue, rs[0].QueueID)
	}
	toml := strings.Replace(string(config.ExampleTOML()), `data_dir = "./supportgate-data"`, fmt.Sprintf("data_dir = %q", data), 1)
	if err := os.WriteFile(f.cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// run runs a command with lists read two rows at a time.
func (f *fixture) run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	c := &CLI{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Version: "test", page: 2,
		OpenStore: func(ctx context.Context, cfg *config.Config) (Store, error) {
			s, err := sqlite.Open(ctx, cfg.Server.DataDir)
			if err != nil {
				return nil, err
			}
			return pageCounter{Store: s, pages: &f.pages}, nil
		}}
	code = c.Run(args)
	return code, out.String(), errb.String()
}

// TestUnknownFlagsAreRefused: a flag that is only a prefix of a known one
// (the old parsers took --statusx for --status) or unknown is a usage
// error: exit 2, the flag named, the command's usage line.
func TestUnknownFlagsAreRefused(t *testing.T) {
	f := newFixture(t, 1)
	tests := []struct {
		args  []string
		usage string
	}{
		{[]string{"conversations", "list", "--statusx", "open"}, "usage: supportgate conversations"},
		{[]string{"conversations", "list", "--stat=open"}, "usage: supportgate conversations"},
		{[]string{"conversations", "show", "1", "--jsonx"}, "usage: supportgate conversations"},
		{[]string{"queue", "list", "--alll"}, "usage: supportgate queue"},
		{[]string{"queue", "list", "--configx", f.cfg}, "usage: supportgate queue"},
		{[]string{"backup", "--conf", f.cfg, "x"}, "usage: supportgate backup"},
		{[]string{"dns", "--ipx", "192.0.2.1"}, "usage: supportgate dns"},
		{[]string{"dkim-keygen", "--typ", "rsa", "k.pem"}, "usage: supportgate dkim-keygen"},
		{[]string{"check-config", "--configuration", f.cfg}, "usage: supportgate check-config"},
		{[]string{"passwd", "--x"}, "usage: supportgate passwd"},
	}
	for _, tt := range tests {
		code, out, errOut := f.run(append(tt.args, "-config", f.cfg)...)
		flagName := ""
		for _, a := range tt.args {
			if strings.HasPrefix(a, "-") {
				flagName, _, _ = strings.Cut(strings.TrimLeft(a, "-"), "=")
				break
			}
		}
		if code != 2 || out != "" || !strings.Contains(errOut, "flag provided but not defined: -"+flagName) || !strings.Contains(errOut, tt.usage) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2, the flag named and %q", tt.args, code, out, errOut, tt.usage)
		}
	}
	if code, _, errOut := f.run("conversations", "list", "--status", "pending", "-config", f.cfg); code != 2 || !strings.Contains(errOut, "usage:") {
		t.Errorf("--status pending: exit %d, %q", code, errOut)
	}
	if code, _, errOut := f.run("queue", "retry", "x", "-config", f.cfg); code != 2 || !strings.Contains(errOut, `"x" is not a queue ID`) {
		t.Errorf("retry x: exit %d, %q", code, errOut)
	}
	if code, _, errOut := f.run("queue", "frob", "-config", f.cfg); code != 2 || !strings.Contains(errOut, `unknown command "frob"`) {
		t.Errorf("queue frob: exit %d, %q", code, errOut)
	}
}

// TestFlagsAnywhere: flags before or after the positional arguments, with
// one dash or two, with = or a separate value.
func TestFlagsAnywhere(t *testing.T) {
	f := newFixture(t, 3)
	for _, args := range [][]string{
		{"conversations", "show", "2", "--json", "-config", f.cfg},
		{"conversations", "-json", "show", "2", "--config=" + f.cfg},
		{"conversations", "--config", f.cfg, "show", "--json", "2"},
	} {
		code, out, errOut := f.run(args...)
		var c ConversationJSON
		if code != 0 || json.Unmarshal([]byte(out), &c) != nil || c.ID != 2 || len(c.Messages) != 2 {
			t.Errorf("%q: exit %d, %q %q", args, code, out, errOut)
		}
	}
	if code, out, errOut := f.run("conversations", "show", "2", "-config", f.cfg); code != 0 || !strings.HasPrefix(out, "Conversation 2 [open] in support@example.test\n") {
		t.Errorf("show 2: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut := f.run("conversations", "show", "99", "-config", f.cfg); code != 1 || !strings.Contains(errOut, "no conversation 99") {
		t.Errorf("show 99: exit %d, %q", code, errOut)
	}
}

// TestListsPrintEveryPage: with pages of two rows, the lists read the
// store page by page and print every row once, in the store's order.
func TestListsPrintEveryPage(t *testing.T) {
	f := newFixture(t, 7)
	code, out, errOut := f.run("conversations", "list", "--json", "-config", f.cfg)
	var list []ConversationJSON
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("conversations list --json: exit %d, %q %q", code, out, errOut)
	}
	var ids []int64
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	if want := []int64{7, 6, 5, 4, 3, 2, 1}; !slices.Equal(ids, want) {
		t.Errorf("conversations listed %v, want %v", ids, want)
	}
	if n := f.pages.Load(); n != 4 {
		t.Errorf("%d pages read, want 4 (7 rows, 2 a page)", n)
	}

	code, out, _ = f.run("conversations", "list", "-config", f.cfg)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) != 8 || !strings.HasPrefix(lines[0], "ID  STATUS") || !strings.HasPrefix(lines[7], "1 ") {
		t.Errorf("conversations list: exit %d, %d lines\n%s", code, len(lines), out)
	}

	if code, out, _ := f.run("conversations", "list", "--limit", "3", "--json", "-config", f.cfg); code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 3 || list[2].ID != 5 {
		t.Errorf("--limit 3: exit %d, %d conversations", code, len(list))
	}
	if code, out, _ := f.run("conversations", "list", "--status", "closed", "--json", "-config", f.cfg); code != 0 || out != "[]\n" {
		t.Errorf("--status closed: exit %d, %q; want []", code, out)
	}

	// The queue: 14 recipients, one entry dropped, one delivered.
	if code, _, errOut := f.run("queue", "drop", fmt.Sprint(f.queue[0]), "-config", f.cfg); code != 0 {
		t.Fatalf("queue drop: exit %d, %q", code, errOut)
	}
	s, err := sqlite.Open(context.Background(), filepath.Join(filepath.Dir(f.cfg), "data"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered(context.Background(), f.queue[1]); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var rows []QueueRow
	code, out, errOut = f.run("queue", "list", "--json", "-config", f.cfg)
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 12 || rows[0].State != "dropped" || rows[11].ID != f.queue[6] {
		t.Errorf("queue list --json: exit %d, %d rows, %q; want the 12 not delivered", code, len(rows), errOut)
	}
	if code, out, _ := f.run("queue", "list", "--all", "--json", "-config", f.cfg); code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 14 {
		t.Errorf("queue list --all --json: exit %d, %d rows; want 14", code, len(rows))
	}
	code, out, _ = f.run("queue", "list", "-config", f.cfg)
	if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); code != 0 || len(lines) != 13 || !strings.HasPrefix(lines[0], "ID  CONVERSATION") {
		t.Errorf("queue list: exit %d, %d lines\n%s", code, len(lines), out)
	}
}

// TestJSONListIsTheEncodersOutput: a list printed row by row is byte for
// byte what json.Encoder printed for the whole slice before paging.
func TestJSONListIsTheEncodersOutput(t *testing.T) {
	rows := []QueueRow{{ID: 1, Recipient: "a&b@<x>.example", LastError: "550 \"no\""}, {ID: 2, State: "queued"}}
	for n := range len(rows) + 1 {
		var want, got bytes.Buffer
		if err := writeJSON(&want, append([]QueueRow{}, rows[:n]...)); err != nil {
			t.Fatal(err)
		}
		j := &jsonArray{w: &got}
		for _, r := range rows[:n] {
			if err := j.row(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := j.end(); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%d rows: printed\n%s\nwant\n%s", n, got.String(), want.String())
		}
	}
}

// TestQueueRetryAndDrop: the commands' outputs and exit codes, and the
// team's event of a drop.
func TestQueueRetryAndDrop(t *testing.T) {
	f := newFixture(t, 2)
	id := fmt.Sprint(f.queue[1])
	if code, out, errOut := f.run("queue", "drop", id, "-config", f.cfg); code != 0 ||
		out != "queue entry "+id+": c1@customer.example dropped\nqueue entry "+id+": d1@customer.example dropped\n" {
		t.Errorf("drop: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut := f.run("queue", "drop", id, "-config", f.cfg); code != 1 || !strings.Contains(errOut, "no queued recipient") {
		t.Errorf("drop again: exit %d, %q", code, errOut)
	}
	if code, out, errOut := f.run("queue", "retry", id, "-config", f.cfg); code != 0 || out != "queue entry "+id+": 2 recipient(s) due now\n" {
		t.Errorf("retry: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut := f.run("queue", "retry", "999", "-config", f.cfg); code != 1 || !strings.Contains(errOut, "no recipient left to deliver") {
		t.Errorf("retry 999: exit %d, %q", code, errOut)
	}
	s, err := sqlite.Open(context.Background(), filepath.Join(filepath.Dir(f.cfg), "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs, err := s.Events(context.Background(), 2)
	if err != nil || len(evs) != 2 || evs[0].Type != "delivery-dropped" || !strings.Contains(evs[1].Detail, "Recipient: d1@customer.example\nAttempts: 0") {
		t.Errorf("events %+v, %v; want a delivery-dropped per recipient", evs, err)
	}
}

// TestParse: flags stand anywhere among the positional arguments, and "--"
// ends them.
func TestParse(t *testing.T) {
	fl := (&CLI{Stderr: &bytes.Buffer{}}).flags("t", "usage: t\n")
	x := fl.Int("x", 0, "")
	j := fl.Bool("json", false, "")
	pos, _, ok := parse(fl, []string{"a", "-x", "1", "b", "--json", "--", "-c", "--json"})
	if !ok || *x != 1 || !*j || !slices.Equal(pos, []string{"a", "b", "-c", "--json"}) {
		t.Errorf("parse: ok %v, x %d, json %v, positional %q", ok, *x, *j, pos)
	}
	if _, code, ok := parse(fl, []string{"-h"}); ok || code != 0 {
		t.Errorf("-h: ok %v, code %d; want a usage with exit 0", ok, code)
	}
}
