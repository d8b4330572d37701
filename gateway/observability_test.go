package gateway

// The log lines and the counters of issue 14: every refusal is one line
// with its reply and why, every message one line with its envelope, and
// each SMTP transaction is counted once by the reply that decided it.

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	dto "github.com/prometheus/client_model/go"

	"github.com/supportgate/supportgate/config"
)

// metricValue returns the value of a counter or gauge of the server's
// registry with exactly these labels (pairs "k", "v"); -1 when absent.
func metricValue(t *testing.T, s *Server, name string, labels ...string) float64 {
	t.Helper()
	families, err := s.metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels)/2 {
				continue
			}
			for _, l := range m.GetLabel() {
				if !hasPair(labels, l) {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

func hasPair(labels []string, l *dto.LabelPair) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		if labels[i] == l.GetName() && labels[i+1] == l.GetValue() {
			return true
		}
	}
	return false
}

// waitMetric waits until the series has the value want: a transaction
// refused at RCPT is counted when it ends, after the client read the reply.
func waitMetric(t *testing.T, s *Server, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := metricValue(t, s, name, labels...)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logLine returns the first line of the text log whose msg is msg and that
// holds every key=value of pairs (values as slog's TextHandler quotes
// them), or "".
func findLogLine(log, msg string, pairs ...string) string {
	quoted := "msg=" + msg
	if strings.ContainsAny(msg, " =\"") {
		quoted = `msg="` + msg + `"`
	}
next:
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, " "+quoted+" ") {
			continue
		}
		for _, p := range pairs {
			if !strings.Contains(l, " "+p+" ") && !strings.HasSuffix(l, " "+p) {
				continue next
			}
		}
		return l
	}
	return ""
}

