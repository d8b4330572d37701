package imapgw

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
)

// TestStatusKeepsPicture checks that STATUS of a folder no session has
// selected reads it once and keeps the picture (summary.go): the next
// STATUS after new mail and a \Seen reads only what changed, and counts
// from the derived summary what a walk of the entries would.
func TestStatusKeepsPicture(t *testing.T) {
	ctx := context.Background()
	st := openTestStore(t)
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
		var s *snapshot
		if v := srv.views.m[m.viewKey(f)]; v != nil {
			s = v.snap
		}
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

// TestCopyUIDFromPicture checks COPYUID (RFC 4315 3) of a COPY into a
// shared folder, found in the destination's picture from its end: each
// destination UID is the copy of the source UID at the same place, also
// when the destination's picture was made before the COPY (by a STATUS).
func TestCopyUIDFromPicture(t *testing.T) {
	st := openTestStore(t)
	fillStore(t, st, 8) // conversations of UIDs 1-2, 3-4, 5-6, 7-8
	c := dialTest(t, testServer(t, st))
	c.must(t, "SELECT INBOX")
	c.must(t, "UID COPY 1:2 Mine")      // Mine's first entries, before its picture
	c.must(t, "STATUS Mine (MESSAGES)") // Mine's picture, kept
	messageIDs := func(out string) map[string]string {
		t.Helper()
		ids := map[string]string{}
		for _, m := range regexp.MustCompile(`(?s)UID (\d+) BODY\[HEADER\.FIELDS \("?MESSAGE-ID"?\)\] \{\d+\}\r\nMessage-I[Dd]: <([^>]+)>`).FindAllStringSubmatch(out, -1) {
			ids[m[1]] = m[2]
		}
		return ids
	}
	fetched := c.must(t, "UID FETCH 3:4,7:8 (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
	src := messageIDs(fetched)
	if len(src) != 4 {
		t.Fatalf("source Message-IDs %v in %q", src, fetched)
	}
	out := c.must(t, "UID COPY 3:4,7:8 Mine")
	m := regexp.MustCompile(`COPYUID (\d+) ([0-9:,]+) ([0-9:,]+)\]`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no COPYUID in %q", out)
	}
	srcUIDs, dstUIDs := expandSet(t, m[2]), expandSet(t, m[3])
	if len(srcUIDs) != 4 || len(dstUIDs) != 4 {
		t.Fatalf("COPYUID %s %s: want four of each", m[2], m[3])
	}
	c.must(t, "SELECT Mine")
	dst := messageIDs(c.must(t, "UID FETCH "+m[3]+" (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"))
	for i := range srcUIDs {
		if src[srcUIDs[i]] == "" || src[srcUIDs[i]] != dst[dstUIDs[i]] {
			t.Fatalf("COPYUID pairs source %s (%s) with %s (%s)", srcUIDs[i], src[srcUIDs[i]], dstUIDs[i], dst[dstUIDs[i]])
		}
	}
}

// expandSet lists the numbers of an IMAP number set without "*".
func expandSet(t *testing.T, set string) []string {
	t.Helper()
	var out []string
	for _, r := range strings.Split(set, ",") {
		lo, hi, _ := strings.Cut(r, ":")
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(cmp.Or(hi, lo))
		if err1 != nil || err2 != nil {
			t.Fatalf("bad set %q", set)
		}
		for n := min(a, b); n <= max(a, b); n++ {
			out = append(out, strconv.Itoa(n))
		}
	}
	return out
}
