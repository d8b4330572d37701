package store

import (
	"mime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Rules every engine keeps alike: where a conversation's messages belong,
// how an event is shown, what keys a view's UIDVALIDITY, the mailboxes every
// agent has. They are here, not in each engine, so that the engines (and
// migrate-store between them) cannot drift apart.

// WantedFolders is where a conversation's messages belong (DESIGN.md §6):
// an open conversation is in INBOX and in Mine (its assignee's) or
// Unassigned; a closed one in Closed; spam in Spam.
func WantedFolders(status Status, assignee string) []Folder {
	switch status {
	case StatusOpen:
		if assignee != "" {
			return []Folder{FolderInbox, FolderMine}
		}
		return []Folder{FolderInbox, FolderUnassigned}
	case StatusClosed:
		return []Folder{FolderClosed}
	case StatusSpam:
		return []Folder{FolderSpam}
	}
	return nil
}

// EventMessage renders an event as a short message the agents' mail
// clients show like any other; it is Auto-Submitted so that nothing answers
// it (RFC 3834).
func EventMessage(inbox string, msg int64, ev Event) []byte {
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

// ScopeKey is the canonical form of a set of inboxes.
func ScopeKey(inboxes []string) string {
	l := append([]string(nil), inboxes...)
	sort.Strings(l)
	return strings.Join(l, ",")
}

// DefaultMailboxes every agent has.
func DefaultMailboxes() []string {
	return []string{MailboxDrafts, MailboxSent, MailboxTrash}
}
