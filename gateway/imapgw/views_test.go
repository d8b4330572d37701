package imapgw

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
)

func uidList(uids ...uint32) []*store.MailboxEntry {
	out := make([]*store.MailboxEntry, len(uids))
	for i, u := range uids {
		out[i] = &store.MailboxEntry{UID: u}
	}
	return out
}

// TestDiff checks the responses an update queues, in the order the
// tracker needs them (expunges and flag changes last entry first).
func TestDiff(t *testing.T) {
	old := uidList(1, 2, 3, 4, 5, 6)
	now := uidList(1, 3, 4, 6, 8, 9)
	now[1].Seen = true // UID 3
	d := diff(old, now)
	want := []change{{expunge: true, seq: 5}, {seq: 3, now: 1}, {expunge: true, seq: 2}}
	if !slices.Equal(d.changes, want) || !d.added || !d.exact {
		t.Fatalf("diff = %+v, want changes %+v, added, exact", d, want)
	}
	if d := diff(now, now); len(d.changes) != 0 || d.added || !d.exact {
		t.Fatalf("no change: %+v", d)
	}
	// UID 4 appears below the last known one: the session cannot be told
	// of it, and keeps the others.
	d = diff(uidList(1, 3, 5), uidList(1, 3, 4, 5, 7))
	if d.exact || !d.added || !slices.Equal(d.kept, []bool{true, true, false, true, true}) {
		t.Fatalf("an unknown older entry: %+v", d)
	}
	// Everything left.
	d = diff(uidList(1, 2), nil)
	if !slices.Equal(d.changes, []change{{expunge: true, seq: 2}, {expunge: true, seq: 1}}) || d.added || !d.exact {
		t.Fatalf("all expunged: %+v", d)
	}
}

// wantLine fails unless out has a line matching re.
func wantLine(t *testing.T, what, out, re string) {
	t.Helper()
	if !regexp.MustCompile(re).MatchString(out) {
		t.Fatalf("%s: no line matching %s in:\n%s", what, re, out)
	}
}

// TestSharedViews runs two sessions of one agent on INBOX, which share its
// picture (views.go), and checks that each sees the other's changes and the
// store's once, in order, and its own flag changes only in its own answer.
func TestSharedViews(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t)
	fillStore(t, st, 6) // conversations of UIDs 1-2, 3-4, 5-6
	addr := testServer(t, st)
	a, b := dialTest(t, addr), dialTest(t, addr)
	wantLine(t, "SELECT", a.must(t, "SELECT INBOX"), `(?m)^\* 6 EXISTS`)
	b.must(t, "SELECT INBOX")

	// a reads message 1: its answer says \Seen; b is told by a NOOP; a's
	// next NOOP says nothing more.
	wantLine(t, "FETCH BODY[]", a.must(t, "FETCH 1 (FLAGS BODY[])"), `(?m)^\* 1 FETCH \(UID 1 FLAGS \(\\Seen\)`)
	wantLine(t, "b's NOOP", b.must(t, "NOOP"), `(?m)^\* 1 FETCH \(UID 1 FLAGS \(\\Seen\)\)`)
	if out := a.must(t, "NOOP"); strings.Contains(out, "FETCH") {
		t.Fatalf("a was told again of its own change:\n%s", out)
	}

	// A new message and a closed conversation: EXPUNGE then EXISTS.
	in := store.Inbound{Inbox: testInbox, Owner: "n@customer.example", Subject: "New", Sender: "n@customer.example",
		MessageIDHeader: "new@customer.example", Raw: benchRaw(1), Received: time.Now()}
	if _, err := st.AddInbound(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateConversation(ctx, store.StatusUpdate(2, store.StatusClosed)); err != nil { // UIDs 3 and 4
		t.Fatal(err)
	}
	for _, c := range []*testClient{a, b} {
		out := c.must(t, "NOOP")
		wantLine(t, "NOOP after the changes", out, `(?ms)^\* 4 EXPUNGE.*^\* 3 EXPUNGE.*^\* 5 EXISTS`)
	}
	out := b.must(t, "UID FETCH 1:* (UID)")
	for _, uid := range []string{"1", "2", "5", "6", "7"} {
		wantLine(t, "UIDs after the changes", out, `UID `+uid+`\)`)
	}

	// A third session sees the same folder.
	c := dialTest(t, addr)
	wantLine(t, "SELECT of a third session", c.must(t, "SELECT INBOX"), `(?m)^\* 5 EXISTS`)
}

