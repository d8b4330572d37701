package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// triageTOML turns the demo inbox round-robin and gives it a rule, as an
// admin would write them (DESIGN.md §7).
const triageTOML = `assign = "round-robin"

[[inbox.rule]]
name = "Billing"
subject = 'invoice|refund'
tags = ["billing"]
assign = "bob@example.test"
followers = ["cfo@example.test"]
`

// triageConfig is the test configuration with inboxTOML's first paragraph
// added to the demo inbox, its rest after the inbox (its [[inbox.rule]]
// tables), and tables at the end of the file.
func triageConfig(t *testing.T, dir string, p ports, inboxTOML, tables string) string {
	t.Helper()
	cfg := testConfig(t, dir, p)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	addr := "address = \"support@example.test\"\n"
	at := strings.Index(doc, "\n# One [[agent]]")
	if !strings.Contains(doc, addr) || at < 0 {
		t.Fatal("the example configuration changed shape")
	}
	first, rule, _ := strings.Cut(inboxTOML, "\n\n")
	doc = doc[:at] + "\n" + rule + doc[at:]
	doc = strings.Replace(doc, addr, addr+first+"\n", 1) + "\n" + tables
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestTriageAgainstDaemon: swaks (a peer we did not write) sends new
// requests to the running daemon; the rule's request is tagged, assigned
// to bob and followed by the CFO, the others go to alice and bob in turn,
// and the turn goes on where it was after a restart.
func TestTriageAgainstDaemon(t *testing.T) {
	swaks := needTool(t, "swaks")
	dir := t.TempDir()
	p := freePorts(t)
	cfg := triageConfig(t, dir, p, triageTOML, "")
	send := func(d *daemon, subject string) {
		t.Helper()
		out, err := exec.Command(swaks, "--server", d.addr(p.MX), "--from", "kim@customer.example",
			"--to", "support@example.test", "--header", "Subject: "+subject, "--body", "Hello from swaks").CombinedOutput()
		if err != nil {
			t.Fatalf("swaks: %v\n%s", err, out)
		}
	}
	d := startDaemon(t, dir, p, "-config", cfg)
	send(d, "Question one")
	send(d, "Refund for order 42")
	send(d, "Question two")
	d.stop()
	d = startDaemon(t, dir, p, "-config", cfg)
	send(d, "Question three")

	code, out, errOut := runCLI("", "conversations", "list", "--json", "-config", cfg)
	var list []conversationJSON
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 4 {
		t.Fatalf("conversations list --json: exit %d, %q %q", code, out, errOut)
	}
	slices.SortFunc(list, func(a, b conversationJSON) int { return int(a.ID - b.ID) })
	var turns []string
	for _, c := range list {
		turns = append(turns, c.Assignee)
	}
	if want := []string{"alice@example.test", "bob@example.test", "bob@example.test", "alice@example.test"}; !slices.Equal(turns, want) {
		t.Errorf("assignees %v, want %v (the rule's bob, and alice, bob, alice in turn across the restart)", turns, want)
	}
	refund := list[1]
	if !slices.Equal(refund.Tags, []string{"billing"}) || !slices.Equal(refund.Followers, []string{"cfo@example.test"}) {
		t.Errorf("the refund request: tags %v, followers %v", refund.Tags, refund.Followers)
	}
	for _, c := range []conversationJSON{list[0], list[2], list[3]} {
		if len(c.Tags) != 0 || len(c.Followers) != 0 {
			t.Errorf("conversation %d (%q) got tags %v, followers %v from a rule it does not match", c.ID, c.Subject, c.Tags, c.Followers)
		}
	}
}

// TestRoundRobinSurvivesKills: each new request is sent while the daemon is
// killed with SIGKILL a random instant later (before, during or after the
// transaction that opens its conversation), then sent again, as a client
// that got no 250 does, until it is accepted. Every request is stored once
// and the turns still go strictly alice, bob, alice...: a turn is taken by
// the transaction that opens the conversation, so a crash cannot take one
// without opening it, and a retried duplicate takes none.
func TestRoundRobinSurvivesKills(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	cfg := triageConfig(t, dir, p, "assign = \"round-robin\"\n", "")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	const n = 12
	accepted := 0 // first tries that got a 250 before the kill
	var took time.Duration
	for i := range n {
		d := startDaemon(t, dir, p, "-config", cfg)
		msg := fmt.Sprintf("From: kim@customer.example\r\nTo: support@example.test\r\nSubject: Request %d\r\n"+
			"Message-ID: <rr-kill-%d@customer.example>\r\n\r\nHello.\r\n", i, i)
		if i == 0 {
			// The first one is sent in peace, to learn how long a send takes
			// here: the kills then fall anywhere within one.
			start := time.Now()
			if err := sendMail(d.addr(p.MX), nil, "kim@customer.example", []string{"support@example.test"}, msg); err != nil {
				t.Fatal(err)
			}
			took = time.Since(start)
			d.stop()
			continue
		}
		done := make(chan error, 1)
		go func() {
			done <- sendMail(d.addr(p.MX), nil, "kim@customer.example", []string{"support@example.test"}, msg)
		}()
		time.Sleep(time.Duration(rng.Int64N(int64(took) * 2)))
		d.kill()
		if err := <-done; err == nil { // accepted or not, the client sends again
			accepted++
		}
		d = startDaemon(t, dir, p, "-config", cfg)
		if err := sendMail(d.addr(p.MX), nil, "kim@customer.example", []string{"support@example.test"}, msg); err != nil {
			t.Fatalf("request %d after the restart: %v", i, err)
		}
		d.stop()
	}
	t.Logf("a send takes %v; %d of %d first tries got their 250 before the kill", took, accepted, n-1)
	code, out, errOut := runCLI("", "conversations", "list", "--json", "-config", cfg)
	var list []conversationJSON
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != n {
		t.Fatalf("conversations list --json: exit %d, %d conversations (want %d), %q", code, len(list), n, errOut)
	}
	slices.SortFunc(list, func(a, b conversationJSON) int { return int(a.ID - b.ID) })
	for i, c := range list {
		want := []string{"alice@example.test", "bob@example.test"}[i%2]
		if c.Assignee != want {
			t.Errorf("conversation %d (%q) is assigned to %q, want %q: a turn was lost or taken twice", c.ID, c.Subject, c.Assignee, want)
		}
		if c.Subject != fmt.Sprintf("Request %d", i) {
			t.Errorf("conversation %d is %q, want Request %d: a request stored twice or lost", c.ID, c.Subject, i)
		}
	}
}
