package main

// /metrics and the log of the real daemon (issue 14, DESIGN.md §16): the
// counters move with the mail, and the JSON log answers "did the mail from
// carla@ arrive?".

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// series is one sample of a scrape: its name, its labels and its value.
type series struct {
	name   string
	labels map[string]string
	value  float64
}

// parseScrape reads the Prometheus text format, enough for these tests:
// one sample per line, label values without escaped quotes.
func parseScrape(t *testing.T, body string) []series {
	t.Helper()
	var out []series
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			t.Fatalf("not a sample line: %q", line)
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		s := series{name: line[:sp], labels: map[string]string{}, value: v}
		if i := strings.IndexByte(s.name, '{'); i >= 0 {
			for _, kv := range strings.Split(strings.TrimSuffix(s.name[i+1:], "}"), ",") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("label %q in %q", kv, line)
				}
				s.labels[k] = strings.Trim(v, `"`)
			}
			s.name = s.name[:i]
		}
		out = append(out, s)
	}
	return out
}

// scrape fetches /metrics of the daemon listening on addr.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics answered %s:\n%s", resp.Status, body)
	}
	return string(body)
}

// sample returns the value of the series name with exactly labels (pairs
// "k", "v"), and whether the scrape holds it.
func sample(all []series, name string, labels ...string) (float64, bool) {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, s := range all {
		if s.name != name || len(s.labels) != len(want) {
			continue
		}
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

// waitSample scrapes until the series reaches want (a counter moves
// after the SMTP reply: a refused RCPT is counted when the transaction
// ends).
func waitSample(t *testing.T, addr string, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		body := scrape(t, addr)
		v, ok := sample(parseScrape(t, body), name, labels...)
		if ok && v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v is %v (present: %v), want %v; scrape:\n%s", name, labels, v, ok, want, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logLines returns the daemon's log as JSON objects; every line must be one.
func logLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log format = \"json\", but a line is no JSON object (%v): %q", err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// findLine returns the first log line whose msg is msg and whose fields
// hold want (compared as text).
func findLine(lines []map[string]any, msg string, want map[string]string) map[string]any {
next:
	for _, l := range lines {
		if l["msg"] != msg {
			continue
		}
		for k, v := range want {
			if fmt.Sprint(l[k]) != v {
				continue next
			}
		}
		return l
	}
	return nil
}

// TestMetricsAndLog: /metrics serves every series of DESIGN.md §16 from the
// start; an inbound message, refusals at RCPT (unknown recipient, relay
// attempt), a failed IMAP login, an open IMAP session and an agent's reply
// move them; the log, in JSON, has one line per inbound message with its
// envelope and Message-ID, one per refusal with the reply code and why, and
// one per delivery.
func TestMetricsAndLog(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	cfg := testConfig(t, dir, p)
	patchConfig(t, cfg, "# [log]\n", "[log]\nformat = \"json\"\nlevel = \"info\"\n")
	d := startDaemon(t, dir, p, "-config", cfg)
	web := d.addr(p.HTTP)

	// Every series exists before anything happened. startDaemon's probe of
	// the IMAP port was a connection: wait until the daemon saw it close.
	waitSample(t, web, 0, "supportgate_imap_sessions")
	first := parseScrape(t, scrape(t, web))
	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"supportgate_smtp_messages_total", []string{"service", "mx", "result", "accepted"}},
		{"supportgate_smtp_messages_total", []string{"service", "mx", "result", "refused"}},
		{"supportgate_smtp_messages_total", []string{"service", "mx", "result", "deferred"}},
		{"supportgate_smtp_messages_total", []string{"service", "submission", "result", "accepted"}},
		{"supportgate_deliveries_total", []string{"result", "delivered"}},
		{"supportgate_deliveries_total", []string{"result", "deferred"}},
		{"supportgate_deliveries_total", []string{"result", "failed"}},
		{"supportgate_queue_recipients", []string{"state", "queued"}},
		{"supportgate_queue_recipients", []string{"state", "delivered"}},
		{"supportgate_imap_sessions", nil},
		{"supportgate_auth_failures_total", []string{"service", "imap"}},
		{"supportgate_auth_failures_total", []string{"service", "submission"}},
		{"supportgate_conversations", []string{"status", "open"}},
		{"supportgate_conversations", []string{"status", "closed"}},
		{"supportgate_conversations", []string{"status", "spam"}},
	} {
		if v, ok := sample(first, c.name, c.labels...); !ok || v != 0 {
			t.Errorf("at start %s%v is %v (present: %v), want 0", c.name, c.labels, v, ok)
		}
	}
	for _, name := range []string{"supportgate_store_commit_seconds_count", "supportgate_data_dir_available_bytes",
		"supportgate_data_dir_size_bytes", "go_goroutines", "process_resident_memory_bytes"} {
		found := false
		for _, s := range first {
			found = found || s.name == name
		}
		if !found {
			t.Errorf("the scrape has no %s", name)
		}
	}

	// An inbound message.
	msg := "From: Carla <carla@customer.example>\r\nTo: support@example.test\r\nSubject: Invoice missing\r\n" +
		"Message-ID: <metrics-1@customer.example>\r\n\r\nWhere is my invoice?\r\n"
	if err := sendMail(d.addr(p.MX), nil, "carla@customer.example", []string{"support@example.test"}, msg); err != nil {
		t.Fatalf("MX: %v", err)
	}
	waitSample(t, web, 1, "supportgate_smtp_messages_total", "service", "mx", "result", "accepted")
	waitSample(t, web, 1, "supportgate_conversations", "status", "open")
	if v, _ := sample(parseScrape(t, scrape(t, web)), "supportgate_store_commit_seconds_count"); v < 1 {
		t.Errorf("supportgate_store_commit_seconds_count is %v after a stored message", v)
	}

	// Refusals at RCPT: an unknown support address, then a relay attempt.
	for i, rcpt := range []string{"nobody@example.test", "dave@elsewhere.example"} {
		err := sendMail(d.addr(p.MX), nil, "carla@customer.example", []string{rcpt}, msg)
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 550 {
			t.Fatalf("RCPT %s: %v, want 550", rcpt, err)
		}
		waitSample(t, web, float64(i+1), "supportgate_smtp_messages_total", "service", "mx", "result", "refused")
	}

	// A wrong IMAP password, while another session is open.
	c, err := imapclient.DialInsecure(d.addr(p.IMAP), nil)
	if err != nil {
		t.Fatal(err)
	}
	waitSample(t, web, 1, "supportgate_imap_sessions")
	if err := c.Login("alice@example.test", "wrong").Wait(); err == nil {
		t.Fatal("LOGIN with a wrong password succeeded")
	}
	waitSample(t, web, 1, "supportgate_auth_failures_total", "service", "imap")
	c.Close()
	waitSample(t, web, 0, "supportgate_imap_sessions")

	// An agent writes to a customer: submitted, queued, delivered (to the
	// outbox directory of the test configuration).
	out := "From: alice@example.test\r\nTo: Carla <carla@customer.example>\r\nSubject: Your invoice\r\n" +
		"Message-ID: <metrics-2@client.example>\r\n\r\nHere it is.\r\n"
	if err := sendMail(d.addr(p.Submission), sasl.NewPlainClient("", "alice@example.test", "demo-alice"),
		"alice@example.test", []string{"carla@customer.example"}, out); err != nil {
		t.Fatalf("submission: %v", err)
	}
	waitSample(t, web, 1, "supportgate_smtp_messages_total", "service", "submission", "result", "accepted")
	waitSample(t, web, 1, "supportgate_deliveries_total", "result", "delivered")
	waitSample(t, web, 1, "supportgate_queue_recipients", "state", "delivered")
	waitSample(t, web, 0, "supportgate_queue_recipients", "state", "queued")
	waitSample(t, web, 2, "supportgate_conversations", "status", "open")

	// The log: JSON lines that answer "did the mail from carla@ arrive?".
	lines := logLines(t, d.log.String())
	if l := findLine(lines, "inbound message stored", map[string]string{"from": "carla@customer.example",
		"rcpt": "support@example.test", "message_id": "metrics-1@customer.example", "result": "accepted", "service": "mx"}); l == nil {
		t.Error("no inbound line with the envelope, the Message-ID and the result")
	} else if l["conversation"] == nil || l["conversation"] == float64(0) {
		t.Errorf("the inbound line names no conversation: %v", l)
	}
	for rcpt, why := range map[string]string{"nobody@example.test": "unknown recipient", "dave@elsewhere.example": "relay attempt"} {
		l := findLine(lines, "RCPT refused", map[string]string{"from": "carla@customer.example", "rcpt": rcpt,
			"code": "550", "dsn": "5.1.1", "result": "refused"})
		if l == nil || !strings.HasPrefix(fmt.Sprint(l["why"]), why) {
			t.Errorf("refusal of %s: line %v, want why %q", rcpt, l, why)
		}
	}
	if findLine(lines, "submission recorded", map[string]string{"agent": "alice@example.test",
		"rcpt": "carla@customer.example", "message_id": "metrics-2@client.example", "result": "accepted"}) == nil {
		t.Error("no line for the submitted message")
	}
	if findLine(lines, "outbound message written", map[string]string{"rcpt": "carla@customer.example"}) == nil {
		t.Error("no line for the delivery")
	}

	// What Prometheus itself would do (curl is a CI peer).
	t.Run("curl", func(t *testing.T) {
		curl := needTool(t, "curl")
		out, err := exec.Command(curl, "-sS", "--fail", "-H", "Accept: text/plain", "http://"+web+"/metrics").CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v\n%s", err, out)
		}
		for _, want := range []string{
			"# TYPE supportgate_smtp_messages_total counter",
			`supportgate_smtp_messages_total{result="refused",service="mx"} 2`,
			"# TYPE supportgate_store_commit_seconds histogram",
			"# TYPE supportgate_imap_sessions gauge",
			"# HELP supportgate_queue_recipients ",
		} {
			if !strings.Contains(string(out), want) {
				t.Errorf("curl's scrape has no %q", want)
			}
		}
	})
}
