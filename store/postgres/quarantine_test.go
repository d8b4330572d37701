package postgres

import (
	"context"
	"slices"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// TestAddInboundNewStatusIsOneTransaction: when storing a quarantined
// message fails at its last write (its Spam entry), nothing of it stays:
// no conversation open in INBOX, no message, no Message-ID taken; its
// retry then opens the conversation in Spam.
func TestAddInboundNewStatusIsOneTransaction(t *testing.T) {
	ctx := t.Context()
	s := openTest(t, pg.DSN(t))
	mustInbound(t, s, newInbound(inboxA, "before@example.com", 1))
	convs, messages, entries, events := count(t, s, "conversations"), count(t, s, "messages"), count(t, s, "folder_entries"), count(t, s, "events")
	if _, err := s.pool.Exec(ctx, `CREATE FUNCTION fail_spam() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'injected failure'; END $$;
		CREATE TRIGGER fail_spam BEFORE INSERT ON folder_entries FOR EACH ROW WHEN (NEW.folder = 'Spam') EXECUTE FUNCTION fail_spam()`); err != nil {
		t.Fatal(err)
	}
	in := newInbound(inboxA, "forged@example.com", 2)
	in.NewStatus = store.StatusSpam
	in.NewParticipants = []string{"cc@example.com"}
	in.Events = []store.Event{{Type: "auth-failed", Text: "failed SPF", At: at(2), Quiet: true}}
	changes := s.Changes()
	if res, err := s.AddInbound(ctx, in); err == nil {
		t.Fatalf("AddInbound = %+v with its Spam entry failing, want an error", res)
	}
	if c, m, e, ev := count(t, s, "conversations"), count(t, s, "messages"), count(t, s, "folder_entries"), count(t, s, "events"); c != convs || m != messages || e != entries || ev != events {
		t.Errorf("a failed AddInbound wrote: conversations %d→%d, messages %d→%d, entries %d→%d, events %d→%d",
			convs, c, messages, m, entries, e, events, ev)
	}
	if n := count(t, s, "participants"); n != 0 {
		t.Errorf("a failed AddInbound added %d participants", n)
	}
	if isClosed(changes) {
		t.Error("a failed AddInbound published a change")
	}
	if _, err := s.pool.Exec(ctx, `DROP TRIGGER fail_spam ON folder_entries`); err != nil {
		t.Fatal(err)
	}
	res := mustInbound(t, s, in)
	if res.Duplicate {
		t.Fatal("the retry of a failed AddInbound is a duplicate")
	}
	if c, err := s.Conversation(ctx, res.Conversation); err != nil || c.Status != store.StatusSpam {
		t.Errorf("the retry's conversation: status %q, %v; want spam", c.Status, err)
	}
	if got := folderRowsOf(t, s, res.Message); !slices.Equal(got, []string{"Spam"}) {
		t.Errorf("the retry's message is in %v, want [Spam]", got)
	}
}

// folderRowsOf lists the shared folders message msg has entries in.
func folderRowsOf(t *testing.T, s *Store, msg int64) []string {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT folder FROM folder_entries WHERE message_id = $1 ORDER BY folder`, msg)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