// TestFetchMetaPaths checks that ENVELOPE and BODYSTRUCTURE are the same
// whether computed at the first FETCH (a message stored before the server
// ran), read from what that FETCH recorded, or computed when the message
// was stored.
func TestFetchMetaPaths(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t)
	fillStore(t, st, 3) // no MetaFunc yet: the lazy path
	addr := testServer(t, st)
	st.SetMetaFunc(MessageMeta) // as cmd/supportgate wires the daemon
	in := store.Inbound{Inbox: testInbox, Owner: "c@customer.example", Subject: "x", Sender: "c@customer.example",
		SenderRole: store.SenderOwner, MessageIDHeader: "again@customer.example", Raw: benchRaw(0), Received: time.Unix(1_700_000_000, 0)}
	if _, err := st.AddInbound(ctx, in); err != nil { // UID 4, the same bytes as UID 1, at insert
		t.Fatal(err)
	}
	if got, _ := st.MessagesMeta(ctx, []int64{1, 4}); len(got) != 1 || got[4] == nil {
		t.Fatalf("metadata before the first FETCH: %v", got)
	}
	cl := dialTest(t, addr)
	cl.must(t, "SELECT INBOX")
	item := regexp.MustCompile(`(?m)^\* \d+ FETCH \(UID (\d+) (ENVELOPE .*)\)\r$`)
	fetch := func() map[string]string {
		out := map[string]string{}
		for _, m := range item.FindAllStringSubmatch(cl.must(t, "UID FETCH 1:4 (ENVELOPE BODYSTRUCTURE)"), -1) {
			out[m[1]] = m[2]
		}
		return out
	}
	first := fetch()
	if got, _ := st.MessagesMeta(ctx, []int64{1, 2, 3}); len(got) != 3 {
		t.Fatalf("the first FETCH recorded %d of 3 messages' metadata", len(got))
	}
	second := fetch()
	if len(first) != 4 || first["1"] == "" || first["1"] != second["1"] || first["3"] != second["3"] {
		t.Fatalf("computed and cached differ:\n%v\n%v", first, second)
	}
	// UID 1 and UID 4 have the same bytes but their own conversations.
	if first["1"] != first["4"] {
		t.Fatalf("lazy and insert-time metadata differ:\n%s\n%s", first["1"], first["4"])
	}
	wantLine(t, "ENVELOPE", first["1"], `^ENVELOPE \("Tue, 14 Nov 2023 22:13:20 \+0000" "=\?utf-8\?q\?Caf=C3=A9_printer_0\?=" \(\("Carla" NIL "c0" "customer.example"\)\)`)
	wantLine(t, "BODYSTRUCTURE", first["1"], `BODYSTRUCTURE \(\("text" "plain" \("charset" "UTF-8"\).*\) "mixed" \("boundary" "b1"\) NIL NIL NIL\)$`)
}

// TestViewsKeepsFewUnused checks that pictures no session holds are kept
// for a new SELECT, at most keepUnused of them.
func TestViewsKeepsFewUnused(t *testing.T) {
	vs := newViews(nil)
	first := vs.acquire(viewKey{agent: "a", folder: "INBOX"}, store.Filter{})
	vs.release(first)
	if again := vs.acquire(viewKey{agent: "a", folder: "INBOX"}, store.Filter{}); again != first {
		t.Fatal("a folder selected again lost its picture")
	}
	vs.release(first)
	for i := range 2 * keepUnused {
		vs.release(vs.acquire(viewKey{agent: "a", folder: string(rune('A' + i))}, store.Filter{}))
	}
	held := vs.acquire(viewKey{agent: "held"}, store.Filter{})
	for i := range 2 * keepUnused {
		vs.release(vs.acquire(viewKey{agent: "b", folder: string(rune('A' + i))}, store.Filter{}))
	}
	if n := len(vs.m); n > keepUnused+1 {
		t.Fatalf("%d views kept, want at most %d unused and the held one", n, keepUnused)
	}
	if vs.m[viewKey{agent: "held"}] != held {
		t.Fatal("a view in use was dropped")
	}
}

// TestViewsKeepFewUnusedEntries: unused views are dropped, oldest first,
// while they hold more than keepUnusedEntries entries together, but the
// newest is kept whatever its size (a STATUS of a big folder keeps its
// picture for the next one).
func TestViewsKeepFewUnusedEntries(t *testing.T) {
	vs := newViews(nil)
	release := func(folder string, entries int64) *view {
		v := vs.acquire(viewKey{agent: "a", folder: folder}, store.Filter{})
		v.entries.Store(entries)
		vs.release(v)
		return v
	}
	small := release("small", 10)
	big := release("big", keepUnusedEntries*3/4)
	if vs.m[viewKey{agent: "a", folder: "big"}] != big || vs.m[viewKey{agent: "a", folder: "small"}] != small {
		t.Fatal("views within the bound were dropped")
	}
	bigger := release("bigger", keepUnusedEntries*3/4)
	if vs.m[viewKey{agent: "a", folder: "big"}] != nil || vs.m[viewKey{agent: "a", folder: "small"}] != nil {
		t.Fatal("the oldest unused views were kept past the bound")
	}
	huge := release("huge", keepUnusedEntries*2)
	if vs.m[viewKey{agent: "a", folder: "huge"}] != huge || vs.m[viewKey{agent: "a", folder: "bigger"}] != nil {
		t.Fatalf("the newest unused view (larger than the bound alone) must be kept, the older dropped: bigger %v", bigger)
	}
}

