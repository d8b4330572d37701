package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/sqlite"
)

// hookStore wraps a real store to observe the worker and to make
// MarkDelivered fail, as a crash right before it would.
type hookStore struct {
	store.Store
	passes    chan struct{} // receives (without blocking) at each PendingDeliveries
	failMarks atomic.Int32  // how many MarkDelivered calls still fail
}

var errInjected = errors.New("injected MarkDelivered failure")

func (h *hookStore) PendingDeliveries(ctx context.Context, limit int) ([]store.Delivery, error) {
	if h.passes != nil {
		select {
		case h.passes <- struct{}{}:
		default:
		}
	}
	return h.Store.PendingDeliveries(ctx, limit)
}

func (h *hookStore) MarkDelivered(ctx context.Context, id int64) error {
	if h.failMarks.Add(-1) >= 0 {
		return errInjected
	}
	return h.Store.MarkDelivered(ctx, id)
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func worker(s store.Store, dir string) *DirectoryWorker {
	return &DirectoryWorker{Store: s, Directory: dir, Log: slog.New(slog.DiscardHandler)}
}

// rawMessage has bytes a careless writer would change: NUL, bare CR and LF,
// 8-bit non-UTF-8 and no final newline.
func rawMessage(n int) []byte {
	return []byte(fmt.Sprintf("From: agent@support.example.com\r\nSubject: reply %d\r\n\r\nnul:\x00 cr:\r lf:\n 8bit:\xff\xfe\x80\xc3(", n))
}

// queueReply records a reply in a new conversation and returns its message number.
func queueReply(t testing.TB, s store.Store, n int, rcpts ...string) store.Outbound {
	t.Helper()
	return queueReplyWith(t, s, n, func(msg int64) string { return fmt.Sprintf("bounces+%d@support.example.com", msg) }, rcpts...)
}

// queueReplyWith is queueReply with the return path of its choice, given
// the message number.
func queueReplyWith(t testing.TB, s store.Store, n int, mailFrom func(msg int64) string, rcpts ...string) store.Outbound {
	t.Helper()
	ctx := context.Background()
	conv, err := s.NextConversationNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.NextMessageNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := store.Outbound{
		Message:         msg,
		Conversation:    conv,
		NewConversation: &store.NewConversation{Inbox: "support@example.com", Owner: rcpts[0], Subject: "Hello"},
		Kind:            store.KindReply,
		Agent:           "agent@support.example.com",
		MessageIDHeader: fmt.Sprintf("m%d@support.example.com", msg),
		Raw:             rawMessage(n),
		Received:        time.Now().Add(time.Duration(n) * time.Millisecond),
		MailFrom:        mailFrom(msg),
		Recipients:      rcpts,
	}
	if err := s.AddOutbound(ctx, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func pending(t *testing.T, s store.Store) []store.Delivery {
	t.Helper()
	d, err := s.PendingDeliveries(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// filesFor returns the names the worker writes for deliveries, sorted.
func filesFor(ds []store.Delivery) []string {
	var names []string
	for _, d := range ds {
		id := strconv.FormatInt(d.ID, 10)
		names = append(names, id+".eml", id+".json")
	}
	slices.Sort(names)
	return names
}

// checkWritten checks that dir holds exactly the files of ds, with the exact
// bytes and envelope of each.
func checkWritten(t *testing.T, dir string, ds []store.Delivery) {
	t.Helper()
	if got, want := listDir(t, dir), filesFor(ds); !slices.Equal(got, want) {
		t.Fatalf("directory holds %q, want %q", got, want)
	}
	for _, d := range ds {
		base := filepath.Join(dir, strconv.FormatInt(d.ID, 10))
		eml, err := os.ReadFile(base + ".eml")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(eml, d.Raw) {
			t.Errorf("%d.eml = %q, want %q", d.ID, eml, d.Raw)
		}
		data, err := os.ReadFile(base + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(data, &fields); err != nil {
			t.Fatalf("%d.json is not a JSON object: %v: %q", d.ID, err, data)
		}
		var keys []string
		for k := range fields {
			keys = append(keys, k)
		}
		if slices.Sort(keys); !slices.Equal(keys, []string{"mail_from", "rcpt_to"}) {
			t.Errorf("%d.json has keys %q, want mail_from and rcpt_to", d.ID, keys)
		}
		var env struct {
			MailFrom string   `json:"mail_from"`
			RcptTo   []string `json:"rcpt_to"`
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&env); err != nil {
			t.Fatalf("%d.json: %v", d.ID, err)
		}
		if env.MailFrom != d.MailFrom || !slices.Equal(env.RcptTo, d.Recipients) {
			t.Errorf("%d.json = %+v, want mail_from %q rcpt_to %q", d.ID, env, d.MailFrom, d.Recipients)
		}
	}
}

func TestPassWritesEachMessageOnce(t *testing.T) {
	s := openStore(t)
	dir := t.TempDir()
	ctx := t.Context()
	one := queueReply(t, s, 1, "customer@example.com")
	two := queueReply(t, s, 2, "b@example.com", "a@example.com", "c@example.com")
	three := queueReply(t, s, 3, "customer@example.com")
	// A note is never written.
	noteConv, err := s.NextConversationNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	noteMsg, err := s.NextMessageNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddOutbound(ctx, store.Outbound{
		Message:         noteMsg,
		Conversation:    noteConv,
		NewConversation: &store.NewConversation{Inbox: "support@example.com", Owner: "x@example.com", Subject: "n"},
		Kind:            store.KindNote,
		Agent:           "agent@support.example.com",
		Raw:             []byte("internal"),
		Received:        time.UnixMilli(1),
		Recipients:      []string{"x@example.com"}, // ignored for a note
	}); err != nil {
		t.Fatal(err)
	}

	queued := pending(t, s)
	if len(queued) != 3 {
		t.Fatalf("queued %d messages, want 3", len(queued))
	}
	// The deliveries carry what was recorded.
	for i, out := range []store.Outbound{one, two, three} {
		d := queued[i]
		if d.Message != out.Message || d.MailFrom != out.MailFrom || !bytes.Equal(d.Raw, out.Raw) ||
			!slices.Equal(slices.Sorted(slices.Values(d.Recipients)), slices.Sorted(slices.Values(out.Recipients))) {
			t.Fatalf("delivery %d = %+v, want message %d", i, d, out.Message)
		}
	}

	w := worker(s, dir)
	if err := w.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	checkWritten(t, dir, queued)
	if left := pending(t, s); len(left) != 0 {
		t.Fatalf("after Pass, still queued: %+v", left)
	}

	// A second pass writes nothing: the files are the very same ones.
	before := map[string]os.FileInfo{}
	for _, name := range listDir(t, dir) {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		before[name] = fi
	}
	if err := w.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	checkWritten(t, dir, queued)
	for name, fi := range before {
		after, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(fi, after) || !after.ModTime().Equal(fi.ModTime()) {
			t.Errorf("the second pass rewrote %s", name)
		}
	}

	// A new reply is written by the next pass, beside the others.
	four := queueReply(t, s, 4, "later@example.com")
	more := pending(t, s)
	if len(more) != 1 || more[0].Message != four.Message {
		t.Fatalf("queued %+v, want message %d", more, four.Message)
	}
	if err := w.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	checkWritten(t, dir, append(queued, more...))
}

func TestPassTakesMoreThanOneBatch(t *testing.T) {
	s := openStore(t)
	dir := t.TempDir()
	n := batchSize + 3
	for i := range n {
		queueReply(t, s, i, fmt.Sprintf("customer%d@example.com", i))
	}
	queued := pending(t, s)
	if len(queued) != n {
		t.Fatalf("queued %d, want %d", len(queued), n)
	}
	if err := worker(s, dir).Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkWritten(t, dir, queued)
	if left := pending(t, s); len(left) != 0 {
		t.Fatalf("after Pass, %d still queued", len(left))
	}
}

func TestRunWakesOnChange(t *testing.T) {
	s := openStore(t)
	h := &hookStore{Store: s, passes: make(chan struct{}, 1)}
	dir := filepath.Join(t.TempDir(), "outbox") // Run creates it
	w := worker(h, dir)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	// Wait for the first (empty) pass, so that what follows is written
	// because Run woke on the change, well before its 30 s retry timer.
	select {
	case <-h.passes:
	case <-time.After(10 * time.Second):
		t.Fatal("Run made no pass")
	}
	out := queueReply(t, s, 1, "customer@example.com")
	queued := pending(t, s)
	if len(queued) != 1 {
		t.Fatalf("queued %+v", queued)
	}
	id := strconv.FormatInt(queued[0].ID, 10)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, id+".json")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s.json did not appear within 10 s of the change", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
	eml, err := os.ReadFile(filepath.Join(dir, id+".eml"))
	if err != nil || !bytes.Equal(eml, out.Raw) {
		t.Fatalf("%s.eml = %q, %v; want %q", id, eml, err, out.Raw)
	}
	// MarkDelivered follows the .json; wait for it too.
	for len(pending(t, s)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the message was written but stays queued")
		}
		time.Sleep(10 * time.Millisecond)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	checkWritten(t, dir, queued)
}

func TestCrashBeforeMarkDeliveredRewritesSameFiles(t *testing.T) {
	s := openStore(t)
	h := &hookStore{Store: s}
	dir := t.TempDir()
	ctx := t.Context()
	queueReply(t, s, 1, "customer@example.com", "cc@example.com")
	queued := pending(t, s)

	// The files are written, then the process "dies" before MarkDelivered.
	h.failMarks.Store(1)
	w := worker(h, dir)
	if err := w.Pass(ctx); !errors.Is(err, errInjected) {
		t.Fatalf("Pass = %v, want the injected failure", err)
	}
	checkWritten(t, dir, queued)
	if left := pending(t, s); len(left) != 1 {
		t.Fatalf("after the failed mark, queued %+v, want the message still there", left)
	}
	firstEml, _ := os.ReadFile(filepath.Join(dir, strconv.FormatInt(queued[0].ID, 10)+".eml"))
	firstJSON, _ := os.ReadFile(filepath.Join(dir, strconv.FormatInt(queued[0].ID, 10)+".json"))

	// After the restart, the next pass writes the same files again.
	if err := w.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	checkWritten(t, dir, queued)
	eml, _ := os.ReadFile(filepath.Join(dir, strconv.FormatInt(queued[0].ID, 10)+".eml"))
	js, _ := os.ReadFile(filepath.Join(dir, strconv.FormatInt(queued[0].ID, 10)+".json"))
	if !bytes.Equal(eml, firstEml) || !bytes.Equal(js, firstJSON) {
		t.Errorf("the rewrite changed the files: %q %q, were %q %q", eml, js, firstEml, firstJSON)
	}
	if left := pending(t, s); len(left) != 0 {
		t.Fatalf("after the second pass, queued %+v", left)
	}
}

func TestCrashMidWriteIsRepaired(t *testing.T) {
	s := openStore(t)
	dir := t.TempDir()
	queueReply(t, s, 1, "customer@example.com")
	queued := pending(t, s)
	id := strconv.FormatInt(queued[0].ID, 10)
	// A crash while writing: a partial temporary .eml and no .json; or a
	// complete .eml and a partial temporary .json.
	if err := os.WriteFile(filepath.Join(dir, id+".eml.tmp"), queued[0].Raw[:5], 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, id+".json.tmp"), []byte(`{"mail_fr`), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := worker(s, dir).Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkWritten(t, dir, queued) // also: no .tmp left
}

func TestUnwritableDirectory(t *testing.T) {
	s := openStore(t)
	file := filepath.Join(t.TempDir(), "not-a-directory")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	queueReply(t, s, 1, "customer@example.com")
	w := worker(s, filepath.Join(file, "outbox"))
	if err := w.Pass(t.Context()); err == nil {
		t.Fatal("Pass into a path under a regular file succeeded")
	}
	if left := pending(t, s); len(left) != 1 {
		t.Fatalf("after a failed pass, queued %+v, want the message still there", left)
	}
	if err := w.Run(t.Context()); err == nil {
		t.Fatal("Run with an unusable directory returned nil")
	}
	if left := pending(t, s); len(left) != 1 {
		t.Fatalf("after Run failed, queued %+v, want the message still there", left)
	}
}
