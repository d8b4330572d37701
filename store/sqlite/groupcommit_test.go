package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// holdWriter makes the writer busy in a request that waits for release, so
// that the writes started meanwhile queue up and form the next batch. It
// returns once the writer is inside the request.
func holdWriter(t *testing.T, s *Store) (release func(), wait func()) {
	t.Helper()
	inside, gate, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.inTx(context.Background(), func(tx *sql.Tx) error {
			close(inside)
			<-gate
			return nil
		})
	}()
	<-inside
	return func() { close(gate) }, func() {
		if err := <-done; err != nil {
			t.Errorf("holding request: %v", err)
		}
	}
}

// queued waits until n callers have entered inTx and then a little longer,
// for them to be blocked on the writer's channel.
func queued(started *atomic.Int64, n int64) {
	for started.Load() < n {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
}

func TestGroupCommitBatchesConcurrentWriters(t *testing.T) {
	s := openTest(t, t.TempDir())
	s.stopIndexer() // its batches are commits of their own (searchpending.go)
	release, wait := holdWriter(t, s)
	before := s.w.commits.Load()

	const n = 50
	var started atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			started.Add(1)
			_, err := s.AddInbound(context.Background(), newInbound("support@example.com", fmt.Sprintf("m%d@x", i), i))
			errs <- err
		})
	}
	queued(&started, n)
	release()
	wg.Wait()
	wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := count(t, s, "messages"); got != n {
		t.Fatalf("%d messages stored, want %d", got, n)
	}
	// The holding request's batch, then one batch for all n.
	if commits := s.w.commits.Load() - before; commits != 2 {
		t.Errorf("%d writes took %d commits, want 2 (the held one and one batch)", n, commits)
	}
}

func TestGroupCommitFailingRequestDoesNotAffectOthers(t *testing.T) {
	s := openTest(t, t.TempDir())
	s.stopIndexer() // its batches are commits of their own (searchpending.go)
	ctx := context.Background()
	release, wait := holdWriter(t, s)
	before := s.w.commits.Load()

	insert := func(tx *sql.Tx, name string) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sequences (name, value) VALUES (?, 1)`, name)
		return err
	}
	errBad := errors.New("bad request")
	requests := map[string]func(tx *sql.Tx) error{
		"good1": func(tx *sql.Tx) error { return insert(tx, "good1") },
		// Writes, then fails: its write must be undone.
		"fails": func(tx *sql.Tx) error {
			if err := insert(tx, "fails"); err != nil {
				return err
			}
			return errBad
		},
		// Writes, then breaks a constraint (a duplicate key).
		"constraint": func(tx *sql.Tx) error {
			if err := insert(tx, "constraint"); err != nil {
				return err
			}
			return insert(tx, "constraint")
		},
		"panics": func(tx *sql.Tx) error {
			if err := insert(tx, "panics"); err != nil {
				return err
			}
			panic("boom")
		},
		"good2": func(tx *sql.Tx) error { return insert(tx, "good2") },
	}
	var started atomic.Int64
	var mu sync.Mutex
	results := map[string]any{}
	var wg sync.WaitGroup
	for name, f := range requests {
		wg.Go(func() {
			defer func() {
				if p := recover(); p != nil {
					mu.Lock()
					results[name] = fmt.Sprintf("panic: %v", p)
					mu.Unlock()
				}
			}()
			started.Add(1)
			err := s.inTx(ctx, f)
			mu.Lock()
			results[name] = err
			mu.Unlock()
		})
	}
	queued(&started, int64(len(requests)))
	release()
	wg.Wait()
	wait()

	if results["good1"] != nil || results["good2"] != nil {
		t.Errorf("good requests failed: %v, %v", results["good1"], results["good2"])
	}
	if err, _ := results["fails"].(error); !errors.Is(err, errBad) {
		t.Errorf("failing request returned %v, want its own error", results["fails"])
	}
	if err, _ := results["constraint"].(error); err == nil || !strings.Contains(err.Error(), "UNIQUE") {
		t.Errorf("constraint request returned %v, want the constraint error", results["constraint"])
	}
	if results["panics"] != "panic: boom" {
		t.Errorf("panicking request: %v, want its panic in the caller", results["panics"])
	}
	for name, want := range map[string]int{"good1": 1, "good2": 1, "fails": 0, "constraint": 0, "panics": 0} {
		var n int
		if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM sequences WHERE name = ?`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s: %d rows after commit, want %d", name, n, want)
		}
	}
	if commits := s.w.commits.Load() - before; commits != 2 {
		t.Errorf("%d commits, want 2 (the held one and one batch)", commits)
	}
}

func TestGroupCommitClosedStoreRefusesWrites(t *testing.T) {
	s := openTest(t, t.TempDir())
	s.stopIndexer() // its batches are commits of their own (searchpending.go)
	s.Close()
	if err := s.inTx(context.Background(), func(*sql.Tx) error { return nil }); !errors.Is(err, errClosed) {
		t.Fatalf("write after Close: %v, want errClosed", err)
	}
}

// killChildEnv makes the test binary the writing child of
// TestGroupCommitKill9LosesNothing.
const killChildEnv = "SUPPORTGATE_GROUPCOMMIT_CHILD_DIR"

// TestGroupCommitKill9LosesNothing runs a child process that stores messages
// from 20 goroutines and prints each Message-ID once AddInbound returned
// nil; it is killed with SIGKILL in mid-flood, and every printed message
// must be in the store afterwards.
func TestGroupCommitKill9LosesNothing(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		groupCommitChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("runs a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestGroupCommitKill9LosesNothing$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "stored "); ok {
			acked = append(acked, id)
		}
		if len(acked) == 300 {
			break
		}
	}
	cmd.Process.Kill()
	// Lines printed before the kill took effect are acknowledged too.
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "stored "); ok {
			acked = append(acked, id)
		}
	}
	cmd.Wait()
	if len(acked) < 300 {
		t.Fatalf("the child acknowledged only %d messages", len(acked))
	}
	s := openTest(t, dir)
	s.stopIndexer() // its batches are commits of their own (searchpending.go)
	for _, id := range acked {
		if _, err := s.MessageByHeaderID(context.Background(), id); err != nil {
			t.Errorf("acknowledged %s is not in the store after kill -9: %v", id, err)
		}
	}
	t.Logf("%d acknowledged messages survived the kill", len(acked))
}

func groupCommitChild(dir string) {
	s, err := Open(context.Background(), dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("g%d-%d@kill.test", g, i)
				if _, err := s.AddInbound(context.Background(), newInbound("support@example.com", id, i)); err != nil {
					fmt.Println("error", err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintf(w, "stored %s\n", id)
				w.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
