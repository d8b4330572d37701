package imapgw

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/sqlite"
)

// TestStatusKeepsPicture checks that STATUS of a folder no session has
// selected reads it once and keeps the picture (summary.go): the next
// STATUS after new mail and a \Seen reads only what changed, and counts
// from the derived summary what a walk of the entries would.
func TestStatusKeepsPicture(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fillStore(t, st, 6) // conversations of UIDs 1-2, 3-4, 5-6
	srv := &Server{opts: Options{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, views: newViews(st)}
	const agent = "alice@example.test"
	m := &session{srv: srv, ctx: ctx, log: srv.opts.Log, agent: &config.Agent{Email: agent}, inboxes: []string{testInbox}}
	f := folder{name: "INBOX", kind: kindShared, shared: store.FolderInbox}
	opts := &imap.StatusOptions{NumMessages: true, NumUnseen: true, NumDeleted: true, UIDNext: true}
	status := func(wantMessages, wantUnseen uint32) *snapshot {
		t.Helper()
		data, err := m.status(f, opts)
		if err != nil {
			t.Fatal(err)
		}
		if *data.NumMessages != wantMessages || *data.NumUnseen != wantUnseen || *data.NumDeleted != 0 {
			t.Fatalf("STATUS: MESSAGES %d UNSEEN %d DELETED %d, want %d, %d and 0", *data.NumMessages, *data.NumUnseen, *data.NumDeleted,
				wantMessages, wantUnseen)
		}
		s := srv.views.peek(m.viewKey(f))
		if s == nil {
			t.Fatal("STATUS kept no picture of the folder")
		}
		return s
	}
	first := status(6, 6)
	if first.how != readFull {
		t.Fatalf("the first STATUS made a picture by %v, want a full read", first.how)
	}
	if again := status(6, 6); again != first {
		t.Fatal("a STATUS with nothing changed made another picture")
	}

	in := store.Inbound{Inbox: testInbox, Owner: "n@customer.example", Subject: "New", Sender: "n@customer.example",
		MessageIDHeader: "new@customer.example", Raw: benchRaw(7), Received: time.Now()}
	if _, err := st.AddInbound(ctx, in); err != nil {
		t.Fatal(err)
	}
	all, _, err := st.Entries(ctx, m.view(f))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetSeen(ctx, agent, []int64{all[0].Message}, true); err != nil {
		t.Fatal(err)
	}
	later := status(7, 6)
	if later.how == readFull {
		t.Fatal("STATUS after new mail and a \\Seen read the folder in full")
	}
	if later.sum.Load() == nil {
		t.Fatal("the later picture's summary was not derived from the first's")
	}
	if got, want := later.summary(), summarize(later.entries); !sameSummary(got, want) {
		t.Fatalf("derived summary %+v, want %+v", *got, *want)
	}
	if seq := later.summary().firstUnseenSeq(later.entries); seq != 2 {
		t.Fatalf("first unseen at %d, want 2", seq)
	}
}
