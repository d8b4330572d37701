package imapgw

import (
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/supportgate/supportgate/store"
)

// TestVanished: VANISHED (EARLIER) of a UID set is its UIDs below UIDNEXT
// that are not in the folder, merged into ranges, "*" being UIDNEXT-1,
// whatever the order and overlap of the client's ranges.
func TestVanished(t *testing.T) {
	entries := func(uids ...uint32) []*store.MailboxEntry {
		var out []*store.MailboxEntry
		for _, u := range uids {
			out = append(out, &store.MailboxEntry{UID: u})
		}
		return out
	}
	set := func(rs ...[2]imap.UID) imap.UIDSet {
		var s imap.UIDSet
		for _, r := range rs {
			s = append(s, imap.UIDRange{Start: r[0], Stop: r[1]})
		}
		return s
	}
	for _, tc := range []struct {
		name    string
		entries []*store.MailboxEntry
		set     imap.UIDSet
		uidNext uint32
		want    string
	}{
		{"empty folder, nothing given yet", nil, set([2]imap.UID{1, 0}), 1, ""},
		{"empty folder", nil, set([2]imap.UID{1, 0}), 8, "1:7"},
		{"gaps", entries(2, 4, 5, 9), set([2]imap.UID{1, 0}), 12, "1,3,6:8,10:11"},
		{"nothing gone", entries(1, 2, 3), set([2]imap.UID{1, 3}), 4, ""},
		{"beyond UIDNEXT is not vanished", entries(1), set([2]imap.UID{1, 100}), 4, "2:3"},
		{"known UIDs only", entries(2, 4), set([2]imap.UID{1, 1}, [2]imap.UID{4, 5}), 9, "1,5"},
		{"unordered, overlapping", entries(5), set([2]imap.UID{6, 9}, [2]imap.UID{1, 7}, [2]imap.UID{3, 3}), 10, "1:4,6:9"},
		{"reversed range, *", entries(3), set([2]imap.UID{0, 2}), 6, "2,4:5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := vanished(tc.entries, tc.set, tc.uidNext)
			s := ""
			if len(got) > 0 {
				s = got.String()
			}
			if s != tc.want {
				t.Errorf("vanished = %q, want %q", s, tc.want)
			}
		})
	}
}
