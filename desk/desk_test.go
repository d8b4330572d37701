package desk_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/desk"
	"github.com/supportgate/supportgate/policy"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/sqlite"
)

const (
	inbox = "support@example.test"
	alice = "alice@example.test" // admin in the demo configuration
	bob   = "bob@example.test"   // reply
	p1    = "pat@partner.example"
	p2    = "quinn@partner.example"
)

// counting is the desk's store, counting its writes. The desk sees only
// desk.Store, so UpdateConversation is the only write it can make; the
// count says it made exactly one, the transaction.
type counting struct {
	desk.Store
	updates []store.ConversationUpdate
	batches [][]store.ConversationUpdate
}

func (c *counting) UpdateConversation(ctx context.Context, u store.ConversationUpdate) error {
	c.updates = append(c.updates, u)
	return c.Store.UpdateConversation(ctx, u)
}

// UpdateConversations is one transaction too: batches records each.
func (c *counting) UpdateConversations(ctx context.Context, us []store.ConversationUpdate) error {
	c.batches = append(c.batches, us)
	return c.Store.UpdateConversations(ctx, us)
}

// state is what an action may change of a conversation.
type state struct {
	status       store.Status
	assignee     string
	tags         []string // sorted; \Flagged is flagged
	flagged      bool
	participants []string // in the order they were added
	followers    []string // sorted
	readOnly     bool
}

func (s state) String() string {
	return fmt.Sprintf("status=%s assignee=%q tags=%v flagged=%v participants=%v followers=%v read-only=%v",
		s.status, s.assignee, s.tags, s.flagged, s.participants, s.followers, s.readOnly)
}

func stateOf(c store.Conversation) state {
	return state{status: c.Status, assignee: c.Assignee, tags: c.Tags, flagged: c.Flagged,
		participants: c.Participants, followers: c.Followers, readOnly: c.ReadOnly}
}

func (s state) equal(o state) bool {
	return s.status == o.status && s.assignee == o.assignee && slices.Equal(s.tags, o.tags) && s.flagged == o.flagged &&
		slices.Equal(s.participants, o.participants) && slices.Equal(s.followers, o.followers) && s.readOnly == o.readOnly
}

// with returns a copy of s changed by f.
func (s state) with(f func(*state)) state {
	s.tags = slices.Clone(s.tags)
	s.participants = slices.Clone(s.participants)
	s.followers = slices.Clone(s.followers)
	f(&s)
	return s
}

// open is the usual starting point: open, unassigned, tagged billing, two
// participants, followed by bob.
var open = state{status: store.StatusOpen, tags: []string{"billing"}, participants: []string{p1, p2}, followers: []string{bob}}

// fixture is a store with one conversation in the demo configuration.
type fixture struct {
	st    *sqlite.Store
	cfg   *config.Config
	agent config.Agent
}

func newFixture(t *testing.T, showEvents bool) fixture {
	t.Helper()
	cfg, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Inboxes[0].ShowEvents = showEvents
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	agent, ok := cfg.Agent(alice)
	if !ok {
		t.Fatal("the demo configuration has no", alice)
	}
	return fixture{st: st, cfg: cfg, agent: agent}
}

