package queue

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/threading"
)

// eventStore is the store under test; eventsOf reads the team's events
// it committed (the worker writes them with the attempt's outcome).
type eventStore struct {
	store.Store
}

func (e *eventStore) eventsOf(t testing.TB, typ string) []store.Event {
	t.Helper()
	var out []store.Event
	ctx := context.Background()
	for before := int64(0); ; {
		convs, next, err := e.ListConversations(ctx, "", before, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range convs {
			evs, err := e.Events(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				if ev.Type == typ {
					out = append(out, ev)
				}
			}
		}
		if next == 0 {
			return out
		}
		before = next
	}
}

var testKeys = threading.NewKeys([]byte(strings.Repeat("s", 32)))

// runWorker runs a worker on s through tr until the test ends.
func runWorker(t *testing.T, s store.Store, tr Transport, retry time.Duration, giveUp time.Duration) (*Worker, context.CancelFunc, <-chan error) {
	t.Helper()
	w := &Worker{Store: s, Transport: tr, Keys: testKeys, Retry: []time.Duration{retry}, GiveUpAfter: giveUp,
		Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return w, cancel, done
}

// waitState waits until every recipient of the store's queue is out of the
// queued state and returns them.
func waitState(t *testing.T, s store.Store, want map[string]store.RecipientState) []store.QueuedRecipient {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		rs, err := s.QueueRecipients(context.Background(), 0, false)
		if err != nil {
			t.Fatal(err)
		}
		ok := len(rs) == len(want)
		for _, r := range rs {
			ok = ok && want[r.Recipient] == r.State
		}
		if ok {
			return rs
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue = %+v, want states %v", rs, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRelay451IsRetriedAndDeliveredOnce(t *testing.T) {
	f := startFakeSMTP(t)
	f.rcptReply = func(to string, attempt int) error {
		if attempt == 1 {
			return tempFail
		}
		return nil
	}
	es := &eventStore{Store: openStore(t)}
	out := queueReply(t, es, 1, "customer@example.com")
	w, _, _ := runWorker(t, es, &RelayTransport{Hostname: "sg.test", Relay: f.Addr}, 200*time.Millisecond, time.Hour)
	rs := waitState(t, es, map[string]store.RecipientState{"customer@example.com": store.RecipientDelivered})
	time.Sleep(300 * time.Millisecond) // a second delivery would come now
	got := f.received()
	if len(got) != 1 || got[0].To != "customer@example.com" || !bytes.HasPrefix(got[0].Data, out.Raw[:bytes.Index(out.Raw, []byte("nul:"))]) {
		t.Fatalf("relay received %+v, want the message once", got)
	}
	if rs[0].Attempts != 2 {
		t.Errorf("attempts = %d, want 2", rs[0].Attempts)
	}
	// The return path is the recipient's VERP address.
	local, domain, _ := strings.Cut(got[0].From, "@")
	msg, n, ok := testKeys.ParseBounceToken(strings.TrimPrefix(local, "bounces+"))
	if domain != "support.example.com" || !ok || msg != out.Message || n != 1 {
		t.Errorf("MAIL FROM %q, want bounces+<token of message %d, recipient 1>@support.example.com", got[0].From, out.Message)
	}
	delayed := es.eventsOf(t, "delivery-delayed")
	if len(delayed) != 1 || !strings.Contains(delayed[0].Text, "customer@example.com") || !strings.Contains(delayed[0].Detail, "451 4.3.0 Try again later") {
		t.Errorf("delay events %+v, want one naming the recipient and the answer", delayed)
	}
	st, err := w.Stats(t.Context())
	if err != nil || st.Delivered != 1 || st.Deferred != 1 || st.Failed != 0 || st.Queued != 0 {
		t.Errorf("Stats = %+v, %v", st, err)
	}
}

func TestRelay550FailsThatRecipientAndTellsTheTeam(t *testing.T) {
	f := startFakeSMTP(t)
	f.rcptReply = func(to string, _ int) error {
		if to == "gone@example.com" {
			return noSuchUser
		}
		return nil
	}
	es := &eventStore{Store: openStore(t)}
	out := queueReply(t, es, 1, "a@example.com", "gone@example.com", "z@example.com")
	runWorker(t, es, &RelayTransport{Hostname: "sg.test", Relay: f.Addr}, time.Hour, time.Hour)
	rs := waitState(t, es, map[string]store.RecipientState{"a@example.com": store.RecipientDelivered,
		"gone@example.com": store.RecipientFailed, "z@example.com": store.RecipientDelivered})
	got := f.received()
	if len(got) != 2 || got[0].Conn != got[1].Conn {
		t.Errorf("received %+v, want a@ and z@ over one connection (RSET after the refusal)", got)
	}
	froms := map[string]bool{}
	for _, g := range got {
		froms[g.From] = true
	}
	if len(froms) != 2 {
		t.Errorf("return paths %v: want one per recipient", froms)
	}
	failed := es.eventsOf(t, "delivery-failed")
	if len(failed) != 1 || failed[0].Conversation != out.Conversation || !strings.Contains(failed[0].Text, "gone@example.com") ||
		!strings.Contains(failed[0].Detail, "550 5.1.1 No such user here") {
		t.Fatalf("failure events %+v, want one naming gone@example.com and the answer", failed)
	}
	for _, r := range rs {
		if r.Recipient == "gone@example.com" && !strings.Contains(r.LastError, "550 5.1.1") {
			t.Errorf("last error %q", r.LastError)
		}
	}
	if d := es.eventsOf(t, "delivery-delayed"); len(d) != 0 {
		t.Errorf("delay events %+v for a final refusal", d)
	}
}

func TestGiveUpAfterEndsTheRetries(t *testing.T) {
	f := startFakeSMTP(t)
	f.rcptReply = func(string, int) error { return tempFail }
	es := &eventStore{Store: openStore(t)}
	queueReply(t, es, 1, "slow@example.com")
	runWorker(t, es, &RelayTransport{Hostname: "sg.test", Relay: f.Addr}, 50*time.Millisecond, 400*time.Millisecond)
	rs := waitState(t, es, map[string]store.RecipientState{"slow@example.com": store.RecipientFailed})
	if rs[0].Attempts < 2 || !strings.Contains(rs[0].LastError, "gave up") {
		t.Errorf("recipient %+v, want several attempts and a give-up", rs[0])
	}
	if d, fl := es.eventsOf(t, "delivery-delayed"), es.eventsOf(t, "delivery-failed"); len(d) != 1 || len(fl) != 1 {
		t.Errorf("events: %d delayed, %d failed; want 1 and 1", len(d), len(fl))
	}
}

func TestRelayAuthWithCredentialsFile(t *testing.T) {
	f := startFakeSMTP(t)
	f.authUser = "sg-relay"
	creds := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(creds, []byte("sg-relay:se:cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openStore(t)
	queueReply(t, s, 1, "customer@example.com")
	runWorker(t, s, &RelayTransport{Hostname: "sg.test", Relay: f.Addr, CredentialsFile: creds}, time.Hour, time.Hour)
	waitState(t, s, map[string]store.RecipientState{"customer@example.com": store.RecipientDelivered})
	if len(f.authed) == 0 {
		t.Error("the relay saw no AUTH")
	}
}

func TestMXTriesEachHostInOrder(t *testing.T) {
	f := startFakeSMTP(t)
	_, port, _ := net.SplitHostPort(f.Addr)
	var looked []string
	var mu sync.Mutex
	tr := &MXTransport{Hostname: "sg.test", Port: port, LookupMX: func(_ context.Context, domain string) ([]*net.MX, error) {
		mu.Lock()
		looked = append(looked, domain)
		mu.Unlock()
		switch domain {
		case "nomail.example":
			return []*net.MX{{Host: ".", Pref: 0}}, nil
		}
		// The first host refuses connections (nothing listens on 127.0.0.2).
		return []*net.MX{{Host: "127.0.0.2.", Pref: 10}, {Host: "127.0.0.1.", Pref: 20}}, nil
	}}
	es := &eventStore{Store: openStore(t)}
	queueReply(t, es, 1, "a@customer.example", "x@nomail.example")
	runWorker(t, es, tr, time.Hour, time.Hour)
	waitState(t, es, map[string]store.RecipientState{"a@customer.example": store.RecipientDelivered, "x@nomail.example": store.RecipientFailed})
	if got := f.received(); len(got) != 1 || got[0].To != "a@customer.example" {
		t.Errorf("received %+v", got)
	}
	if fl := es.eventsOf(t, "delivery-failed"); len(fl) != 1 || !strings.Contains(fl[0].Detail, "null MX") {
		t.Errorf("failure events %+v, want the null MX named", fl)
	}
}

func TestShutdownLetsInFlightFinishWithinTheGrace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hold  time.Duration
		grace time.Duration
		want  store.RecipientState
	}{
		{"finishes", 300 * time.Millisecond, 10 * time.Second, store.RecipientDelivered},
		{"cut", 30 * time.Second, 300 * time.Millisecond, store.RecipientQueued},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakeSMTP(t)
			started := make(chan struct{}, 1)
			f.rcptReply = func(string, int) error {
				started <- struct{}{}
				time.Sleep(tc.hold)
				return nil
			}
			s := openStore(t)
			queueReply(t, s, 1, "customer@example.com")
			w := &Worker{Store: s, Transport: &RelayTransport{Hostname: "sg.test", Relay: f.Addr}, Keys: testKeys,
				Retry: []time.Duration{time.Hour}, GiveUpAfter: 24 * time.Hour, ShutdownGrace: tc.grace, Log: slog.New(slog.DiscardHandler)}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			<-started
			stopAt := time.Now()
			cancel()
			select {
			case <-done:
			case <-time.After(tc.grace + 5*time.Second):
				t.Fatal("Run did not return within the grace")
			}
			if took := time.Since(stopAt); took > tc.grace+2*time.Second {
				t.Errorf("Run took %v after the stop", took)
			}
			rs, err := s.QueueRecipients(context.Background(), 0, false)
			if err != nil || len(rs) != 1 || rs[0].State != tc.want {
				t.Fatalf("queue %+v, %v; want %s", rs, err, tc.want)
			}
			if tc.want == store.RecipientQueued && rs[0].NextAttempt.After(time.Now()) {
				t.Errorf("a cut attempt is due at %v, want now", rs[0].NextAttempt)
			}
		})
	}
}

func TestClaimedRecipientIsNotSentTwice(t *testing.T) {
	s := openStore(t)
	queueReply(t, s, 1, "customer@example.com")
	ctx := t.Context()
	now := time.Now()
	rs, err := s.DueRecipients(ctx, now, 10)
	if err != nil || len(rs) != 1 {
		t.Fatal(rs, err)
	}
	ok1, err1 := s.BeginAttempt(ctx, rs[0].Key(), now, now.Add(time.Minute))
	ok2, err2 := s.BeginAttempt(ctx, rs[0].Key(), now, now.Add(time.Minute))
	if !ok1 || ok2 || err1 != nil || err2 != nil {
		t.Fatalf("two claims: %v %v, %v %v; want only the first", ok1, err1, ok2, err2)
	}
	if due, _ := s.DueRecipients(ctx, now.Add(30*time.Second), 10); len(due) != 0 {
		t.Errorf("a claimed recipient is due again before its retry time: %+v", due)
	}
	_ = strconv.Itoa
	_ = smtp.NoEnhancedCode
}
