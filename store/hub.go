package store

import (
	"strings"
	"sync"
)

// Feed is how the store's consumers follow its committed changes
// (DESIGN.md §13): an IMAP view subscribes to its folder, the queue
// worker to the queue. Every engine gives it through a Hub, fed by its own
// commits or, on PostgreSQL, by LISTEN.
type Feed interface {
	// Subscribe registers for the changes f matches, committed from now
	// on; Close the subscription when done.
	Subscribe(f Filter) *Subscription
}

// maxPending is how many changes a subscription keeps for Take; past it,
// Take says "everything" instead.
const maxPending = 256

// Hub fans published changes out to the subscriptions they concern.
//
// Publish never blocks on a subscriber: it records the change in each
// matching subscription (a bounded list, beyond which the subscription is
// told to read everything again) and closes its channel, so a subscriber
// that never reads costs a publisher nothing more. Subscriptions are
// indexed by inbox and agent, so that a change looks at the views of its
// inbox or agent, not at every IMAP session's.
type Hub struct {
	mu      sync.RWMutex
	subs    subSet            // every subscription
	every   subSet            // Filter.All
	queue   subSet            // Filter.Queue
	shared  subSet            // Filter.Inboxes set
	inboxes map[string]subSet // by inbox, lower case
	agents  map[string]subSet // by Filter.Agent, lower case
	// changes is Changes' subscription to everything.
	changes *Subscription
}

type subSet map[*Subscription]struct{}

// NewHub returns a hub ready for use.
func NewHub() *Hub {
	h := &Hub{subs: subSet{}, every: subSet{}, queue: subSet{}, shared: subSet{},
		inboxes: map[string]subSet{}, agents: map[string]subSet{}}
	h.changes = h.Subscribe(Filter{All: true})
	return h
}

// Subscribe implements Feed.
func (h *Hub) Subscribe(f Filter) *Subscription {
	s := &Subscription{hub: h, filter: f}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[s] = struct{}{}
	h.index(s, true)
	return s
}

// index adds s to (or removes it from) the sets its filter reaches.
func (h *Hub) index(s *Subscription, add bool) {
	put := func(set subSet) {
		if add {
			set[s] = struct{}{}
		} else {
			delete(set, s)
		}
	}
	keyed := func(m map[string]subSet, k string) {
		k = strings.ToLower(k)
		set := m[k]
		if set == nil {
			if !add {
				return
			}
			set = subSet{}
			m[k] = set
		}
		put(set)
		if len(set) == 0 {
			delete(m, k)
		}
	}
	f := s.filter
	if f.All {
		put(h.every)
		return // every change reaches it from there
	}
	if f.Queue {
		put(h.queue)
	}
	if len(f.Inboxes) > 0 {
		put(h.shared)
		for _, in := range f.Inboxes {
			keyed(h.inboxes, in)
		}
	}
	if f.Agent != "" {
		keyed(h.agents, f.Agent)
	}
}

// Publish hands committed changes to the subscriptions they concern; a
// change with no part is dropped. It never waits for a subscriber.
func (h *Hub) Publish(changes []Change) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, c := range changes {
		if c.All {
			for s := range h.subs {
				s.deliver(c)
			}
			continue
		}
		shared, agent := c.entries(), c.Agent != ""
		if !shared && !agent && !c.Queue {
			continue
		}
		for s := range h.every {
			s.deliver(c)
		}
		if c.Queue {
			for s := range h.queue {
				s.deliver(c)
			}
		}
		// The subscriptions reached through an inbox or agent, unless
		// the queue's part reached them already.
		reach := func(set subSet) {
			for s := range set {
				if !(c.Queue && s.filter.Queue) && s.filter.Matches(c) {
					s.deliver(c)
				}
			}
		}
		switch {
		case shared && c.Inbox == "":
			reach(h.shared)
		case shared:
			reach(h.inboxes[strings.ToLower(c.Inbox)])
		case agent:
			reach(h.agents[strings.ToLower(c.Agent)])
		}
	}
}

// PublishAll wakes every subscriber to read everything again: after
// anything that may have changed what the hub did not hear of (a restore,
// a LISTEN connection lost and made again).
func (h *Hub) PublishAll() { h.Publish([]Change{{All: true}}) }

// Changes returns a channel closed at the next change of any kind: the
// bare signal, for tests and tools that watch everything.
func (h *Hub) Changes() <-chan struct{} { return h.changes.Changed() }

// Subscription receives the changes its filter matches, from Subscribe
// until Close.
//
// A subscriber that only needs to know that something it shows changed
// takes Changed before it reads, and waits on it; several goroutines may
// wait on one subscription (the sessions sharing an IMAP view). One that
// wants the changes themselves loops: ch := Changed(); Take(); handle
// them; wait on ch.
type Subscription struct {
	hub    *Hub
	filter Filter

	mu       sync.Mutex
	ch       chan struct{} // closed at the next change; nil until asked for
	pending  []Change
	overflow bool // changes were dropped: Take says everything
}

// Filter returns what the subscription selects.
func (s *Subscription) Filter() Filter { return s.filter }

// deliver records c and wakes the waiters.
func (s *Subscription) deliver(c Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.overflow:
	case c.All || len(s.pending) == maxPending:
		s.overflow, s.pending = true, nil
	default:
		s.pending = append(s.pending, c)
	}
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// Changed returns a channel that is closed at the first matching change
// published after the call. After Close it is never closed.
func (s *Subscription) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Take returns the matching changes published since the previous Take (or
// Subscribe), without waiting, and forgets them. all is true when they
// were more than a subscription keeps or included an All change: then
// everything may have changed, and changes is nil.
func (s *Subscription) Take() (changes []Change, all bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changes, all = s.pending, s.overflow
	s.pending, s.overflow = nil, false
	return changes, all
}

// Close ends the subscription: no change reaches it any more.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	h.index(s, false)
}
