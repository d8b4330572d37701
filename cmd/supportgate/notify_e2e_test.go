package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// cfoFollowsRefunds is a rule that makes the CFO follow refund requests,
// and fastNotifications a [notifications] table that does not keep a test
// waiting.
const (
	cfoFollowsRefunds = `

[[inbox.rule]]
subject = 'refund'
followers = ["cfo@example.test"]
`
	fastNotifications = "[notifications]\nfirst_after = \"1s\"\ninterval = \"1h\"\n"
)

// TestFollowerNotificationAgainstDaemon: on the running daemon, a rule makes
// the CFO follow a refund request; the customer's next mail (sent by swaks)
// reaches the CFO as a notification in the outbox within first_after; the
// CFO's answer to it, sent to its Reply-To, threads into the conversation as
// his message, and he stays out of the customer's Cc.
func TestFollowerNotificationAgainstDaemon(t *testing.T) {
	swaks := needTool(t, "swaks")
	dir := t.TempDir()
	p := freePorts(t)
	cfg := triageConfig(t, dir, p, cfoFollowsRefunds, fastNotifications)
	d := startDaemon(t, dir, p, "-config", cfg)
	send := func(from, to, header, body string) {
		t.Helper()
		out, err := exec.Command(swaks, "--server", d.addr(p.MX), "--from", from, "--to", to,
			"--header", header, "--body", body).CombinedOutput()
		if err != nil {
			t.Fatalf("swaks: %v\n%s", err, out)
		}
	}
	send("kim@customer.example", "support@example.test", "Subject: Refund for order 42", "Where is my refund?")
	send("kim@customer.example", "support@example.test", "Subject: Re: Refund for order 42 [#1]", "Any news?")

	outbox := filepath.Join(dir, "data", "outbox")
	notes := waitOutbox(t, outbox, 1)
	if len(notes) != 1 || !slices.Equal(notes[0].RcptTo, []string{"cfo@example.test"}) {
		t.Fatalf("outbox: %+v, want one notification to the CFO", notes)
	}
	raw := notes[0].raw
	if !bytes.Contains(raw, []byte("Auto-Submitted: auto-generated")) || !bytes.Contains(raw, []byte("Any news?")) {
		t.Errorf("the notification:\n%s", raw)
	}
	if !strings.HasPrefix(notes[0].MailFrom, "bounces+") {
		t.Errorf("the notification's return path is %q, want our VERP address", notes[0].MailFrom)
	}
	m := regexp.MustCompile(`(?m)^Reply-To: .*<(support\+[^>]+)>`).FindSubmatch(raw)
	if m == nil {
		t.Fatalf("no Reply-To:\n%s", raw)
	}
	send("cfo@example.test", string(m[1]), "Subject: Re: Update", "Refund it today.")

	code, out, errOut := runCLI("", "conversations", "show", "1", "--json", "-config", cfg)
	var c conversationJSON
	if code != 0 || json.Unmarshal([]byte(out), &c) != nil {
		t.Fatalf("conversations show 1 --json: exit %d, %q %q", code, out, errOut)
	}
	var senders []string
	for _, msg := range c.Messages {
		senders = append(senders, msg.Kind+":"+msg.Sender)
	}
	want := []string{"inbound:kim@customer.example", "inbound:kim@customer.example", "notification:support@example.test", "inbound:cfo@example.test"}
	if !slices.Equal(senders, want) {
		t.Errorf("conversation 1 holds %v, want %v", senders, want)
	}
	if slices.Contains(c.Participants, "cfo@example.test") {
		t.Errorf("the CFO became a participant: %v", c.Participants)
	}
}

// TestFollowerNotificationSurvivesKills: the daemon is killed with SIGKILL
// again and again around the moment a notification falls due; the CFO gets
// it exactly once: it is queued in the transaction that records him told,
// and the outbox names each file by its queue entry.
func TestFollowerNotificationSurvivesKills(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	cfg := triageConfig(t, dir, p, cfoFollowsRefunds, fastNotifications)
	d := startDaemon(t, dir, p, "-config", cfg)
	for i, body := range []string{"Where is my refund?", "Any news?"} {
		msg := fmt.Sprintf("From: kim@customer.example\r\nTo: support@example.test\r\nSubject: Refund [#1]\r\nMessage-ID: <nk-%d@customer.example>\r\n\r\n%s\r\n", i, body)
		if err := sendMail(d.addr(p.MX), nil, "kim@customer.example", []string{"support@example.test"}, msg); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		time.Sleep(time.Duration(50+rng.IntN(300)) * time.Millisecond)
		d.kill()
		d = startDaemon(t, dir, p, "-config", cfg)
	}
	outbox := filepath.Join(dir, "data", "outbox")
	waitOutbox(t, outbox, 1)
	time.Sleep(2 * time.Second) // a second notification would be here by now
	envs := waitOutbox(t, outbox, 1)
	if len(envs) != 1 || !slices.Equal(envs[0].RcptTo, []string{"cfo@example.test"}) || !bytes.Contains(envs[0].raw, []byte("Any news?")) {
		t.Fatalf("after the kills the outbox holds %d envelopes, want one notification to the CFO: %+v", len(envs), envs)
	}
}
