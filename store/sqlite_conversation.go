package store

import (
	"context"
	"database/sql"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"
)

// conversationSchema is migration 5: participants, followers, events and
// policies (issue 4).
const conversationSchema = ``

// AddEvent implements ConversationStore.
func (s *SQLite) AddEvent(ctx context.Context, ev Event) (int64, error) {
	var msg int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var inbox string
		if err := tx.QueryRowContext(ctx, `SELECT inbox FROM conversations WHERE id = ?`, ev.Conversation).Scan(&inbox); err != nil {
			if err == sql.ErrNoRows {
				return ErrNotFound
			}
			return err
		}
		var err error
		if msg, err = nextval(ctx, tx, "message"); err != nil {
			return err
		}
		return s.insertMessage(ctx, tx, messageRow{
			id: msg, conv: ev.Conversation, kind: KindEvent, sender: inbox,
			received: millis(ev.At), raw: eventMessage(inbox, msg, ev),
		})
	})
	if err != nil {
		return 0, fmt.Errorf("store: recording event in conversation %d: %w", ev.Conversation, err)
	}
	s.hub.Publish()
	return msg, nil
}

// eventMessage renders an event as a short message the agents' mail
// clients show like any other; it is Auto-Submitted so that nothing answers
// it (RFC 3834).
func eventMessage(inbox string, msg int64, ev Event) []byte {
	oneLine := func(s string) string {
		return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }), " ")
	}
	subject := oneLine(ev.Text)
	if subject == "" {
		subject = oneLine(ev.Type)
	}
	var b strings.Builder
	b.WriteString("From: \"supportgate\" <" + inbox + ">\r\n")
	b.WriteString("To: <" + inbox + ">\r\n")
	b.WriteString("Subject: " + mime.QEncoding.Encode("utf-8", "[event] "+subject+" [#"+strconv.FormatInt(ev.Conversation, 10)+"]") + "\r\n")
	b.WriteString("Date: " + ev.At.Format(time.RFC1123Z) + "\r\n")
	b.WriteString("Message-ID: <event." + strconv.FormatInt(ev.Conversation, 10) + "." + strconv.FormatInt(msg, 10) + "@supportgate.invalid>\r\n")
	b.WriteString("Auto-Submitted: auto-generated\r\n")
	b.WriteString("X-Supportgate-Event: " + oneLine(ev.Type) + "\r\n")
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString(subject + "\r\n")
	if ev.Detail != "" {
		b.WriteString("\r\n" + strings.ReplaceAll(strings.ReplaceAll(ev.Detail, "\r\n", "\n"), "\n", "\r\n") + "\r\n")
	}
	return []byte(b.String())
}
