package imapgw

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/sqlite"
)

// TestIncrementalMatchesFull runs random sequences of every kind of write
// (new conversations, replies that may reopen, status, assignee, tags,
// \Flagged, \Seen, marks, outbound messages, events) and checks after each
// few that every folder picture brought up to date the incremental way
// (views.go: only new entries read when only new entries were committed,
// and only the entries of the conversations rewritten when some were) is
// exactly what a full read of the folder gives, that the delta handed to
// sessions is what diff gives, and that sessions updated from those
// pictures, some of them several pictures behind, hold the same. Every
// write names its conversations, so no picture is read in full again
// unless the test drops its cursor.
func TestIncrementalMatchesFull(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { incrementalVsFull(t, seed) })
	}
}

func incrementalVsFull(t *testing.T, seed uint64) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rnd := rand.New(rand.NewPCG(seed, 8))
	inboxes := []string{testInbox, "sales@example.test"}
	agents := []string{"alice@example.test", "bob@example.test"}
	srv := &Server{opts: Options{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, views: newViews(st)}

	type probe struct {
		m    *session
		f    folder
		v    *view
		mb   *selectedMailbox
		last *snapshot
		// forced: its cursor was dropped, for a full read at its next
		// reload.
		forced bool
	}
	var probes []*probe
	for ai, a := range agents {
		visible := inboxes[:2-ai] // bob sees one inbox
		m := &session{srv: srv, ctx: ctx, log: srv.opts.Log, agent: &config.Agent{Email: a}, inboxes: visible}
		fs := []folder{}
		for _, f := range store.SharedFolders() {
			fs = append(fs, folder{name: string(f), kind: kindShared, shared: f})
		}
		if len(visible) > 1 {
			fs = append(fs, folder{name: inboxesParent + "/" + inboxes[1], kind: kindInboxView, shared: store.FolderInbox, inbox: inboxes[1]})
		}
		for _, f := range fs {
			p := &probe{m: m, f: f, v: m.acquireView(f)}
			s, err := m.snapshot(p.v, f)
			if err != nil {
				t.Fatal(err)
			}
			p.mb, p.last = newSelectedMailbox(f, false, p.v, s), s
			probes = append(probes, p)
		}
	}

	var convs, msgs []int64
	at := time.Unix(1_700_000_000, 0)
	n := 0
	inbound := func(conv int64, reopen bool) error {
		n++
		in := store.Inbound{Inbox: inboxes[rnd.IntN(2)], Conversation: conv, Owner: "c@customer.example", Subject: "s", NormSubject: "s",
			Sender: "c@customer.example", SenderRole: store.SenderOwner, MessageIDHeader: fmt.Sprintf("m%d@customer.example", n),
			Raw: benchRaw(n), Received: at.Add(time.Duration(n) * time.Second), Reopen: reopen}
		res, err := st.AddInbound(ctx, in)
		if err == nil {
			if conv == 0 {
				convs = append(convs, res.Conversation)
			}
			msgs = append(msgs, res.Message)
		}
		return err
	}
	conv := func() int64 { return convs[rnd.IntN(len(convs))] }
	// Entries there hidden, or hidden ones shown again (below the last
	// UID: sessions cannot be told of them in sequence order).
	hideOrShow := func() error {
		f, a := store.SharedFolders()[rnd.IntN(5)], agents[rnd.IntN(2)]
		all, _, err := st.Entries(ctx, store.MailboxView{Agent: "nobody@example.test", Folder: f, Inboxes: inboxes})
		if err != nil {
			return err
		}
		shown, _, err := st.Entries(ctx, store.MailboxView{Agent: a, Folder: f, Inboxes: inboxes})
		if err != nil {
			return err
		}
		hide := rnd.IntN(2) == 0
		var pick []uint32
		for _, e := range all {
			if hide == slices.ContainsFunc(shown, func(s store.MailboxEntry) bool { return s.UID == e.UID }) {
				pick = append(pick, e.UID)
			}
		}
		if len(pick) == 0 {
			return nil
		}
		var uids []uint32
		for range 1 + rnd.IntN(2) {
			uids = append(uids, pick[rnd.IntN(len(pick))])
		}
		return st.SetMarks(ctx, a, f, uids, store.MarkHidden, hide)
	}
	ops := []func() error{
		func() error { return inbound(0, false) },
		func() error { return inbound(0, false) },
		func() error { return inbound(conv(), rnd.IntN(2) == 0) },
		func() error { return inbound(conv(), true) },
		func() error {
			return st.UpdateConversation(ctx, store.StatusUpdate(conv(), []store.Status{store.StatusOpen, store.StatusClosed, store.StatusSpam}[rnd.IntN(3)]))
		},
		func() error {
			return st.UpdateConversation(ctx, store.AssigneeUpdate(conv(), []string{"", agents[0], agents[1]}[rnd.IntN(3)]))
		},
		func() error {
			return st.UpdateConversation(ctx, store.KeywordsUpdate(conv(), []string{"billing"}, nil))
		},
		func() error {
			return st.UpdateConversation(ctx, store.KeywordsUpdate(conv(), nil, []string{"billing"}))
		},
		func() error { return st.UpdateConversation(ctx, flagged(conv(), rnd.IntN(2) == 0)) },
		func() error {
			return st.SetSeen(ctx, agents[rnd.IntN(2)], []int64{msgs[rnd.IntN(len(msgs))]}, rnd.IntN(3) != 0)
		},
		func() error {
			f := store.SharedFolders()[rnd.IntN(5)]
			uid := uint32(1 + rnd.IntN(max(1, len(msgs))))
			mark := []store.Mark{store.MarkDeleted, store.MarkHidden}[rnd.IntN(2)]
			return st.SetMarks(ctx, agents[rnd.IntN(2)], f, []uint32{uid}, mark, rnd.IntN(3) != 0)
		},
		hideOrShow, hideOrShow, hideOrShow,
		func() error { // \Seen on messages of several conversations
			var ms []int64
			for range 1 + rnd.IntN(6) {
				ms = append(ms, msgs[rnd.IntN(len(msgs))])
			}
			return st.SetSeen(ctx, agents[rnd.IntN(2)], ms, rnd.IntN(2) == 0)
		},
		func() error {
			id, err := st.NextMessageNumber(ctx)
			if err != nil {
				return err
			}
			n++
			err = st.AddOutbound(ctx, store.Outbound{Message: id, Conversation: conv(), Kind: store.KindNote, Agent: agents[rnd.IntN(2)],
				MessageIDHeader: fmt.Sprintf("m%d@example.test", n), Raw: benchRaw(n), Received: at.Add(time.Duration(n) * time.Second)})
			if err == nil {
				msgs = append(msgs, id)
			}
			return err
		},
		func() error {
			m, err := st.AddEvent(ctx, store.Event{Conversation: conv(), Type: "test", Text: "something happened", At: at})
			if err == nil {
				msgs = append(msgs, m)
			}
			return err
		},
	}
	reads := map[readKind]int{}
	patchedDeltas, derived := 0, 0
	if err := inbound(0, false); err != nil {
		t.Fatal(err)
	}
	for step := range 250 {
		// Mostly inbound mail, as under load; the others often enough.
		var op func() error
		if rnd.IntN(2) == 0 {
			op = ops[rnd.IntN(4)]
		} else {
			op = ops[rnd.IntN(len(ops))]
		}
		if err := op(); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if rnd.IntN(3) == 0 {
			continue // several writes between two reads
		}
		for _, p := range probes {
			// Now and then a picture forgets where its read left off, and
			// is read in full again.
			if rnd.IntN(15) == 0 {
				p.forced = true
				p.v.mu.Lock()
				if p.v.snap != nil {
					p.v.snap.cursor = store.FolderCursor{}
				}
				p.v.mu.Unlock()
			}
			s, err := p.m.snapshot(p.v, p.f)
			if err != nil {
				t.Fatal(err)
			}
			if s != p.last {
				reads[s.how]++
				// The summary derived from the last one (summary.go) is
				// what counting the entries gives.
				if sum := s.sum.Load(); sum != nil {
					derived++
					if want := summarize(s.entries); !sameSummary(sum, want) {
						t.Fatalf("step %d, %s of %s: derived summary %+v (flags %v), want %+v (flags %v)", step, p.f.name, p.m.agent.Email,
							*sum, sum.shown(), *want, want.shown())
					}
				}
				switch {
				case s.how == readFull && !p.forced:
					t.Fatalf("step %d, %s of %s: read in full after rewrites that name their conversations", step, p.f.name, p.m.agent.Email)
				case s.how == readAppended && s.chain != p.last.chain:
					t.Fatalf("step %d, %s of %s: an appended picture starts a chain", step, p.f.name, p.m.agent.Email)
				case s.how == readPatched:
					// The delta given to the sessions that were up to
					// date is what diff gives, or none when diff's is not
					// exact.
					want := diff(p.last.entries, s.entries)
					if (s.delta == nil) != !want.exact || s.delta != nil && (s.prev != p.last.id || !reflect.DeepEqual(*s.delta, want)) {
						t.Fatalf("step %d, %s of %s: patched delta %+v, want %+v", step, p.f.name, p.m.agent.Email, s.delta, want)
					}
					if s.delta != nil {
						patchedDeltas++
					}
				}
				p.last, p.forced = s, false
				s.summary() // known, so that the next one derives its own
			}
			r, err := p.m.readFolder(p.f)
			if err != nil {
				t.Fatal(err)
			}
			validity, full, uidNext := r.validity, r.entries, r.uidNext
			// UIDNEXT is the folder kind's, and it grows with the entries
			// of inboxes the view does not show, which do not wake it
			// (DESIGN.md §13): the picture's may be lower, never below
			// what it shows (RFC 9051 2.3.1.1: it changes only when
			// messages are added to the mailbox).
			if s.validity != validity || s.uidNext > uidNext || len(s.entries) > 0 && s.uidNext <= s.entries[len(s.entries)-1].UID ||
				!sameEntries(s.entries, full) {
				t.Fatalf("step %d, %s of %s: the picture differs from a full read:\n got %d entries (validity %d, uidnext %d): %v\nwant %d entries (validity %d, uidnext %d): %v",
					step, p.f.name, p.m.agent.Email, len(s.entries), s.validity, s.uidNext, uids(s.entries), len(full), validity, uidNext, uids(full))
			}
			// Sessions catch up now and then, several pictures at once.
			if rnd.IntN(3) != 0 {
				p.mb.update(s, nil)
				if !sameEntries(p.mb.entries, full) && p.mb.owned == false {
					t.Fatalf("step %d, %s of %s: the session holds %v, want %v", step, p.f.name, p.m.agent.Email, uids(p.mb.entries), uids(full))
				}
			}
		}
	}
	t.Logf("%d appended, %d patched (%d of them with a delta) and %d full reads; %d summaries derived", reads[readAppended], reads[readPatched], patchedDeltas, reads[readFull], derived)
	if derived == 0 {
		t.Fatal("no summary was derived")
	}
	// The conversation index (convindex.go) follows the pictures: it is
	// built again only after a full read, not at every patch.
	built := 0
	for _, p := range probes {
		built += p.v.convs.built
	}
	if built > reads[readFull]+len(probes) {
		t.Fatalf("the conversation index was built %d times for %d patched pictures and %d full reads", built, reads[readPatched], reads[readFull])
	}
	t.Logf("conversation index built %d times", built)
	if reads[readAppended] == 0 || reads[readPatched] == 0 || reads[readFull] == 0 {
		t.Fatalf("%d appended, %d patched and %d full reads: every path must be exercised", reads[readAppended], reads[readPatched], reads[readFull])
	}
}