// conversation makes a conversation in state s, written straight to the
// store (no event).
func (f fixture) conversation(t *testing.T, s state) int64 {
	t.Helper()
	ctx := context.Background()
	res, err := f.st.AddInbound(ctx, store.Inbound{Inbox: inbox, Owner: "gina@customer.example", Subject: "Printer",
		Sender: "gina@customer.example", Raw: []byte("From: gina@customer.example\r\nSubject: Printer\r\n\r\nhello\r\n"),
		Received: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	tags := slices.Clone(s.tags)
	if s.flagged {
		tags = append(tags, store.KeywordFlagged)
	}
	status, assignee, readOnly := s.status, s.assignee, s.readOnly
	if err := f.st.UpdateConversation(ctx, store.ConversationUpdate{Conversation: res.Conversation,
		AddParticipants: s.participants, AddFollowers: s.followers, ReadOnly: &readOnly,
		AddTags: tags, Assignee: &assignee, Status: &status}); err != nil {
		t.Fatal(err)
	}
	c, err := f.st.Conversation(ctx, res.Conversation)
	if err != nil {
		t.Fatal(err)
	}
	if got := stateOf(c); !got.equal(s) {
		t.Fatalf("the starting conversation is %v, want %v", got, s)
	}
	return res.Conversation
}

type action struct {
	name  string
	start state
	do    func(d *desk.Desk, a config.Agent, conv int64) error
	want  state
	event store.Event // Type and Text
}

// actions are DESIGN.md §5 item 4's quick actions (§7's assignment,
// followers and read-only among them), §6's folder moves, EXPUNGEs and
// keywords.
func actions() []action {
	ctx := context.Background()
	qa := func(text string) store.Event { return store.Event{Type: "quick-actions", Text: alice + ": " + text} }
	folder := func(text string) store.Event { return store.Event{Type: "folder-action", Text: alice + " " + text} }
	tags := func(text string) store.Event { return store.Event{Type: "tags-changed", Text: alice + " " + text} }
	closed := open.with(func(s *state) { s.status = store.StatusClosed })
	mine := open.with(func(s *state) { s.assignee = alice })
	return []action{
		{"assign an agent", open,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Assign(ctx, a, c, bob) },
			open.with(func(s *state) { s.assignee = bob }), qa("#assign " + bob)},
		{"assign me", open,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Assign(ctx, a, c, "me") },
			mine, qa("#assign me")},
		{"assign none", mine,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Assign(ctx, a, c, "") },
			open, qa("#assign none")},
		{"close", open,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Close(ctx, a, c) },
			closed, qa("#close")},
		{"reopen", closed,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Reopen(ctx, a, c) },
			open, qa("#open")},
		{"spam", open,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Spam(ctx, a, c) },
			open.with(func(s *state) { s.status = store.StatusSpam }), qa("#spam")},
		{"tag", open,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Tag(ctx, a, c, "urgent", "vip") },
			open.with(func(s *state) { s.tags = []string{"billing", "urgent", "vip"} }), qa("#tag urgent vip")},
		{"untag", open,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Untag(ctx, a, c, "billing", "unknown") },
			open.with(func(s *state) { s.tags = nil }), qa("#untag billing unknown")},
		{"flag", open,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Flag(ctx, a, c, true) },
			open.with(func(s *state) { s.flagged = true }), tags(`added \Flagged`)},
		{"unflag", open.with(func(s *state) { s.flagged = true }),
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Flag(ctx, a, c, false) },
			open, tags(`removed \Flagged`)},
		{"uncc", open,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Uncc(ctx, a, c, strings.ToUpper(p1)) },
			open.with(func(s *state) { s.participants = []string{p2} }), qa("#uncc " + strings.ToUpper(p1))},
		{"follow me", open,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Follow(ctx, a, c, "") },
			open.with(func(s *state) { s.followers = []string{alice, bob} }), qa("#follow")},
		{"follow someone", open,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Follow(ctx, a, c, "Carol@Example.test") },
			open.with(func(s *state) { s.followers = []string{bob, "carol@example.test"} }), qa("#follow Carol@Example.test")},
		{"unfollow someone", open,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Unfollow(ctx, a, c, bob) },
			open.with(func(s *state) { s.followers = nil }), qa("#unfollow " + bob)},
		{"unfollow me", open.with(func(s *state) { s.followers = []string{alice} }),
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Unfollow(ctx, a, c, "") },
			open.with(func(s *state) { s.followers = nil }), qa("#unfollow")},
		{"read-only on", open,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.ReadOnly(ctx, a, c, true) },
			open.with(func(s *state) { s.readOnly = true }), qa("#readonly on")},
		{"read-only off", open.with(func(s *state) { s.readOnly = true }),
			func(d *desk.Desk, a config.Agent, c int64) error { return d.ReadOnly(ctx, a, c, false) },
			open, qa("#readonly off")},
		{"#send, #side and #merge say how a message goes: not changes", open,
			func(d *desk.Desk, a config.Agent, c int64) error {
				return d.QuickActions(ctx, a, c, []policy.Action{{Kind: policy.ActionSend}, {Kind: policy.ActionSide},
					{Kind: policy.ActionMerge, Args: []string{"7"}}, {Kind: policy.ActionTag, Args: []string{"vip"}}})
			},
			open.with(func(s *state) { s.tags = []string{"billing", "vip"} }), qa("#tag vip")},
		{"quick actions together", open,
			func(d *desk.Desk, a config.Agent, c int64) error {
				return d.QuickActions(ctx, a, c, []policy.Action{
					{Kind: policy.ActionAssign, Args: []string{"me"}}, {Kind: policy.ActionTag, Args: []string{"vip"}},
					{Kind: policy.ActionUntag, Args: []string{"billing"}}, {Kind: policy.ActionClose},
					{Kind: policy.ActionFollow}, {Kind: policy.ActionUncc, Args: []string{p2}},
				})
			},
			closed.with(func(s *state) {
				s.assignee, s.tags, s.followers, s.participants = alice, []string{"vip"}, []string{alice, bob}, []string{p1}
			}),
			qa("#assign me · #tag vip · #untag billing · #close · #follow · #uncc " + p2)},
		{"a later quick action overrides", open,
			func(d *desk.Desk, a config.Agent, c int64) error {
				return d.QuickActions(ctx, a, c, []policy.Action{
					{Kind: policy.ActionTag, Args: []string{"vip"}}, {Kind: policy.ActionUntag, Args: []string{"vip"}},
					{Kind: policy.ActionSpam}, {Kind: policy.ActionOpen},
				})
			},
			open, qa("#tag vip · #untag vip · #spam · #open")},

		// DESIGN.md §6: moving a message into a folder.
		{"move to Mine", closed.with(func(s *state) { s.assignee = bob }),
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Move(ctx, a, c, store.FolderMine) },
			mine, folder("took it (Mine): assigned to them")},
		{"move to Unassigned", closed.with(func(s *state) { s.assignee = bob }),
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Move(ctx, a, c, store.FolderUnassigned) },
			open, folder("moved it to Unassigned: no assignee")},
		{"move to Closed", mine,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Move(ctx, a, c, store.FolderClosed) },
			closed.with(func(s *state) { s.assignee = alice }), folder("closed it")},
		{"move to Spam", open,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Move(ctx, a, c, store.FolderSpam) },
			open.with(func(s *state) { s.status = store.StatusSpam }), folder("marked it spam")},
		{"move to INBOX", open.with(func(s *state) { s.status = store.StatusSpam }),
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Move(ctx, a, c, store.FolderInbox) },
			open, folder("reopened it")},
		{"move to Trash", open,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Move(ctx, a, c, desk.Trash) },
			closed, folder("moved it to Trash: closed")},

		// DESIGN.md §6: EXPUNGE of \Deleted messages in a shared folder.
		{"expunge in Mine", mine,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Expunge(ctx, a, c, store.FolderMine) },
			open, folder("expunged it from Mine: no assignee")},
		{"expunge in INBOX", mine,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Expunge(ctx, a, c, store.FolderInbox) },
			closed.with(func(s *state) { s.assignee = alice }), folder("expunged it from INBOX: closed")},
		{"expunge in Unassigned", open,
			func(d *desk.Desk, a config.Agent, c int64) error { return d.Expunge(ctx, a, c, store.FolderUnassigned) },
			closed, folder("expunged it from Unassigned: closed")},

		// DESIGN.md §6: keywords are the conversation's.
		{"STORE +FLAGS", open,
			func(d *desk.Desk, a config.Agent, c int64) error {
				return d.Keywords(ctx, a, c, desk.AddKeywords, []string{"vip", store.KeywordFlagged}, nil)
			},
			open.with(func(s *state) { s.tags, s.flagged = []string{"billing", "vip"}, true }), tags(`added vip \Flagged`)},
		{"STORE -FLAGS", open.with(func(s *state) { s.flagged = true }),
			func(d *desk.Desk, a config.Agent, c int64) error {
				return d.Keywords(ctx, a, c, desk.RemoveKeywords, []string{"billing", store.KeywordFlagged}, nil)
			},
			open.with(func(s *state) { s.tags = nil }), tags(`removed billing \Flagged`)},
		{"STORE FLAGS", open,
			func(d *desk.Desk, a config.Agent, c int64) error {
				return d.Keywords(ctx, a, c, desk.SetKeywords, []string{"vip"}, []string{"billing"})
			},
			open.with(func(s *state) { s.tags = []string{"vip"} }), tags("set vip")},
		{"STORE FLAGS that only removes", open.with(func(s *state) { s.flagged = true }),
			func(d *desk.Desk, a config.Agent, c int64) error {
				return d.Keywords(ctx, a, c, desk.SetKeywords, nil, []string{"billing", store.KeywordFlagged})
			},
			open.with(func(s *state) { s.tags = nil }), tags(`removed billing \Flagged`)},
	}
}

