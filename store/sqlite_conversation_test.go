package store

import (
	"bytes"
	"context"
	"errors"
	"mime"
	"net/mail"
	"strings"
	"testing"
)

func TestAddEvent(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	a := mustInbound(t, s, newInbound("support@example.test", "a@x", 1))
	ev := Event{Conversation: a.Conversation, Type: "delivery-failed", Text: "Delivery to x@y failed:\r\nBcc: evil@x", Detail: "550 5.1.1 no such user\nsecond line", At: at(2)}
	id, err := s.AddEvent(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Message(ctx, id)
	if err != nil || m.Kind != KindEvent || m.Conversation != a.Conversation {
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
	if e, _, _ := s.Entries(ctx, MailboxView{Agent: "a", Folder: FolderInbox, Inboxes: []string{"support@example.test"}}); len(e) != 2 || e[1].Kind != KindEvent {
		t.Errorf("INBOX entries %+v", e)
	}
	if _, err := s.AddEvent(ctx, Event{Conversation: 99, At: at(3)}); !errors.Is(err, ErrNotFound) {
		t.Errorf("event in a missing conversation: %v", err)
	}
}