// TestRefusalsAreLoggedAndCounted: one line per refusal at MAIL, RCPT
// (unknown recipient, relay attempt, blocked sender) and DATA, with the
// reply code and why; one line per accepted message with its envelope and
// Message-ID; the counters of supportgate_smtp_messages_total count each
// transaction once.
func TestRefusalsAreLoggedAndCounted(t *testing.T) {
	logs := &lockedBuffer{}
	ts := newLoggingTestServer(t, nil, func(c *config.Config) {
		c.Policy.BlockedSenders = []string{"mallory@spam.example"}
		c.Limits.MaxMessagesPerSenderPerHour = 1
	}, logs)
	s := ts.srv
	mx := func(result string) []string { return []string{"service", "mx", "result", result} }

	// Accepted, with its line.
	if err := smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"}, customerMail("obs-1@customer.example", "Hello")); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, s, 1, "supportgate_smtp_messages_total", mx("accepted")...)
	if l := findLogLine(logs.String(), "inbound message stored", "service=mx", "from=gina@customer.example",
		"rcpt=support@example.test", "message_id=obs-1@customer.example", "result=accepted", "conversation=1"); l == "" {
		t.Errorf("no line for the accepted message:\n%s", logs.String())
	}
	if n := metricValue(t, s, "supportgate_conversations", "status", "open"); n != 1 {
		t.Errorf("supportgate_conversations{status=open} = %v after a new request, want 1", n)
	}
	if n := metricValue(t, s, "supportgate_store_commit_seconds"); n < 1 {
		t.Errorf("supportgate_store_commit_seconds has %v observations; the test server's store reports none", n)
	}

	// Refused at RCPT: each a line with the reply and why, each
	// transaction counted once, when it ends.
	for i, tc := range []struct {
		from, rcpt, dsn, why string
	}{
		{"kim@customer.example", "nobody@example.test", "5.1.1", `why="unknown recipient: no inbox has this address"`},
		{"kim@customer.example", "dave@elsewhere.example", "5.1.1", `why="relay attempt: the recipient's domain is not a domain of the inboxes"`},
		{"mallory@spam.example", "support@example.test", "5.7.1", `why="blocked sender: policy.blocked_senders or the inbox's blocked_senders lists it"`},
		{"lee@customer.example", "bounces+nonsense@example.test", "5.1.1", `why="a return path (bounces+...) whose token this server did not make"`},
	} {
		err := smtpSend(ts.mx, nil, tc.from, []string{tc.rcpt}, customerMail("obs-refused@customer.example", "Hello"))
		wantSMTPError(t, err, 550, smtp.EnhancedCode{5, int(tc.dsn[2] - '0'), int(tc.dsn[4] - '0')}, "")
		waitMetric(t, s, float64(i+1), "supportgate_smtp_messages_total", mx("refused")...)
		if l := findLogLine(logs.String(), "RCPT refused", "service=mx", "from="+tc.from, "rcpt="+tc.rcpt, "result=refused",
			"code=550", "dsn="+tc.dsn, tc.why); l == "" {
			t.Errorf("no refusal line for RCPT %s from %s:\n%s", tc.rcpt, tc.from, logs.String())
		}
	}

	// One good recipient and one refused: one message, accepted.
	c, err := smtp.Dial(ts.mx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("hank@customer.example", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("nobody@example.test", nil); err == nil {
		t.Fatal("RCPT of an unknown address accepted")
	}
	if err := c.Rcpt("support@example.test", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(customerMail("obs-2@customer.example", "Two")))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	waitMetric(t, s, 2, "supportgate_smtp_messages_total", mx("accepted")...)
	if n := metricValue(t, s, "supportgate_smtp_messages_total", mx("refused")...); n != 4 {
		t.Errorf("a message with one refused recipient counted as refused too (refused = %v)", n)
	}

	// Refused at MAIL (the hourly limit, temporary): deferred.
	err = smtpSend(ts.mx, nil, "gina@customer.example", []string{"support@example.test"}, customerMail("obs-3@customer.example", "Again"))

	wantSMTPError(t, err, 451, smtp.EnhancedCode{4, 7, 1}, "Too many messages")
	waitMetric(t, s, 1, "supportgate_smtp_messages_total", mx("deferred")...)
	if l := findLogLine(logs.String(), "MAIL refused", "service=mx", "from=gina@customer.example", "result=deferred",
		"code=451", "dsn=4.7.1", `why="the sender is at limits.max_messages_per_sender_per_hour"`); l == "" {
		t.Errorf("no line for the refused MAIL:\n%s", logs.String())
	}

	// Refused at DATA: a NUL byte.
	err = smtpSend(ts.mx, nil, "ivy@customer.example", []string{"support@example.test"}, "Subject: x\r\n\r\nnul \x00\r\n")
	wantSMTPError(t, err, 554, smtp.EnhancedCode{5, 6, 0}, "NUL")
	waitMetric(t, s, 5, "supportgate_smtp_messages_total", mx("refused")...)
	if l := findLogLine(logs.String(), "inbound message refused", "service=mx", "from=ivy@customer.example",
		"rcpt=support@example.test", "result=refused", "code=554", "dsn=5.6.0"); l == "" {
		t.Errorf("no line for the message refused at DATA:\n%s", logs.String())
	}

	// A refusal after the checks (blocked by its header's From): the
	// line has the Message-ID.
	err = smtpSend(ts.mx, nil, "jo@customer.example", []string{"support@example.test"},
		"From: mallory@spam.example\r\nTo: support@example.test\r\nSubject: x\r\nMessage-ID: <obs-5@spam.example>\r\n\r\nx\r\n")
	wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 7, 1}, "refused")
	waitMetric(t, s, 6, "supportgate_smtp_messages_total", mx("refused")...)
	if l := findLogLine(logs.String(), "inbound message refused", "from=jo@customer.example", "message_id=obs-5@spam.example",
		"result=refused", "code=550"); l == "" {
		t.Errorf("no line with the Message-ID for the message refused at DATA:\n%s", logs.String())
	}

	// Submission: MAIL without AUTH, then a wrong password.
	sub := func(result string) []string { return []string{"service", "submission", "result", result} }
	err = smtpSend(ts.submission, nil, "alice@example.test", []string{"gina@customer.example"}, "Subject: x\r\n\r\nx\r\n")
	wantSMTPError(t, err, 530, smtp.EnhancedCode{5, 7, 0}, "Authentication is required")
	waitMetric(t, s, 1, "supportgate_smtp_messages_total", sub("refused")...)
	if l := findLogLine(logs.String(), "MAIL refused", "service=submission", "from=alice@example.test", "code=530",
		`why="not logged in"`); l == "" {
		t.Errorf("no line for MAIL without AUTH:\n%s", logs.String())
	}
	err = smtpSend(ts.submission, sasl.NewPlainClient("", "alice@example.test", "wrong"), "alice@example.test",
		[]string{"gina@customer.example"}, "Subject: x\r\n\r\nx\r\n")
	if err == nil {
		t.Fatal("a wrong password was accepted")
	}
	waitMetric(t, s, 1, "supportgate_auth_failures_total", "service", "submission")

	// /metrics serves it all in the text format.
	rec := httptest.NewRecorder()
	s.httpHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`supportgate_smtp_messages_total{result="refused",service="mx"} 6`,
		`supportgate_smtp_messages_total{result="deferred",service="mx"} 1`,
		`supportgate_auth_failures_total{service="submission"} 1`,
		`supportgate_conversations{status="open"} 2`,
		`supportgate_queue_recipients{state="queued"} 0`,
		"supportgate_imap_sessions 0",
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %q:\n%s", want, body)
		}
	}
}