// TestActions: each action, from its starting conversation, leaves the
// expected conversation and exactly one new event with its type and text,
// shown (a message in the conversation) only when the inbox sets
// show_events, and was one UpdateConversation: one transaction.
func TestActions(t *testing.T) {
	for _, show := range []bool{false, true} {
		f := newFixture(t, show)
		for _, tc := range actions() {
			t.Run(fmt.Sprintf("%s/show_events=%v", tc.name, show), func(t *testing.T) {
				ctx := context.Background()
				conv := f.conversation(t, tc.start)
				evsBefore, err := f.st.Events(ctx, conv)
				if err != nil {
					t.Fatal(err)
				}
				msgsBefore, err := f.st.ConversationMessages(ctx, conv)
				if err != nil {
					t.Fatal(err)
				}
				st := &counting{Store: f.st}
				d := desk.New(st, func() *config.Config { return f.cfg })
				if err := tc.do(d, f.agent, conv); err != nil {
					t.Fatal(err)
				}
				if len(st.updates) != 1 {
					t.Fatalf("%d UpdateConversation calls, want 1 transaction", len(st.updates))
				}
				if u := st.updates[0]; u.Conversation != conv || len(u.Events) != 1 {
					t.Errorf("the transaction is for conversation %d with %d events, want %d with 1", u.Conversation, len(u.Events), conv)
				}
				c, err := f.st.Conversation(ctx, conv)
				if err != nil {
					t.Fatal(err)
				}
				if got := stateOf(c); !got.equal(tc.want) {
					t.Errorf("after: %v\nwant:  %v", got, tc.want)
				}
				evs, err := f.st.Events(ctx, conv)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) != len(evsBefore)+1 {
					t.Fatalf("%d new events, want 1: %+v", len(evs)-len(evsBefore), evs[len(evsBefore):])
				}
				ev := evs[len(evs)-1]
				if ev.Type != tc.event.Type || ev.Text != tc.event.Text || ev.Quiet == show {
					t.Errorf("event %q %q quiet=%v, want %q %q quiet=%v", ev.Type, ev.Text, ev.Quiet, tc.event.Type, tc.event.Text, !show)
				}
				msgs, err := f.st.ConversationMessages(ctx, conv)
				if err != nil {
					t.Fatal(err)
				}
				wantMsgs := len(msgsBefore)
				if show {
					wantMsgs++
				}
				if len(msgs) != wantMsgs || show && msgs[len(msgs)-1].Kind != store.KindEvent {
					t.Errorf("%d messages after the action, want %d (show_events=%v)", len(msgs), wantMsgs, show)
				}
			})
		}
	}
}

