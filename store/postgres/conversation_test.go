package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"testing"

	"github.com/supportgate/supportgate/store"
)

func TestAddEvent(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
	a := mustInbound(t, s, newInbound("support@example.test", "a@x", 1))
	ev := store.Event{Conversation: a.Conversation, Type: "delivery-failed", Text: "Delivery to x@y failed:\r\nBcc: evil@x", Detail: "550 5.1.1 no such user\nsecond line", At: at(2)}
	id, err := s.AddEvent(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Message(ctx, id)
	if err != nil || m.Kind != store.KindEvent || m.Conversation != a.Conversation {
		t.Fatalf("event message %+v %v", m, err)
	}
	raw, _ := s.MessageRaw(ctx, id)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("the event is not a readable message: %v\n%s", err, raw)
	}
	if msg.Header.Get("Bcc") != "" || msg.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("event header: %v", msg.Header)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if !strings.Contains(subject, "Delivery to x@y failed: Bcc: evil@x") || !strings.HasSuffix(subject, "[#1]") {
		t.Errorf("subject %q", subject)
	}
	if !bytes.Contains(raw, []byte("550 5.1.1 no such user\r\nsecond line\r\n")) {
		t.Errorf("detail not in the body:\n%s", raw)
	}
	if e, _, _ := s.Entries(ctx, store.MailboxView{Agent: "a", Folder: store.FolderInbox, Inboxes: []string{"support@example.test"}}); len(e) != 2 || e[1].Kind != store.KindEvent {
		t.Errorf("INBOX entries %+v", e)
	}
	if _, err := s.AddEvent(ctx, store.Event{Conversation: 99, At: at(3)}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("event in a missing conversation: %v", err)
	}
}

func TestUpdateConversation(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
	a := mustInbound(t, s, newInbound("support@example.test", "a@x", 1))
	on, off := true, false
	err := s.UpdateConversation(ctx, store.ConversationUpdate{
		Conversation:    a.Conversation,
		AddParticipants: []string{"p1@x", "p2@x"},
		AddFollowers:    []string{"bob@example.test"},
		ReadOnly:        &on,
		Events: []store.Event{{Type: "participant-added", Text: "p1@x and p2@x joined", At: at(2), Quiet: true},
			{Type: "read-only", Text: "read-only on", At: at(3)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.Conversation(ctx, a.Conversation)
	if !c.ReadOnly || strings.Join(c.Participants, ",") != "p1@x,p2@x" || strings.Join(c.Followers, ",") != "bob@example.test" {
		t.Errorf("after the update: %+v", c)
	}
	evs, err := s.Events(ctx, a.Conversation)
	if err != nil || len(evs) != 2 || !evs[0].Quiet || evs[1].Quiet || evs[1].Text != "read-only on" {
		t.Errorf("events %+v %v", evs, err)
	}
	// Only the loud event is a message.
	if e, _, _ := s.Entries(ctx, store.MailboxView{Agent: "a", Folder: store.FolderInbox, Inboxes: []string{"support@example.test"}}); len(e) != 2 {
		t.Errorf("INBOX has %d entries, want the message and one event", len(e))
	}
	if err := s.UpdateConversation(ctx, store.ConversationUpdate{Conversation: a.Conversation, RemoveParticipants: []string{"p1@x"},
		RemoveFollowers: []string{"bob@example.test"}, ReadOnly: &off}); err != nil {
		t.Fatal(err)
	}
	c, _ = s.Conversation(ctx, a.Conversation)
	if c.ReadOnly || strings.Join(c.Participants, ",") != "p2@x" || len(c.Followers) != 0 {
		t.Errorf("after removing: %+v", c)
	}
	if err := s.UpdateConversation(ctx, store.ConversationUpdate{Conversation: 77}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update of a missing conversation: %v", err)
	}
	// Inbound followers and events come with the message.
	in := newInbound("support@example.test", "b@x", 4)
	in.Conversation, in.NewFollowers = a.Conversation, []string{"carol@example.test"}
	in.Events = []store.Event{{Type: "participants-over-cap", Text: "not added: x@y", At: at(4), Quiet: true}}
	mustInbound(t, s, in)
	c, _ = s.Conversation(ctx, a.Conversation)
	if evs, _ := s.Events(ctx, a.Conversation); len(evs) != 3 || strings.Join(c.Followers, ",") != "carol@example.test" {
		t.Errorf("inbound followers/events: %+v %+v", c, evs)
	}
}

func TestListConversations(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
	a := mustInbound(t, s, newInbound("support@example.test", "a@x", 1))
	b := mustInbound(t, s, newInbound("support@example.test", "b@x", 2))
	in := newInbound("support@example.test", "a2@x", 3)
	in.Conversation = a.Conversation
	mustInbound(t, s, in)
	if err := s.SetStatus(ctx, b.Conversation, store.StatusClosed); err != nil {
		t.Fatal(err)
	}
	all, next, err := s.ListConversations(ctx, "", 0, 10)
	if err != nil || len(all) != 2 || all[0].ID != b.Conversation || next != 0 {
		t.Fatalf("all: %+v next %d %v; want the newest first, one page", all, next, err)
	}
	closed, _, _ := s.ListConversations(ctx, store.StatusClosed, 0, 10)
	if len(closed) != 1 || closed[0].ID != b.Conversation {
		t.Errorf("closed: %+v", closed)
	}
	msgs, err := s.ConversationMessages(ctx, a.Conversation)
	if err != nil || len(msgs) != 2 || msgs[1].MessageIDHeader != "a2@x" {
		t.Errorf("messages: %+v %v", msgs, err)
	}
}

// TestListConversationsPagesStably: pages follow one another by number, and
// conversations updated while the pages are read (which would jump ahead
// in an order by update) are neither missed nor listed twice.
func TestListConversationsPagesStably(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, pg.DSN(t))
	var convs []int64
	for i := range 7 {
		r := mustInbound(t, s, newInbound("support@example.test", fmt.Sprintf("p%d@x", i), i+1))
		convs = append(convs, r.Conversation)
	}
	seen := map[int64]int{}
	var before int64
	for page := 0; ; page++ {
		list, next, err := s.ListConversations(ctx, "", before, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list {
			seen[c.ID]++
		}
		// Between pages, the oldest conversation, not listed yet, gets a
		// message: it becomes the most recently updated.
		if page == 0 {
			in := newInbound("support@example.test", "late@x", 100)
			in.Conversation = convs[0]
			mustInbound(t, s, in)
		}
		if next == 0 {
			break
		}
		if next >= before && before != 0 {
			t.Fatalf("page %d: next %d does not descend from %d", page, next, before)
		}
		before = next
	}
	for _, id := range convs {
		if seen[id] != 1 {
			t.Errorf("conversation %d listed %d times, want once (%v)", id, seen[id], seen)
		}
	}
	if _, _, err := s.ListConversations(ctx, "", 0, 0); err == nil {
		t.Error("a page of 0 was accepted")
	}
}
