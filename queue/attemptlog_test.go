package queue

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/store"
)

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAttemptLogNamesServerAndReply: each delivery attempt is one line with
// the server it reached (host[IP]:port) and what it answered: the refusal
// of a deferred or failed attempt, the reply to the data of a delivered one
// (which often carries the remote's queue ID).
func TestAttemptLogNamesServerAndReply(t *testing.T) {
	f := startFakeSMTP(t)
	f.rcptReply = func(to string, attempt int) error {
		switch {
		case strings.HasPrefix(to, "gone@"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
		case attempt == 1:
			return tempFail
		}
		return nil
	}
	s := openStore(t)
	queueReply(t, s, 1, "carla@example.com", "gone@example.com")
	logs := &logBuffer{}
	w := &Worker{Store: s, Transport: &RelayTransport{Hostname: "sg.test", Relay: f.Addr}, Keys: testKeys,
		Retry: []time.Duration{100 * time.Millisecond}, GiveUpAfter: time.Hour, Log: slog.New(slog.NewTextHandler(logs, nil))}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitState(t, s, map[string]store.RecipientState{"carla@example.com": store.RecipientDelivered, "gone@example.com": store.RecipientFailed})

	remote := "remote=127.0.0.1[127.0.0.1]:" + f.Addr[strings.LastIndexByte(f.Addr, ':')+1:]
	lines := strings.Split(logs.String(), "\n")
	find := func(msg string, parts ...string) string {
		for _, l := range lines {
			ok := strings.Contains(l, "msg="+msg+" ") || strings.Contains(l, `msg="`+msg+`" `)
			for _, p := range parts {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				return l
			}
		}
		return ""
	}
	if find("delivery deferred", "recipient=carla@example.com", remote, `reply="451 4.3.0 Try again later"`, "attempt=1") == "" {
		t.Errorf("no line for the deferred attempt:\n%s", logs.String())
	}
	if l := find("delivered", "recipient=carla@example.com", remote, `reply="250 `, "attempt=2"); l == "" {
		t.Errorf("no line for the delivery with the server's reply:\n%s", logs.String())
	}
	if find("delivery failed for good", "recipient=gone@example.com", remote, `reply="550 5.1.1 No such user"`) == "" {
		t.Errorf("no line for the failed attempt:\n%s", logs.String())
	}
	st, err := w.Stats(t.Context())
	if err != nil || st.Delivered != 1 || st.Deferred != 1 || st.Failed != 1 {
		t.Errorf("Stats = %+v, %v; want 1 delivered, 1 deferred, 1 failed", st, err)
	}
}