// TestNoChangeWritesNothing: a STORE that changes no keyword of the
// conversation, and an EXPUNGE in Closed or Spam (the agent's own hide
// mark, gateway/imapgw's), are no change of the conversation: no
// transaction, no event.
func TestNoChangeWritesNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, true)
	conv := f.conversation(t, open)
	st := &counting{Store: f.st}
	d := desk.New(st, func() *config.Config { return f.cfg })
	for _, op := range []desk.KeywordOp{desk.AddKeywords, desk.RemoveKeywords, desk.SetKeywords} {
		if err := d.Keywords(ctx, f.agent, conv, op, nil, nil); err != nil {
			t.Errorf("op %d: %v", op, err)
		}
	}
	for _, from := range []store.Folder{store.FolderClosed, store.FolderSpam} {
		if err := d.Expunge(ctx, f.agent, conv, from); err == nil {
			t.Errorf("Expunge in %s: no error", from)
		}
	}
	if len(st.updates) != 0 {
		t.Errorf("%d transactions, want none", len(st.updates))
	}
	if evs, _ := f.st.Events(ctx, conv); len(evs) != 0 {
		t.Errorf("events: %+v", evs)
	}
}

// TestActionsOnSeveral: an IMAP command's action on the conversations of
// the messages it names (MoveAll, ExpungeAll, KeywordsAll) is one
// transaction with an event for each conversation; a conversation named
// twice changes once, and one without a change is left out.
func TestActionsOnSeveral(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, false)
	a, b := f.conversation(t, open), f.conversation(t, open)
	st := &counting{Store: f.st}
	d := desk.New(st, func() *config.Config { return f.cfg })
	check := func(what string, want int, status store.Status, assignee string) {
		t.Helper()
		if len(st.updates) != 0 || len(st.batches) != 1 || len(st.batches[0]) != want {
			t.Fatalf("%s: %d single transactions and batches %v, want one batch of %d", what, len(st.updates), st.batches, want)
		}
		for _, u := range st.batches[0] {
			if len(u.Events) != 1 {
				t.Errorf("%s: conversation %d with %d events, want 1", what, u.Conversation, len(u.Events))
			}
		}
		for _, conv := range []int64{a, b} {
			c, err := f.st.Conversation(ctx, conv)
			if err != nil {
				t.Fatal(err)
			}
			if c.Status != status || c.Assignee != assignee {
				t.Errorf("%s: conversation %d is %s assigned %q, want %s %q", what, conv, c.Status, c.Assignee, status, assignee)
			}
		}
		st.batches = nil
	}
	if err := d.MoveAll(ctx, f.agent, []int64{a, b, a}, store.FolderMine); err != nil {
		t.Fatal(err)
	}
	check("MoveAll to Mine", 2, store.StatusOpen, alice)
	if err := d.ExpungeAll(ctx, f.agent, []int64{a, b}, store.FolderMine); err != nil {
		t.Fatal(err)
	}
	check("ExpungeAll from Mine", 2, store.StatusOpen, "")
	// FLAGS (\Flagged) on a that saw billing: billing dropped; b saw none.
	drop := func(conv int64) []string {
		if conv == a {
			return []string{"billing"}
		}
		return nil
	}
	if err := d.KeywordsAll(ctx, f.agent, []int64{a, b}, desk.SetKeywords, nil, drop); err != nil {
		t.Fatal(err)
	}
	if len(st.updates) != 1 || st.updates[0].Conversation != a || len(st.batches) != 0 {
		t.Errorf("KeywordsAll with one change: single %v, batches %v; want a's alone", st.updates, st.batches)
	}
}

