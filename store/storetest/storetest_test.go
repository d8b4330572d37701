package storetest_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/sqlite"
	"github.com/supportgate/supportgate/store/storetest"
)

// recorder is a storetest.T that records failures instead of failing the
// test: a check run against a broken engine must fail, and the test says
// whether it did. Fatalf ends the check's goroutine, as testing.T's does.
type recorder struct {
	tb       testing.TB
	mu       sync.Mutex
	failures []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Logf(format string, args ...any) { r.tb.Logf(format, args...) }
func (r *recorder) Context() context.Context        { return r.tb.Context() }
func (r *recorder) TempDir() string                 { return r.tb.TempDir() }
func (r *recorder) Cleanup(f func())                { r.tb.Cleanup(f) }

// check runs a property check on s in a goroutine of its own (Fatalf
// ends it) and returns the failures it recorded.
func check(t *testing.T, p storetest.Property, s store.Store) []string {
	t.Helper()
	r := &recorder{tb: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Check(r, s)
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.failures)
}

func openSQLite(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func property(t *testing.T, name string) storetest.Property {
	t.Helper()
	for _, p := range storetest.Properties() {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no property %q", name)
	return storetest.Property{}
}

// claimsEverything says every claim succeeded: two workers attempt the
// same recipient.
type claimsEverything struct{ store.Store }

func (c claimsEverything) BeginAttempt(ctx context.Context, r store.RecipientKey, now, retryAt time.Time) (bool, error) {
	_, err := c.Store.BeginAttempt(ctx, r, now, retryAt)
	return err == nil, err
}

func (c claimsEverything) BeginAttempts(ctx context.Context, claims []store.Claim, now time.Time) ([]bool, error) {
	got, err := c.Store.BeginAttempts(ctx, claims, now)
	for i := range got {
		got[i] = true
	}
	return got, err
}

// forgetsMessageIDs stores every message without its Message-ID, so that
// no duplicate is found.
type forgetsMessageIDs struct{ store.Store }

func (f forgetsMessageIDs) AddInbound(ctx context.Context, in store.Inbound) (store.InboundResult, error) {
	in.MessageIDHeader = ""
	return f.Store.AddInbound(ctx, in)
}

// ignoresTheCap drops the participant cap: a check outside the storing
// transaction, seen from inside, is none.
type ignoresTheCap struct{ store.Store }

func (i ignoresTheCap) AddInbound(ctx context.Context, in store.Inbound) (store.InboundResult, error) {
	in.Cap = store.ParticipantCap{}
	return i.Store.AddInbound(ctx, in)
}

func (i ignoresTheCap) AddOutbound(ctx context.Context, out store.Outbound) error {
	out.Cap = store.ParticipantCap{}
	return i.Store.AddOutbound(ctx, out)
}

// dropsNewEntries loses the last new entry of every incremental read that
// has new entries, and moves the cursor past it: what a reader reading
// above its last UID sees when a lower UID commits after a higher one.
type dropsNewEntries struct{ *sqlite.Store }

func (d dropsNewEntries) EntriesSince(ctx context.Context, view store.MailboxView, cur store.FolderCursor) ([]store.MailboxEntry, uint32, store.FolderCursor, bool, error) {
	es, next, c, appended, err := d.Store.EntriesSince(ctx, view, cur)
	if appended && len(es) > 0 {
		es = es[:len(es)-1]
	}
	return es, next, c, appended, err
}

func (d dropsNewEntries) EntryChanges(ctx context.Context, view store.MailboxView, cur store.FolderCursor) (store.FolderChanges, error) {
	c, err := d.Store.EntryChanges(ctx, view, cur)
	if !c.Full && len(c.Entries) > 0 {
		c.Entries = c.Entries[:len(c.Entries)-1]
	}
	return c, err
}

// reordersEntries returns the entries of every read of two or more
// newest first.
type reordersEntries struct{ *sqlite.Store }

func (r reordersEntries) EntriesSince(ctx context.Context, view store.MailboxView, cur store.FolderCursor) ([]store.MailboxEntry, uint32, store.FolderCursor, bool, error) {
	es, next, c, appended, err := r.Store.EntriesSince(ctx, view, cur)
	slices.Reverse(es)
	return es, next, c, appended, err
}

func (r reordersEntries) EntryChanges(ctx context.Context, view store.MailboxView, cur store.FolderCursor) (store.FolderChanges, error) {
	c, err := r.Store.EntryChanges(ctx, view, cur)
	slices.Reverse(c.Entries)
	return c, err
}

// TestPropertiesCatchBrokenEngines: each property check fails on an engine
// broken in the way it guards against, and passes on SQLite as it is.
func TestPropertiesCatchBrokenEngines(t *testing.T) {
	for _, tc := range []struct {
		name     string
		property string
		wrap     func(*sqlite.Store) store.Store
	}{
		{"claims everything", "QueueClaimsExclusive", func(s *sqlite.Store) store.Store { return claimsEverything{s} }},
		{"stores duplicates", "MessageIDStoredOnce", func(s *sqlite.Store) store.Store { return forgetsMessageIDs{s} }},
		{"ignores the participant cap", "ParticipantCapUnderConcurrency", func(s *sqlite.Store) store.Store { return ignoresTheCap{s} }},
		{"drops new entries", "IncrementalReadsMissNothing", func(s *sqlite.Store) store.Store { return dropsNewEntries{s} }},
		{"reorders entries", "IncrementalReadsMissNothing", func(s *sqlite.Store) store.Store { return reordersEntries{s} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failures := check(t, property(t, tc.property), tc.wrap(openSQLite(t)))
			if len(failures) == 0 {
				t.Fatalf("%s passed on an engine that %s", tc.property, tc.name)
			}
			t.Logf("%s failed, as it must (%d failures), first: %s", tc.property, len(failures), failures[0])
		})
	}
	for _, p := range storetest.Properties() {
		t.Run("sqlite/"+p.Name, func(t *testing.T) {
			if failures := check(t, p, openSQLite(t)); len(failures) != 0 {
				t.Fatalf("%s failed on SQLite through the recorder: %q", p.Name, failures)
			}
		})
	}
}

// TestRecorderSeesFatal: a Fatalf ends the check there, and is recorded.
func TestRecorderSeesFatal(t *testing.T) {
	reached := false
	failures := check(t, storetest.Property{Check: func(t storetest.T, _ store.Store) {
		t.Fatalf("stop")
		reached = true
	}}, nil)
	if reached || !slices.Equal(failures, []string{"stop"}) {
		t.Fatalf("after Fatalf: reached %v, failures %q", reached, failures)
	}
}
