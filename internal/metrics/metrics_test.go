package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/supportgate/supportgate/queue"
	"github.com/supportgate/supportgate/store"
)

type fakeStore struct {
	queue map[store.RecipientState]int64
	convs map[store.Status]int64
	err   error
}

func (f *fakeStore) QueueCounts(context.Context) (map[store.RecipientState]int64, error) {
	return f.queue, f.err
}

func (f *fakeStore) ConversationCounts(context.Context) (map[store.Status]int64, error) {
	return f.convs, f.err
}

type fakeQueue struct{ s queue.Stats }

func (f fakeQueue) Stats(context.Context) (queue.Stats, error) { return f.s, nil }

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func get(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics answered %d:\n%s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// TestSeries: the series of DESIGN.md §16 with the values of the counts,
// the store and the queue, every label value from the start.
func TestSeries(t *testing.T) {
	st := &fakeStore{queue: map[store.RecipientState]int64{store.RecipientQueued: 3, store.RecipientFailed: 1},
		convs: map[store.Status]int64{store.StatusOpen: 7}}
	m := New(Options{Store: st, Queue: fakeQueue{queue.Stats{Delivered: 5, Deferred: 2, Failed: 1}}, DataDir: t.TempDir()})
	m.SMTPMessage(MX, Accepted)
	m.SMTPMessage(MX, Accepted)
	m.SMTPMessage(Submission, Refused)
	m.AuthFailure(IMAP)
	closed := m.IMAPSessionOpened()
	m.IMAPSessionOpened()
	closed()
	m.ObserveCommit(3 * time.Millisecond)
	body := get(t, m)
	for _, want := range []string{
		`supportgate_smtp_messages_total{result="accepted",service="mx"} 2`,
		`supportgate_smtp_messages_total{result="deferred",service="mx"} 0`,
		`supportgate_smtp_messages_total{result="refused",service="submission"} 1`,
		`supportgate_auth_failures_total{service="imap"} 1`,
		`supportgate_auth_failures_total{service="submission"} 0`,
		"supportgate_imap_sessions 1",
		`supportgate_queue_recipients{state="queued"} 3`,
		`supportgate_queue_recipients{state="failed"} 1`,
		`supportgate_queue_recipients{state="delivered"} 0`,
		`supportgate_queue_recipients{state="dropped"} 0`,
		`supportgate_conversations{status="open"} 7`,
		`supportgate_conversations{status="closed"} 0`,
		`supportgate_conversations{status="spam"} 0`,
		`supportgate_deliveries_total{result="delivered"} 5`,
		`supportgate_deliveries_total{result="deferred"} 2`,
		`supportgate_deliveries_total{result="failed"} 1`,
		`supportgate_store_commit_seconds_bucket{le="0.005"} 1`,
		"supportgate_store_commit_seconds_count 1",
		"# TYPE supportgate_deliveries_total counter",
		"# TYPE supportgate_queue_recipients gauge",
		"go_goroutines ",
		"process_start_time_seconds ",
		"# TYPE supportgate_data_dir_available_bytes gauge",
		"supportgate_data_dir_size_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in\n%s", want, body)
		}
	}
	if strings.Contains(body, "supportgate_data_dir_available_bytes 0\n") || strings.Contains(body, "supportgate_data_dir_size_bytes 0\n") {
		t.Errorf("the data directory's file system is served as empty:\n%s", body)
	}
}

// TestStoreFailure: a store that cannot be read leaves its series out of
// the scrape and logs why; the rest is served, and the error's text is
// not.
func TestStoreFailure(t *testing.T) {
	logs := &lockedBuffer{}
	m := New(Options{Store: &fakeStore{err: errors.New("sqlite: disk I/O error at /var/lib/supportgate")},
		Log: slog.New(slog.NewTextHandler(logs, nil))})
	body := get(t, m)
	if strings.Contains(body, "supportgate_queue_recipients{") || strings.Contains(body, "supportgate_conversations{") {
		t.Errorf("series of an unreadable store served:\n%s", body)
	}
	if strings.Contains(body, "disk I/O") {
		t.Errorf("the store's error reached the scrape:\n%s", body)
	}
	if !strings.Contains(body, "supportgate_smtp_messages_total") {
		t.Errorf("the counters are not served when the store fails:\n%s", body)
	}
	if !strings.Contains(logs.String(), "disk I/O error") {
		t.Errorf("the failure is not logged:\n%s", logs.String())
	}
}

// TestNil: a nil *Metrics counts nothing and does not panic.
func TestNil(t *testing.T) {
	var m *Metrics
	m.SMTPMessage(MX, Accepted)
	m.AuthFailure(IMAP)
	m.IMAPSessionOpened()()
	m.ObserveCommit(time.Second)
}

// TestRegistriesAreSeparate: two servers in one process count apart.
func TestRegistriesAreSeparate(t *testing.T) {
	a, b := New(Options{}), New(Options{})
	a.SMTPMessage(MX, Refused)
	if body := get(t, b); !strings.Contains(body, `supportgate_smtp_messages_total{result="refused",service="mx"} 0`) {
		t.Errorf("a count of one registry shows in another:\n%s", body)
	}
}
