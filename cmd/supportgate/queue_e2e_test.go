package main

// The outbound queue end to end (issue 6): the real daemon, a real SMTP
// relay on loopback (go-smtp's server), kill -9 and restarts.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/sqlite"
)

// relayMsg is one transaction the test relay accepted (or, in tried,
// received the data of).
type relayMsg struct {
	From, To string
	Data     []byte
	TLS      bool   // the transaction ran over TLS
	User     string // the AUTH identity, "" without AUTH
}

// testRelay is an SMTP relay on 127.0.0.1 that can be down (listening
// nowhere), refuse recipients, or accept.
type testRelay struct {
	addr string
	mu   sync.Mutex
	srv  *smtp.Server
	got  []relayMsg
	// refuse returns the reply for a RCPT TO, nil to accept.
	refuse func(to string, attempt int) error
	tries  map[string]int
	// refuseData returns the reply after the data of a transaction (its
	// attempt-th), nil to accept; tried keeps every data received.
	refuseData func(to string, attempt int) error
	dataTries  map[string]int
	tried      []relayMsg
	// cert, when set, is offered with STARTTLS; user and pass, when set,
	// are required with AUTH PLAIN (offered only over TLS).
	cert       *tls.Certificate
	user, pass string
}

func newTestRelay(t *testing.T) *testRelay {
	t.Helper()
	// Down until start, on a port no client socket can take meanwhile.
	addr := fmt.Sprintf("127.0.0.1:%d", reservePort(t))
	r := &testRelay{addr: addr, tries: map[string]int{}, dataTries: map[string]int{}}
	t.Cleanup(r.stop)
	return r
}

func (r *testRelay) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &relaySession{r: r, c: c}, nil }))
	srv.Domain = "relay.test"
	if r.cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*r.cert}}
	}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go srv.Serve(l)
}

func (r *testRelay) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		r.srv.Close()
		r.srv = nil
	}
}

func (r *testRelay) received() []relayMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]relayMsg(nil), r.got...)
}

type relaySession struct {
	r        *testRelay
	c        *smtp.Conn
	from     string
	rcpts    []string
	accepted bool
	user     string
}

func (s *relaySession) AuthMechanisms() []string {
	if s.r.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *relaySession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.r.user || password != s.r.pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Bad credentials"}
		}
		s.user = username
		return nil
	}), nil
}

func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	if s.r.user != "" && s.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	s.from = from
	return nil
}
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.mu.Lock()
	s.r.tries[to]++
	n, refuse := s.r.tries[to], s.r.refuse
	s.r.mu.Unlock()
	if refuse != nil {
		if err := refuse(to, n); err != nil {
			return err
		}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *relaySession) Data(rd io.Reader) error {
	data, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	_, secure := s.c.TLSConnectionState()
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	for _, to := range s.rcpts {
		m := relayMsg{From: s.from, To: to, Data: data, TLS: secure, User: s.user}
		s.r.tried = append(s.r.tried, m)
		s.r.dataTries[to]++
		if s.r.refuseData != nil {
			if err := s.r.refuseData(to, s.r.dataTries[to]); err != nil {
				return err
			}
		}
		s.r.got = append(s.r.got, m)
	}
	return nil
}
func (s *relaySession) Reset()        { s.from, s.rcpts = "", nil }
func (s *relaySession) Logout() error { return nil }

// relayConfig is the demo configuration in relay mode towards relay, with
// a one-second retry schedule; extra is appended to [outbound].
func relayConfig(t *testing.T, dir string, p ports, relay, extra string) string {
	t.Helper()
	path := testConfig(t, dir, p)
	patchConfig(t, path, `mode = "directory"`, fmt.Sprintf("mode = \"relay\"\nrelay = %q\nretry = [\"1s\"]\n%s", relay, extra))
	return path
}

// submitReply has alice write to customers, starting a conversation.
func submitReply(t *testing.T, d *daemon, subject string, to ...string) {
	t.Helper()
	msg := "From: alice@example.test\r\nTo: " + strings.Join(to, ", ") + "\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + subject + "@alice.example.test>\r\n\r\nHello from support.\r\n"
	if err := sendMail(d.addr(d.ports.Submission), sasl.NewPlainClient("", "alice@example.test", "demo-alice"),
		"alice@example.test", to, msg); err != nil {
		t.Fatalf("submission: %v", err)
	}
}

