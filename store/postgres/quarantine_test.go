package postgres

import (
	"context"
	"slices"
	"testing"

	"github.com/supportgate/supportgate/store"
)

// TestAddInboundNewStatusSpam: a message that opens a conversation with
// NewStatus spam (auth_failure = "quarantine", DESIGN.md §8) is stored with
// its conversation already in Spam: its only folder entry is in Spam, never
// in INBOX, and nothing existing was rewritten, so IMAP readers see it as
// one new Spam entry. It survives a restart with no further write.
// NewStatus is ignored for a message into an existing conversation and for
// a duplicate.
func TestAddInboundNewStatusSpam(t *testing.T) {
	ctx := t.Context()
	dir := pg.DSN(t)
	s := openTest(t, dir)
	open := mustInbound(t, s, newInbound(inboxA, "open@example.com", 1))

	spamView := store.MailboxView{Agent: agent, Folder: store.FolderSpam, Inboxes: []string{inboxA}}
	inboxView := store.MailboxView{Agent: agent, Folder: store.FolderInbox, Inboxes: []string{inboxA}}
	_, _, spamCur, _, err := s.EntriesSince(ctx, spamView, store.FolderCursor{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, inboxCur, _, err := s.EntriesSince(ctx, inboxView, store.FolderCursor{})
	if err != nil {
		t.Fatal(err)
	}
	rewrites := sequence(t, s, "rewrites")

	in := newInbound(inboxA, "forged@example.com", 2)
	in.NewStatus = store.StatusSpam
	res := mustInbound(t, s, in)
	if res.Duplicate || res.Conversation == open.Conversation {
		t.Fatalf("AddInbound = %+v, want a new conversation", res)
	}
	if c, err := s.Conversation(ctx, res.Conversation); err != nil || c.Status != store.StatusSpam {
		t.Fatalf("new conversation: status %q, %v; want spam", c.Status, err)
	}
	if got, want := folderRowsOf(t, s, res.Message), []string{"Spam"}; !slices.Equal(got, want) {
		t.Errorf("the quarantined message is in %v, want %v", got, want)
	}
	if got := sequence(t, s, "rewrites"); got != rewrites {
		t.Errorf("storing a quarantined message counted %d rewrites; nothing existing changed", got-rewrites)
	}
	entries, _, _, appended, err := s.EntriesSince(ctx, spamView, spamCur)
	if err != nil || !appended || !slices.Equal(messagesOf(entries), []int64{res.Message}) {
		t.Errorf("Spam read incrementally: %v, appended %v, %v; want message %d appended", messagesOf(entries), appended, err, res.Message)
	}
	entries, _, _, appended, err = s.EntriesSince(ctx, inboxView, inboxCur)
	if err != nil || !appended || len(entries) != 0 {
		t.Errorf("INBOX read incrementally: %v, appended %v, %v; want nothing new", messagesOf(entries), appended, err)
	}

	// Ignored into an existing conversation, and for a duplicate.
	into := newInbound(inboxA, "into@example.com", 3)
	into.Conversation, into.NewStatus = open.Conversation, store.StatusSpam
	mustInbound(t, s, into)
	if c, _ := s.Conversation(ctx, open.Conversation); c.Status != store.StatusOpen {
		t.Errorf("NewStatus moved an existing conversation to %q", c.Status)
	}
	dup := newInbound(inboxA, "open@example.com", 4)
	dup.NewStatus = store.StatusSpam
	if r := mustInbound(t, s, dup); !r.Duplicate {
		t.Fatalf("retry = %+v, want a duplicate", r)
	}
	if c, _ := s.Conversation(ctx, open.Conversation); c.Status != store.StatusOpen {
		t.Errorf("a duplicate with NewStatus moved its conversation to %q", c.Status)
	}

	// A status that is none is refused, and writes nothing.
	bad := newInbound(inboxA, "bad@example.com", 5)
	bad.NewStatus = "deleted"
	if _, err := s.AddInbound(ctx, bad); err == nil {
		t.Error("AddInbound with NewStatus \"deleted\" succeeded")
	}

	// Durable as stored: no second write is needed after a restart.
	s.Close()
	s = openTest(t, dir)
	if c, err := s.Conversation(ctx, res.Conversation); err != nil || c.Status != store.StatusSpam {
		t.Errorf("after a restart: status %q, %v; want spam", c.Status, err)
	}
	if _, err := s.MessageByHeaderID(ctx, "bad@example.com"); err == nil {
		t.Error("the refused message was stored")
	}
}

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