// TestViewWakesForWhatItShows: an agent's picture of INBOX is not read
// again, and its sessions are not woken, for a message in an inbox the
// agent does not see or another agent's \Seen; it is for a message in
// its inbox and for the agent's own \Seen (DESIGN.md §13). Each write
// returns after it is published: no waiting.
func TestViewWakesForWhatItShows(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t)
	fillStore(t, st, 2)
	srv := &Server{opts: Options{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, views: newViews(st)}
	m := &session{srv: srv, ctx: ctx, log: srv.opts.Log, agent: &config.Agent{Email: testAgent}, inboxes: []string{testInbox}}
	f := folder{name: "INBOX", kind: kindShared, shared: store.FolderInbox}
	v := m.acquireView(f)
	defer srv.views.release(v)
	snap, err := m.snapshot(v, f)
	if err != nil {
		t.Fatal(err)
	}
	n := 100
	inbound := func(inbox string) func() error {
		return func() error {
			n++
			_, err := st.AddInbound(ctx, store.Inbound{Inbox: inbox, Owner: "c@customer.example", Subject: "s", Sender: "c@customer.example",
				MessageIDHeader: fmt.Sprintf("w%d@customer.example", n), Raw: benchRaw(n), Received: time.Unix(1_700_000_000+int64(n), 0)})
			return err
		}
	}
	seen := func(agent string) func() error {
		return func() error { return st.SetSeen(ctx, agent, []int64{1}, true) }
	}
	steps := []struct {
		name  string
		do    func() error
		wakes bool
	}{
		{"a message in another inbox", inbound("sales@example.test"), false},
		{"bob's \\Seen", seen("bob@example.test"), false},
		{"a message in its inbox", inbound(testInbox), true},
		{"its agent's \\Seen", seen(testAgent), true},
	}
	for _, step := range steps {
		ch := v.changed() // as an IDLE session takes it
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if woken := isClosed(ch); woken != step.wakes {
			t.Errorf("%s: the view's sessions woken = %v, want %v", step.name, woken, step.wakes)
		}
		next, err := m.snapshot(v, f)
		if err != nil {
			t.Fatal(err)
		}
		if read := next != snap; read != step.wakes {
			t.Errorf("%s: the picture read again = %v, want %v", step.name, read, step.wakes)
		}
		snap = next
	}
	if len(snap.entries) != 3 || !snap.entries[0].Seen {
		t.Fatalf("the picture: %v, want 3 entries, the first seen", uids(snap.entries))
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestPatchSharesUnchangedEntries checks that a snapshot patched for a
// flag change shares every other entry with the one before it (issue 18:
// a \Seen in a folder of a million messages copied all of them): the new
// snapshot holds the very same entries, not copies.
func TestPatchSharesUnchangedEntries(t *testing.T) {
	old := uidList(1, 2, 3, 4, 5, 6, 7, 8)
	for i, e := range old {
		e.Conversation = int64(i%3 + 1)
	}
	var ci convIndex
	idx := ci.replacedIndexes(&snapshot{entries: old}, map[int64]bool{2: true}) // UIDs 2, 5 and 8
	if !slices.Equal(idx, []int{1, 4, 7}) {
		t.Fatalf("replaced indexes %v, want [1 4 7]", idx)
	}
	repl := []*store.MailboxEntry{
		{UID: 2, Conversation: 2, Seen: true},
		{UID: 5, Conversation: 2, Seen: true},
		{UID: 8, Conversation: 2, Seen: true},
	}
	out, d := patch(old, idx, repl, nil)
	if !d.exact || d.added || len(d.changes) != 3 || len(out) != len(old) {
		t.Fatalf("patch: %d entries, delta %+v; want 8 entries and three flag changes", len(out), d)
	}
	for i := range out {
		replaced := slices.Contains(idx, i)
		if same := out[i] == old[i]; same == replaced {
			t.Errorf("entry %d (UID %d): shared with the old snapshot %v, want %v", i, out[i].UID, same, !replaced)
		}
	}
}
