package store

import (
	"reflect"
	"sync"
	"testing"
)

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestHubWakesOnlyWhatMatches publishes changes that concern some
// subscriptions and checks, without waiting for anything, which channels
// closed and what each subscription holds: one that was not concerned
// holds nothing, and its first wake is for the change that concerns it.
func TestHubWakesOnlyWhatMatches(t *testing.T) {
	h := NewHub()
	subA := h.Subscribe(FolderFilter(agentA, FolderInbox, []string{inboxX}))
	subAY := h.Subscribe(FolderFilter(agentA, FolderInbox, []string{inboxY}))
	subB := h.Subscribe(FolderFilter(agentB, FolderInbox, []string{inboxX, inboxY}))
	sent := h.Subscribe(MailboxFilter(agentA, "Sent"))
	queue := h.Subscribe(Filter{Queue: true})
	all := h.Subscribe(Filter{All: true})
	subs := map[string]*Subscription{"A on X": subA, "A on Y": subAY, "B": subB, "A's Sent": sent, "queue": queue, "all": all}

	newInY := Change{Conversation: 2, Inbox: inboxY, Folders: []Folder{FolderInbox, FolderUnassigned}}
	seenB := Change{Agent: agentB}
	newInX := Change{Conversation: 1, Inbox: inboxX, Folders: []Folder{FolderInbox, FolderUnassigned}}
	flagsX := Change{Conversation: 1, Inbox: inboxX, Folders: []Folder{FolderInbox, FolderUnassigned}, Flags: true}
	seenA := Change{Agent: agentA}
	replyX := Change{Conversation: 1, Inbox: inboxX, Folders: []Folder{FolderInbox}, Flags: true, Queue: true}
	fileSent := Change{Agent: agentA, Mailbox: "Sent"}

	steps := []struct {
		publish []Change
		want    map[string][]Change // the subscriptions woken, with what they hold
	}{
		{[]Change{newInY}, map[string][]Change{"A on Y": {newInY}, "B": {newInY}, "all": {newInY}}},
		{[]Change{seenB}, map[string][]Change{"B": {seenB}, "all": {seenB}}},
		{[]Change{newInX}, map[string][]Change{"A on X": {newInX}, "B": {newInX}, "all": {newInX}}},
		{[]Change{flagsX}, map[string][]Change{"A on X": {flagsX}, "B": {flagsX}, "all": {flagsX}}},
		// Its own \Seen from another session reaches both of A's views.
		{[]Change{seenA}, map[string][]Change{"A on X": {seenA}, "A on Y": {seenA}, "all": {seenA}}},
		// One batch: every subscription gets what concerns it, once.
		{[]Change{replyX, fileSent}, map[string][]Change{"A on X": {replyX}, "B": {replyX}, "queue": {replyX},
			"A's Sent": {fileSent}, "all": {replyX, fileSent}}},
	}
	for i, step := range steps {
		chans := map[string]<-chan struct{}{}
		for name, s := range subs {
			chans[name] = s.Changed()
		}
		h.Publish(step.publish)
		for name, s := range subs {
			want := step.want[name]
			if woken := isClosed(chans[name]); woken != (want != nil) {
				t.Errorf("step %d: %s woken = %v, want %v", i, name, woken, want != nil)
			}
			got, everything := s.Take()
			if everything || !reflect.DeepEqual(got, want) {
				t.Errorf("step %d: %s holds %+v (everything %v), want %+v", i, name, got, everything, want)
			}
		}
	}

	// Everything: every subscription, private and queue included.
	chans := map[string]<-chan struct{}{}
	for name, s := range subs {
		chans[name] = s.Changed()
	}
	h.PublishAll()
	for name, s := range subs {
		if !isClosed(chans[name]) {
			t.Errorf("PublishAll did not wake %s", name)
		}
		if got, everything := s.Take(); !everything || got != nil {
			t.Errorf("after PublishAll %s holds %+v, everything %v", name, got, everything)
		}
	}
}

