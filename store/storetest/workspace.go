package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// The agents' own part of the IMAP workspace (DESIGN.md §6): private
// mailboxes, subscriptions, agent keywords, and the FETCH metadata kept
// beside the messages.
func workspaceCases() []testCase {
	return []testCase{
		{"PrivateMailboxes", testPrivateMailboxes},
		{"PrivateFlags", testPrivateFlags},
		{"ChangePrivateFlagsConcurrent", testChangePrivateFlagsConcurrent},
		{"Subscriptions", testSubscriptions},
		{"AgentKeywords", testAgentKeywords},
		{"MetaAtInsert", testMetaAtInsert},
		{"MessagesMetaAndRaw", testMessagesMetaAndRaw},
	}
}

// testPrivateMailboxes: defaults, create with parents, rename with
// children, delete, and a reply filed in its author's Sent.
func testPrivateMailboxes(t *testing.T, s store.Store) {
	ctx := t.Context()
	const me = "agent@example.com"
	res := mustInbound(t, s, newInbound(inboxA, "p1@example.com", 1))
	msg := mustReserve(t, s)
	mustOutbound(t, s, reply(msg, res.Conversation, me, "customer@example.com"))
	_, sent, err := s.PrivateEntries(ctx, me, store.MailboxSent)
	if err != nil || len(sent) != 1 || sent[0].Message != msg || !sent[0].Seen {
		t.Fatalf("Sent: %+v %v", sent, err)
	}
	if err := s.CreateMailbox(ctx, me, "a/b"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMailbox(ctx, me, "a"); !errors.Is(err, store.ErrExists) {
		t.Errorf("creating an existing parent: %v", err)
	}
	mb, uids, err := s.AddPrivate(ctx, me, "a/b", []store.PrivateMessage{{Raw: []byte("x"), Flags: []string{`\Draft`}}})
	if err != nil || len(uids) != 1 || uids[0] != 1 || mb.UIDNext != 2 || mb.UIDValidity == 0 {
		t.Fatalf("AddPrivate: %+v %v %v", mb, uids, err)
	}
	if err := s.RenameMailbox(ctx, me, "a", "z"); err != nil {
		t.Fatal(err)
	}
	if raw, err := s.PrivateRaw(ctx, me, "z/b", 1); err != nil || string(raw) != "x" {
		t.Errorf("after RENAME: %q %v", raw, err)
	}
	if err := s.DeleteMailbox(ctx, me, "z"); !errors.Is(err, store.ErrHasChildren) {
		t.Errorf("deleting a parent: %v", err)
	}
	if err := s.DeleteMailbox(ctx, me, "nowhere"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleting a missing mailbox: %v", err)
	}
	list, err := s.PrivateMailboxes(ctx, me)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range list {
		names = append(names, m.Name)
	}
	if !slices.Equal(names, []string{"Drafts", "Sent", "Trash", "z", "z/b"}) {
		t.Errorf("mailboxes %v", names)
	}
	if list2, _ := s.PrivateMailboxes(ctx, "other@example.com"); len(list2) != 3 {
		t.Errorf("another agent has %d mailboxes, want the 3 defaults", len(list2))
	}
	if err := s.DeleteMailbox(ctx, me, "z/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PrivateRaw(ctx, me, "z/b", 1); err == nil {
		t.Error("a deleted mailbox's message is still there")
	}
}

// testPrivateFlags: a copy of a conversation's message and a message of
// its own, their flags replaced and removed, UIDs never reused.
func testPrivateFlags(t *testing.T, s store.Store) {
	ctx := t.Context()
	res := mustInbound(t, s, newInbound(inboxA, "p1@example.com", 1))
	_, got, err := s.AddPrivate(ctx, agent, store.MailboxTrash, []store.PrivateMessage{
		{Message: res.Message, Flags: []string{`\Seen`, "$label1"}, Received: at(2)},
		{Raw: []byte("own\r\n"), Flags: []string{`\Flagged`}, Received: at(3)},
	})
	if err != nil || len(got) != 2 || got[0] >= got[1] {
		t.Fatalf("AddPrivate = %v, %v", got, err)
	}
	_, entries, err := s.PrivateEntries(ctx, agent, store.MailboxTrash)
	if err != nil || len(entries) != 2 {
		t.Fatalf("PrivateEntries = %+v, %v", entries, err)
	}
	if e := entries[0]; e.Message != res.Message || !e.Seen || !slices.Contains(e.Flags, "$label1") || slices.Contains(e.Flags, `\Seen`) {
		t.Errorf("the copy: %+v", e)
	}
	if e := entries[1]; e.Seen || !slices.Equal(e.Flags, []string{`\Flagged`}) || e.Size != 5 {
		t.Errorf("the message of its own: %+v", e)
	}
	if err := s.SetPrivateFlags(ctx, agent, store.MailboxTrash, map[uint32][]string{got[0]: {"$label2"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemovePrivate(ctx, agent, store.MailboxTrash, []uint32{got[1]}); err != nil {
		t.Fatal(err)
	}
	mb, entries, err := s.PrivateEntries(ctx, agent, store.MailboxTrash)
	if err != nil || len(entries) != 1 || entries[0].Seen || !slices.Equal(entries[0].Flags, []string{"$label2"}) {
		t.Fatalf("after FLAGS and EXPUNGE: %+v, %v", entries, err)
	}
	_, again, err := s.AddPrivate(ctx, agent, store.MailboxTrash, []store.PrivateMessage{{Raw: []byte("again")}})
	if err != nil || len(again) != 1 || again[0] <= got[1] || again[0] < mb.UIDNext {
		t.Errorf("a message filed after an expunge got UID %v (%v), want above %d", again, err, got[1])
	}
}

// testChangePrivateFlagsConcurrent: sessions adding and removing different
// flags of one private message at once all keep their change.
func testChangePrivateFlagsConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, uids, err := s.AddPrivate(ctx, "a", store.MailboxDrafts, []store.PrivateMessage{{Raw: []byte("x\r\n"), Flags: []string{`\Seen`, "gone"}}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := s.ChangePrivateFlags(ctx, "a", store.MailboxDrafts, uids, []string{fmt.Sprintf("k%d", i)}, true); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Go(func() {
		if err := s.ChangePrivateFlags(ctx, "a", store.MailboxDrafts, uids, []string{"GONE", `\seen`}, false); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	_, entries, err := s.PrivateEntries(ctx, "a", store.MailboxDrafts)
	if err != nil || len(entries) != 1 {
		t.Fatal(entries, err)
	}
	flags := slices.Clone(entries[0].Flags)
	slices.Sort(flags)
	if entries[0].Seen || strings.Join(flags, " ") != "k0 k1 k2 k3 k4 k5 k6 k7" {
		t.Errorf("flags = %v, seen %v; want k0…k7, not seen", flags, entries[0].Seen)
	}
	// A message no longer there is skipped.
	if err := s.ChangePrivateFlags(ctx, "a", store.MailboxDrafts, []uint32{99}, []string{"x"}, true); err != nil {
		t.Error(err)
	}
}

// testSubscriptions: an agent's choices are kept per agent, for any name,
// and move with RENAME; DELETE keeps them (RFC 3501 6.3.6).
func testSubscriptions(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.CreateMailbox(ctx, "a", "Projects/Acme"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		on   bool
	}{{"INBOX", false}, {"Projects/Acme", true}, {"Nowhere", true}, {"Nowhere", false}, {"Projects", true}} {
		if err := s.SetSubscribed(ctx, "a", c.name, c.on); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Subscriptions(ctx, "a")
	want := map[string]bool{"INBOX": false, "Projects/Acme": true, "Nowhere": false, "Projects": true}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Subscriptions = %v, %v; want %v", got, err, want)
	}
	if other, _ := s.Subscriptions(ctx, "b"); len(other) != 0 {
		t.Errorf("another agent has %v", other)
	}
	if err := s.RenameMailbox(ctx, "a", "Projects", "Clients"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMailbox(ctx, "a", "Clients/Acme"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Subscriptions(ctx, "a")
	if !got["Clients"] || !got["Clients/Acme"] || got["Projects"] || got["Projects/Acme"] {
		t.Errorf("after RENAME Projects Clients and DELETE Clients/Acme: %v", got)
	}
}

// testAgentKeywords: an agent's own keywords (a client's bookkeeping,
// DESIGN.md §6) are among that agent's flags of the entry only.
func testAgentKeywords(t *testing.T, s store.Store) {
	ctx := t.Context()
	res := mustInbound(t, s, newInbound(inboxA, "k1@example.com", 1))
	flagsOf := func(who string) []string {
		t.Helper()
		e, _ := mustEntries(t, s, inboxView(who, inboxA))
		if len(e) != 1 {
			t.Fatalf("%d entries, want 1", len(e))
		}
		return e[0].Flags
	}
	if err := s.SetAgentKeywords(ctx, agent, []int64{res.Message}, []string{"$Forwarded", "$MDNSent"}, nil); err != nil {
		t.Fatal(err)
	}
	if f := flagsOf(agent); !slices.Contains(f, "$Forwarded") || !slices.Contains(f, "$MDNSent") {
		t.Errorf("%s's flags %v, want their keywords", agent, f)
	}
	if f := flagsOf(agent2); slices.Contains(f, "$Forwarded") || slices.Contains(f, "$MDNSent") {
		t.Errorf("%s's flags %v hold another agent's keywords", agent2, f)
	}
	if c := mustConversation(t, s, res.Conversation); len(c.Tags) != 0 {
		t.Errorf("an agent's keywords became tags: %v", c.Tags)
	}
	if err := s.SetAgentKeywords(ctx, agent, []int64{res.Message}, nil, []string{"$MDNSent"}); err != nil {
		t.Fatal(err)
	}
	if f := flagsOf(agent); !slices.Contains(f, "$Forwarded") || slices.Contains(f, "$MDNSent") {
		t.Errorf("after removing $MDNSent: %v", f)
	}
	if err := s.SetAgentKeywords(ctx, agent, nil, []string{"x"}, nil); err != nil {
		t.Errorf("keywords of no message: %v", err)
	}
}

// metaSetter is the engine's hook for the IMAP side's FETCH metadata
// (gateway/imapgw), when it has one.
type metaSetter interface{ SetMetaFunc(store.MetaFunc) }

// fakeMeta stands for the IMAP side's computation.
func fakeMeta(raw []byte) []byte { return append([]byte("meta:"), raw[:8]...) }

// testMetaAtInsert checks that a MetaFunc's result is stored with inbound
// and outbound messages, and read back in batches beside their bytes.
func testMetaAtInsert(t *testing.T, s store.Store) {
	ms, ok := s.(metaSetter)
	if !ok {
		t.Skip("the engine computes no metadata at insert")
	}
	ctx := t.Context()
	ms.SetMetaFunc(fakeMeta)
	in := mustInbound(t, s, newInbound(inboxA, "a@x", 1))
	out := reply(mustReserve(t, s), in.Conversation, "alice@example.com")
	mustOutbound(t, s, out)
	ids := []int64{in.Message, out.Message, 999}
	meta, err := s.MessagesMeta(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	raws, err := s.MessagesRaw(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(meta) != 2 || len(raws) != 2 {
		t.Fatalf("got %d metadata and %d messages for 2 stored and one missing", len(meta), len(raws))
	}
	for _, id := range ids[:2] {
		if !bytes.Equal(meta[id], fakeMeta(raws[id])) {
			t.Errorf("message %d: metadata %q for bytes %q", id, meta[id], raws[id][:8])
		}
	}
}

// testMessagesMetaAndRaw: metadata recorded later is read back; none for a
// message without, nor for one that does not exist; MessagesRaw is
// MessageRaw of many.
func testMessagesMetaAndRaw(t *testing.T, s store.Store) {
	ctx := t.Context()
	var ids []int64
	meta := map[int64][]byte{}
	for i := range 30 {
		res := mustInbound(t, s, newInbound(inboxA, fmt.Sprintf("m%d@x", i), i))
		ids = append(ids, res.Message)
		if i%2 == 0 {
			meta[res.Message] = []byte(fmt.Sprint(i))
		}
	}
	if got, err := s.MessagesMeta(ctx, ids); err != nil || len(got) != 0 {
		t.Fatalf("%d metadata without any recorded (%v)", len(got), err)
	}
	meta[424242] = []byte("x") // of a message that does not exist: not recorded
	if err := s.SetMessagesMeta(ctx, meta); err != nil {
		t.Fatal(err)
	}
	got, err := s.MessagesMeta(ctx, append(slices.Clone(ids), 424242))
	if err != nil || len(got) != len(meta)-1 {
		t.Fatalf("%d of %d metadata back: %v", len(got), len(meta)-1, err)
	}
	for id, m := range got {
		if !bytes.Equal(m, meta[id]) {
			t.Errorf("message %d: metadata %q, want %q", id, m, meta[id])
		}
	}
	raws, err := s.MessagesRaw(ctx, append(slices.Clone(ids), 424242))
	if err != nil || len(raws) != len(ids) {
		t.Fatalf("%d of %d messages back: %v", len(raws), len(ids), err)
	}
	for _, id := range ids {
		if want, err := s.MessageRaw(ctx, id); err != nil || !bytes.Equal(raws[id], want) {
			t.Errorf("message %d: batch read %q, single read %q (%v)", id, raws[id], want, err)
		}
	}
}
