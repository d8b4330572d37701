package sqlite

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store/searchtext"
)

// TestSearchFindsQueuedDocuments checks the queue of SEARCH documents
// (searchpending.go): a stored message is found before the indexer moved
// it and after, by the same keys and only by them; a queue left by a
// process that stopped is emptied by the next one.
func TestSearchFindsQueuedDocuments(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openTest(t, dir)
	s.stopIndexer()
	subjects := []string{"Invoice for March", "Printer on fire", "Invoice for April"}
	ids := make([]int64, len(subjects))
	for i, subj := range subjects {
		in := newInbound(inboxA, fmt.Sprintf("q%d@x", i), i)
		in.Raw = []byte("From: carla@customer.example\r\nSubject: " + subj + "\r\n\r\nHello.\r\n")
		ids[i] = mustInbound(t, s, in).Message
	}
	count := func(table string) int {
		var n int
		if err := s.read.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	search := func(v string) []int64 {
		t.Helper()
		got, found, err := s.SearchCandidates(ctx, []searchtext.Key{{Field: searchtext.Subject, Value: v}})
		if err != nil || !found {
			t.Fatalf("SearchCandidates(%q): %v %v", v, found, err)
		}
		slices.Sort(got)
		return got
	}
	check := func(when string) {
		t.Helper()
		for v, want := range map[string][]int64{
			"invoice": {ids[0], ids[2]}, "april": {ids[2]}, "on fire": {ids[1]}, "refund": nil,
		} {
			if got := search(v); !slices.Equal(got, want) {
				t.Errorf("%s: SUBJECT %q found %v, want %v", when, v, got, want)
			}
		}
	}
	if n := count("message_search_pending"); n != len(subjects) {
		t.Fatalf("%d documents queued, want %d", n, len(subjects))
	}
	check("queued")
	if moved, err := s.indexPending(ctx, 2); err != nil || moved != 2 {
		t.Fatalf("indexPending moved %d: %v", moved, err)
	}
	check("half moved")
	if moved, err := s.indexPending(ctx, indexBatch); err != nil || moved != 1 {
		t.Fatalf("indexPending moved %d: %v", moved, err)
	}
	if n := count("message_search_pending"); n != 0 {
		t.Fatalf("%d documents still queued", n)
	}
	check("moved")

	// Queued and not moved when the process stops: the next one moves them.
	in := newInbound(inboxA, "late@x", 9)
	in.Raw = []byte("From: carla@customer.example\r\nSubject: Invoice for May\r\n\r\nHello.\r\n")
	late := mustInbound(t, s, in).Message
	s.Close()
	s = openTest(t, dir)
	deadline := time.Now().Add(30 * time.Second)
	for count("message_search_pending") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the queue left by the last process was not emptied")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := search("may"); !slices.Equal(got, []int64{late}) {
		t.Errorf("after the restart: SUBJECT may found %v, want [%d]", got, late)
	}
}

// TestIndexerMovesBatches checks that the indexer lets queued documents
// gather (indexLinger) instead of moving each commit's at once: under load
// that was one more write request and one more FTS4 segment in nearly
// every commit of the writer (issue 18). A full batch is moved at once,
// and then what was queued meanwhile (a backlog is moved batch after
// batch); the indexer's first look at the queue, as the store opens, may
// come after the first few messages and move them: at most three moves
// here, where moving at every commit made hundreds.
func TestIndexerMovesBatches(t *testing.T) {
	s := openTest(t, t.TempDir())
	s.indexer.linger.Store(int64(time.Hour)) // only a full batch moves
	for i := range indexBatch + 3 {
		in := newInbound(inboxA, fmt.Sprintf("b%d@x", i), i)
		in.Raw = []byte(fmt.Sprintf("From: carla@customer.example\r\nSubject: Order %d\r\n\r\nHello.\r\n", i))
		mustInbound(t, s, in)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var n int
		if err := s.read.QueryRow(`SELECT COUNT(*) FROM message_search_pending`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n <= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d documents still queued, want at most 3 (one batch of %d moved)", n, indexBatch)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.indexer.moves.Load(); got > 3 {
		t.Errorf("the indexer moved documents in %d transactions, want at most 3", got)
	}
}