// TestHubNeverBlocks: a subscription nobody reads does not hold up a
// publisher; its changes are dropped past a bound and it is told to read
// everything again.
func TestHubNeverBlocks(t *testing.T) {
	h := NewHub()
	idle := h.Subscribe(FolderFilter(agentA, FolderInbox, []string{inboxX}))
	idle.Changed() // a waiter that never comes back
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10 * maxPending {
			h.Publish([]Change{{Conversation: int64(i + 1), Inbox: inboxX}})
		}
	}()
	<-done // a blocking Publish would leave the test to its timeout
	if got, everything := idle.Take(); !everything || got != nil {
		t.Fatalf("after %d changes unread: %d held, everything %v; want everything", 10*maxPending, len(got), everything)
	}
	if got, everything := idle.Take(); everything || got != nil {
		t.Fatalf("a second Take: %+v, %v; want nothing", got, everything)
	}
	// It receives changes as before.
	ch := idle.Changed()
	h.Publish([]Change{{Conversation: 1, Inbox: inboxX}})
	if got, _ := idle.Take(); !isClosed(ch) || len(got) != 1 {
		t.Fatalf("after the resync: woken %v, %+v", isClosed(ch), got)
	}
}

// TestHubBroadcast: every waiter on a subscription wakes (the sessions
// sharing an IMAP view).
func TestHubBroadcast(t *testing.T) {
	h := NewHub()
	s := h.Subscribe(FolderFilter(agentA, FolderInbox, []string{inboxX}))
	var ready, woken sync.WaitGroup
	for range 5 {
		ready.Add(1)
		woken.Add(1)
		go func() {
			defer woken.Done()
			ch := s.Changed()
			ready.Done()
			<-ch
		}()
	}
	ready.Wait()
	h.Publish([]Change{{Conversation: 1, Inbox: inboxX}})
	woken.Wait()
}

func TestHubClose(t *testing.T) {
	h := NewHub()
	s := h.Subscribe(FolderFilter(agentA, FolderInbox, []string{inboxX, inboxY}))
	q := h.Subscribe(Filter{Queue: true, Agent: agentB})
	ch := s.Changed()
	s.Close()
	s.Close() // twice is harmless
	q.Close()
	h.Publish([]Change{{Conversation: 1, Inbox: inboxX}, {Agent: agentA}, {Queue: true}, {All: true}})
	if isClosed(ch) {
		t.Fatal("a closed subscription was woken")
	}
	if got, everything := s.Take(); got != nil || everything {
		t.Fatalf("a closed subscription holds %+v, %v", got, everything)
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if len(h.subs) != 1 || len(h.shared) != 0 || len(h.queue) != 0 || len(h.inboxes) != 0 || len(h.agents) != 0 {
		t.Fatalf("left indexed: %d subscriptions (want Changes' own), %d shared, %d queue, inboxes %v, agents %v",
			len(h.subs), len(h.shared), len(h.queue), h.inboxes, h.agents)
	}
}

// TestHubChanges: the bare signal wakes at every change.
func TestHubChanges(t *testing.T) {
	h := NewHub()
	for _, c := range []Change{{Agent: agentB}, {Queue: true}, {Conversation: 3, Inbox: inboxY}} {
		ch := h.Changes()
		h.Publish([]Change{c})
		if !isClosed(ch) {
			t.Errorf("%+v did not close Changes", c)
		}
	}
	ch := h.Changes()
	h.Publish([]Change{{}})
	if isClosed(ch) {
		t.Error("a change with no part closed Changes")
	}
}

// TestHubConcurrent subscribes, publishes, takes and closes at once (run
// with -race).
func TestHubConcurrent(t *testing.T) {
	h := NewHub()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				in := []string{inboxX, inboxY}[i%2]
				s := h.Subscribe(FolderFilter(agentA, FolderInbox, []string{in}))
				h.Publish([]Change{{Conversation: int64(g*1000 + i), Inbox: in}, {Agent: agentA}})
				if got, all := s.Take(); len(got) == 0 && !all { // all: the others' changes overflowed it
					t.Errorf("a subscription missed the changes published after it")
				}
				s.Close()
			}
		})
	}
	wg.Wait()
}
