// Package storetest is the store contract's conformance suite (DESIGN.md
// §12): what every engine (store/sqlite, store/postgres) must do, checked
// through the interfaces of package store only: no SQL, no engine's own
// methods.
//
// It owns the engine-neutral checks: messages and threading, the
// Message-ID index, conversations, events and updates, the shared folders'
// views, UIDs, UIDVALIDITY, \Seen and mod-sequences, private mailboxes,
// subscriptions and agent keywords, the outbound queue, automatic
// acknowledgements, follower notices (and those of a conversation's
// opening), the collision hold, side conversations and merging (issue 17),
// round-robin triage, incremental
// reads (store.IncrementalEntries, when the engine has it) and the
// properties several writers must keep (DESIGN.md §13 "UIDs across
// nodes"): UIDs ascend and an incremental read misses nothing a concurrent
// writer committed, a Message-ID is stored once under concurrent
// duplicates, the participant cap holds under concurrent messages, and a
// queued recipient is claimed by one worker only.
//
// An engine uses it from one test:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t testing.TB) store.Store {
//			s, err := myengine.Open(t.Context(), t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// What only an engine can check (its durability, its schema migrations,
// a restart, its batching) stays in the engine's own tests.
//
// It imports store and domain only, never an engine; the property checks
// are exported (Properties) with a small T, so that the suite's own tests
// can run them against deliberately broken engines and see them fail.
package storetest

import (
	"context"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// Opener returns a fresh, empty engine; it closes it when the test ends
// (t.Cleanup).
type Opener func(t testing.TB) store.Store

// T is what a property check needs of a test: *testing.T satisfies it. The
// suite's own tests pass a recorder, to see a check fail on a broken
// engine. Errorf may be called from any goroutine, Fatalf only from the
// check's own.
type T interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Context() context.Context
	TempDir() string
	Cleanup(func())
}

// Property is one property several writers must keep, checked on a fresh
// engine.
type Property struct {
	Name string
	// Incremental: the check needs store.IncrementalEntries; Run skips it
	// on an engine without.
	Incremental bool
	Check       func(t T, s store.Store)
}

// Properties returns the properties several writers must keep (issue 15,
// DESIGN.md §13).
func Properties() []Property {
	return []Property{
		{Name: "IncrementalReadsMissNothing", Incremental: true, Check: CheckIncrementalReads},
		{Name: "MessageIDStoredOnce", Check: CheckMessageIDOnce},
		{Name: "ParticipantCapUnderConcurrency", Check: CheckParticipantCap},
		{Name: "QueueClaimsExclusive", Check: CheckExclusiveClaims},
	}
}

// testCase is one conformance test, run on a fresh engine.
type testCase struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// Run runs every conformance test and property check, each as a subtest
// on a fresh engine from open.
func Run(t *testing.T, open Opener) {
	var cases []testCase
	for _, l := range [][]testCase{messageCases(), outboundCases(), conversationCases(), mailboxCases(), modSeqCases(),
		workspaceCases(), quickActionCases(), queueCases(), autoAckCases(), noticeCases(), triageCases(),
		incrementalCases(), concurrencyCases(), rateCases(), collisionCases(), collisionsCases(), sideCases(), mergeCases(), openFollowerCases(),
		searchCases(), feedCases()} {
		cases = append(cases, l...)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
	for _, p := range Properties() {
		t.Run(p.Name, func(t *testing.T) {
			s := open(t)
			if _, ok := s.(store.IncrementalEntries); p.Incremental && !ok {
				t.Skip("the engine does not implement store.IncrementalEntries")
			}
			p.Check(t, s)
		})
	}
}

// incremental returns the engine's incremental reads, or skips the test.
func incremental(t *testing.T, s store.Store) store.IncrementalEntries {
	t.Helper()
	inc, ok := s.(store.IncrementalEntries)
	if !ok {
		t.Skip("the engine does not implement store.IncrementalEntries")
	}
	return inc
}