// queueList runs `supportgate queue list --all --json`.
func queueList(t *testing.T, dir, cfg string) []queueRow {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run([]string{"queue", "list", "--all", "--json", "-config", cfg}, nil, &out, &errb); code != 0 {
		t.Fatalf("queue list: %d %s", code, errb.String())
	}
	var rows []queueRow
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatalf("queue list --json: %v: %s", err, out.String())
	}
	return rows
}

// waitRows waits until `queue list` shows each recipient in its state.
func waitRows(t *testing.T, dir, cfg string, want map[string]string) []queueRow {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows := queueList(t, dir, cfg)
		ok := len(rows) == len(want)
		for _, r := range rows {
			ok = ok && want[r.Recipient] == r.State
		}
		if ok {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue = %+v, want %v", rows, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// storedEvent is a team-only event message read from a data directory.
type storedEvent struct {
	conversation int64
	raw          string
}

// storedEvents returns the event messages stored in the data directory (read
// with the daemon stopped or running: SQLite's WAL allows readers).
func storedEvents(t *testing.T, dataDir string) []storedEvent {
	t.Helper()
	st, err := sqlite.Open(context.Background(), dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out []storedEvent
	for id := int64(1); id < 200; id++ {
		m, err := st.Message(context.Background(), id)
		if err != nil || m.Kind != store.KindEvent {
			continue
		}
		raw, err := st.MessageRaw(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, storedEvent{m.Conversation, string(raw)})
	}
	return out
}

// events returns the team-only events stored in the data directory.
func events(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	for _, e := range storedEvents(t, dataDir) {
		out = append(out, e.raw)
	}
	return out
}

func TestQueueRelay451ThenDeliveredOnce(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	relay := newTestRelay(t)
	relay.refuse = func(_ string, attempt int) error {
		if attempt == 1 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "Greylisted, come back later"}
		}
		return nil
	}
	relay.start(t)
	cfg := relayConfig(t, dir, p, relay.addr, "")
	d := startDaemon(t, dir, p, "-config", cfg)
	submitReply(t, d, "greylisted", "carla@customer.example")
	rows := waitRows(t, dir, cfg, map[string]string{"carla@customer.example": "delivered"})
	time.Sleep(1500 * time.Millisecond) // past the next retry: a second copy would arrive now
	if got := relay.received(); len(got) != 1 || rows[0].Attempts != 2 {
		t.Fatalf("relay received %d copies after %d attempts, want 1 after 2", len(got), rows[0].Attempts)
	}
	if got := relay.received()[0]; !strings.HasPrefix(got.From, "bounces+") || !strings.HasSuffix(got.From, "@example.test") {
		t.Errorf("MAIL FROM %q, want the VERP return path", got.From)
	}
}

func TestQueueSurvivesKill9WhileRelayIsDown(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	relay := newTestRelay(t) // down
	cfg := relayConfig(t, dir, p, relay.addr, "")
	d := startDaemon(t, dir, p, "-config", cfg)
	submitReply(t, d, "while-down", "carla@customer.example")
	// Wait for a failed attempt, then crash.
	deadline := time.Now().Add(20 * time.Second)
	for rows := queueList(t, dir, cfg); len(rows) != 1 || rows[0].Attempts == 0; rows = queueList(t, dir, cfg) {
		if time.Now().After(deadline) {
			t.Fatalf("no attempt recorded: %+v", rows)
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.kill()
	relay.start(t)
	startDaemon(t, dir, p, "-config", cfg)
	waitRows(t, dir, cfg, map[string]string{"carla@customer.example": "delivered"})
	time.Sleep(1500 * time.Millisecond)
	if got := relay.received(); len(got) != 1 || got[0].To != "carla@customer.example" {
		t.Fatalf("relay received %+v, want the reply exactly once", got)
	}
}

func TestQueue550GivesTheTeamAnEvent(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	relay := newTestRelay(t)
	relay.refuse = func(to string, _ int) error {
		if to == "gone@customer.example" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "Mailbox gone@customer.example does not exist"}
		}
		return nil
	}
	relay.start(t)
	cfg := relayConfig(t, dir, p, relay.addr, "")
	d := startDaemon(t, dir, p, "-config", cfg)
	submitReply(t, d, "refused", "carla@customer.example", "gone@customer.example")
	waitRows(t, dir, cfg, map[string]string{"carla@customer.example": "delivered", "gone@customer.example": "failed"})
	// SQLite (WAL) lets the test read beside the running daemon.
	evs := events(t, filepath.Join(dir, "data"))
	if len(evs) != 1 || !strings.Contains(evs[0], "X-Supportgate-Event: delivery-failed") ||
		!strings.Contains(evs[0], "gone@customer.example") || !strings.Contains(evs[0], "550 5.1.1 Mailbox gone@customer.example does not exist") {
		t.Fatalf("events %q, want one delivery-failed naming gone@customer.example and the answer", evs)
	}
}

// TestQueueDSNToVERPAddress sends a DSN (RFC 3464) for a delivered
// recipient to its VERP return path at the MX.
func TestQueueDSNToVERPAddress(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	relay := newTestRelay(t)
	relay.start(t)
	cfg := relayConfig(t, dir, p, relay.addr, "")
	d := startDaemon(t, dir, p, "-config", cfg)
	submitReply(t, d, "dsn", "carla@customer.example", "old@customer.example")
	waitRows(t, dir, cfg, map[string]string{"carla@customer.example": "delivered", "old@customer.example": "delivered"})
	var returnPath string
	for _, m := range relay.received() {
		if m.To == "old@customer.example" {
			returnPath = m.From
		}
	}
	dsn := "From: MAILER-DAEMON@mx.customer.example\r\nTo: " + returnPath + "\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n" +
		"--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n" +
		"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example\r\n\r\n" +
		"Final-Recipient: rfc822; old@customer.example\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n--B--\r\n"
	if err := sendMail(d.addr(p.MX), nil, "", []string{returnPath}, dsn); err != nil {
		t.Fatalf("the MX refused the DSN: %v", err)
	}
	// A forged token is refused at RCPT.
	if err := sendMail(d.addr(p.MX), nil, "", []string{"bounces+9-1-aaaaaaaaaaaaaaaa@example.test"}, dsn); err == nil {
		t.Error("the MX accepted a bounce to a forged return path")
	}
	waitRows(t, dir, cfg, map[string]string{"carla@customer.example": "delivered", "old@customer.example": "failed"})
	// SQLite (WAL) lets the test read beside the running daemon.
	evs := events(t, filepath.Join(dir, "data"))
	if len(evs) != 1 || !strings.Contains(evs[0], "old@customer.example") || !strings.Contains(evs[0], "5.1.1") ||
		!strings.Contains(evs[0], "delivery-failed") {
		t.Fatalf("events %q, want one delivery-failed naming old@customer.example and 5.1.1", evs)
	}
	// The DSN made no conversation: only the reply's and its event exist.
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Conversation(context.Background(), 2); err == nil {
		t.Error("the DSN created a conversation")
	}
}

// sgQueue runs `supportgate queue ARGS -config cfg` through the built
// binary, as an admin would beside the running daemon.
func sgQueue(t *testing.T, cfg string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(daemonBinary(t), append(append([]string{"queue"}, args...), "-config", cfg)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("supportgate queue %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// eventsOf returns the team-only events of one type, by conversation.
func eventsOf(t *testing.T, dataDir, typ string) map[int64][]string {
	t.Helper()
	out := map[int64][]string{}
	for _, e := range storedEvents(t, dataDir) {
		if strings.Contains(e.raw, "X-Supportgate-Event: "+typ+"\r\n") {
			out[e.conversation] = append(out[e.conversation], e.raw)
		}
	}
	return out
}

// TestQueueCLIListRetryDrop drives `supportgate queue list --json`, `retry
// ID` and `drop ID` through the binary beside the running daemon: with the
// relay down both replies are deferred with the remote error; once it is up,
// a retried entry is delivered exactly once before its (hour-long) retry
// delay, and a dropped one never is, and its conversation gets a team-only
// delivery-dropped event naming the recipient.
func TestQueueCLIListRetryDrop(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	relay := newTestRelay(t) // down
	cfg := testConfig(t, dir, p)
	patchConfig(t, cfg, `mode = "directory"`, fmt.Sprintf("mode = \"relay\"\nrelay = %q\nretry = [\"1h\"]", relay.addr))
	d := startDaemon(t, dir, p, "-config", cfg)
	submitReply(t, d, "to-retry", "carla@customer.example")
	submitReply(t, d, "to-drop", "dave@customer.example")

	var rows []queueRow
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, errs, code := sgQueue(t, cfg, "list", "--json")
		if code != 0 {
			t.Fatalf("queue list --json: exit %d: %s", code, errs)
		}
		rows = nil
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("queue list --json: %v\n%s", err, out)
		}
		// An attempt is counted when it is claimed, before it is made; its
		// outcome (the error, the team told) is written when it ends.
		if len(rows) == 2 && rows[0].LastError != "" && rows[1].LastError != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempt listed: %+v", rows)
		}
		time.Sleep(100 * time.Millisecond)
	}
	byRcpt := map[string]queueRow{}
	for _, r := range rows {
		byRcpt[r.Recipient] = r
		next, err := time.Parse(time.RFC3339, r.NextAttempt)
		if r.State != "queued" || !strings.Contains(r.LastError, "connection refused") || err != nil ||
			next.Before(time.Now().Add(50*time.Minute)) || !r.DelayNotified {
			t.Errorf("listed %+v, want it queued (deferred) with the connection error, due in about an hour, the team told", r)
		}
	}
	retry, drop := byRcpt["carla@customer.example"], byRcpt["dave@customer.example"]
	if retry.ID == 0 || drop.ID == 0 || retry.ID == drop.ID {
		t.Fatalf("listed %+v, want one entry per reply", rows)
	}
	// The table names the entry and its error too.
	if out, _, code := sgQueue(t, cfg, "list"); code != 0 || !strings.Contains(out, "dave@customer.example") ||
		!strings.Contains(out, "connection refused") {
		t.Errorf("queue list: exit %d\n%s", code, out)
	}

	relay.start(t)
	if out, errs, code := sgQueue(t, cfg, "drop", fmt.Sprint(drop.ID)); code != 0 || !strings.Contains(out, "dave@customer.example dropped") {
		t.Fatalf("queue drop: exit %d: %s%s", code, out, errs)
	}
	if _, errs, code := sgQueue(t, cfg, "drop", fmt.Sprint(drop.ID)); code != 1 || !strings.Contains(errs, "no queued recipient") {
		t.Errorf("a second drop: exit %d: %s, want 1 and a sentence", code, errs)
	}
	if out, errs, code := sgQueue(t, cfg, "retry", fmt.Sprint(retry.ID)); code != 0 || !strings.Contains(out, "1 recipient(s) due now") {
		t.Fatalf("queue retry: exit %d: %s%s", code, out, errs)
	}
	waitRows(t, dir, cfg, map[string]string{"carla@customer.example": "delivered", "dave@customer.example": "dropped"})
	// The daemon reads the queue at least every 5s: past that, a dropped
	// entry would have been sent.
	time.Sleep(6 * time.Second)
	got := relay.received()
	if len(got) != 1 || got[0].To != "carla@customer.example" {
		t.Fatalf("relay received %+v, want the retried reply once and nothing for the dropped one", got)
	}
	dropped := eventsOf(t, filepath.Join(dir, "data"), "delivery-dropped")
	if len(dropped) != 1 || len(dropped[drop.Conversation]) != 1 ||
		!strings.Contains(dropped[drop.Conversation][0], "dave@customer.example") ||
		!strings.Contains(dropped[drop.Conversation][0], "connection refused") {
		t.Errorf("delivery-dropped events %v, want one in conversation %d naming dave@customer.example and the last answer", dropped, drop.Conversation)
	}
	if failed := eventsOf(t, filepath.Join(dir, "data"), "delivery-failed"); len(failed) != 0 {
		t.Errorf("delivery-failed events %v, want none", failed)
	}
	if _, errs, code := sgQueue(t, cfg, "retry", "999"); code != 1 || !strings.Contains(errs, "queue entry 999") {
		t.Errorf("retry of an unknown entry: exit %d: %s", code, errs)
	}
}