// sameSummary compares two summaries; the order in which flags were first
// seen may differ.
func sameSummary(a, b *folderSummary) bool {
	return a.unseen == b.unseen && a.deleted == b.deleted && a.firstUnseen == b.firstUnseen &&
		reflect.DeepEqual(sortedFlags(a.shown()), sortedFlags(b.shown()))
}

func sortedFlags(fs []imap.Flag) []imap.Flag {
	out := slices.Clone(fs)
	slices.Sort(out)
	return out
}

func sameEntries(a, b []*store.MailboxEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !reflect.DeepEqual(*a[i], *b[i]) {
			return false
		}
	}
	return true
}

func uids(es []*store.MailboxEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = fmt.Sprintf("%d%v%v", e.UID, map[bool]string{true: "s"}[e.Seen], e.Flags)
	}
	return out
}

// TestForEachSets checks forEach (binary search for UID sets, a bounded
// walk for sequence sets) against the definition on random sets: every
// entry in the set once, in order.
func TestForEachSets(t *testing.T) {
	var es []store.MailboxEntry
	for u := uint32(2); u <= 60; u += 2 {
		es = append(es, store.MailboxEntry{UID: u})
	}
	snap := &snapshot{id: 1, entries: pointers(es), uidNext: 61}
	mb := newSelectedMailbox(folder{name: "INBOX"}, false, nil, snap)
	defer mb.close()
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		var uset imap.UIDSet
		var sset imap.SeqSet
		for range 1 + rnd.IntN(3) {
			a, b := uint32(rnd.IntN(70)), uint32(rnd.IntN(70)) // 0: "*"
			uset = append(uset, imap.UIDRange{Start: imap.UID(a), Stop: imap.UID(b)})
			sset = append(sset, imap.SeqRange{Start: a / 2, Stop: b / 2})
		}
		for _, set := range []imap.NumSet{uset, sset} {
			var got, want []uint32
			mb.forEach(set, func(seq uint32, e *store.MailboxEntry) { got = append(got, e.UID) })
			// The definition: a set is the union of its ranges, in any
			// order (imap's Contains assumes them sorted).
			static := mb.staticNumSet(set)
			for i, e := range es {
				switch s := static.(type) {
				case imap.UIDSet:
					if slices.ContainsFunc(s, func(r imap.UIDRange) bool { return r.Start <= imap.UID(e.UID) && imap.UID(e.UID) <= r.Stop }) {
						want = append(want, e.UID)
					}
				case imap.SeqSet:
					if slices.ContainsFunc(s, func(r imap.SeqRange) bool { return r.Start <= uint32(i+1) && uint32(i+1) <= r.Stop }) {
						want = append(want, e.UID)
					}
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("forEach(%v) = %v, want %v", set, got, want)
			}
		}
	}
}

// flagged is the update that sets or clears conv's shared \Flagged.
func flagged(conv int64, on bool) store.ConversationUpdate {
	if on {
		return store.KeywordsUpdate(conv, []string{store.KeywordFlagged}, nil)
	}
	return store.KeywordsUpdate(conv, nil, []string{store.KeywordFlagged})
}