// TestUnknownConversation: an action on a conversation that does not
// exist writes nothing and says so (store.ErrNotFound).
func TestUnknownConversation(t *testing.T) {
	f := newFixture(t, false)
	st := &counting{Store: f.st}
	d := desk.New(st, func() *config.Config { return f.cfg })
	if err := d.Close(context.Background(), f.agent, 999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Close of conversation 999: %v, want store.ErrNotFound", err)
	}
	if len(st.updates) != 0 {
		t.Errorf("%d transactions, want none", len(st.updates))
	}
}

// TestQuickActionsUpdate: the change that commits with an agent's message
// (store.Outbound.Update) is the quick actions' mapping with its one event,
// quiet per show_events, for the caller to commit.
func TestQuickActionsUpdate(t *testing.T) {
	f := newFixture(t, false)
	d := desk.New(f.st, func() *config.Config { return f.cfg })
	in := f.cfg.Inboxes[0]
	for _, show := range []bool{false, true} {
		in.ShowEvents = show
		u := d.QuickActionsUpdate(in, f.agent, []policy.Action{{Kind: policy.ActionAssign, Args: []string{"ME"}},
			{Kind: policy.ActionReadOnly, Args: []string{"on"}}})
		if u.Conversation != 0 || u.Assignee == nil || *u.Assignee != alice || u.ReadOnly == nil || !*u.ReadOnly || u.Status != nil {
			t.Errorf("update %+v", u)
		}
		if len(u.Events) != 1 || u.Events[0].Type != "quick-actions" || u.Events[0].Text != alice+": #assign ME · #readonly on" ||
			u.Events[0].Quiet == show {
			t.Errorf("show_events=%v: events %+v", show, u.Events)
		}
	}
}
