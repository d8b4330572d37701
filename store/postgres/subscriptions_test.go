package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// TestSubscriptions: an agent's choices are kept per agent, for any name,
// and move with RENAME; DELETE keeps them (RFC 3501 6.3.6).
func TestSubscriptions(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
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

// TestChangePrivateFlagsConcurrent: sessions adding and removing different
// flags of one private message at once all keep their change.
func TestChangePrivateFlagsConcurrent(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
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
