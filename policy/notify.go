package policy

import (
	"fmt"
	"mime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/domain"
)

// Follower notifications (DESIGN.md §7): when one is due, and its bytes.

// NoticeState is what decides when a follower's next notification about a
// conversation is due.
type NoticeState struct {
	PendingSince time.Time   // when the first update not yet told arrived
	LastSent     time.Time   // the last notification; zero: never
	SentTimes    []time.Time // the notifications of the last 24 hours, oldest first
	// ReadAll: the follower has read what they were last told (an agent's
	// \Seen; for others, they wrote into the conversation since), so the
	// timer starts again at first_after.
	ReadAll bool
}

// NoticeDue returns when the next notification may go out; false when
// notifications are off (max_per_day = 0).
//
//   - the first, first_after after the first unread update;
//   - while the follower has not read what they were told, the next at
//     least interval after the last;
//   - at most max_per_day in any 24 hours.
func NoticeDue(cfg config.Notifications, st NoticeState) (time.Time, bool) {
	if cfg.MaxPerDay <= 0 {
		return time.Time{}, false
	}
	due := st.PendingSince.Add(cfg.FirstAfter)
	if !st.LastSent.IsZero() && !st.ReadAll {
		due = later(due, st.LastSent.Add(cfg.Interval))
	}
	sent := slices.Clone(st.SentTimes)
	slices.SortFunc(sent, func(a, b time.Time) int { return a.Compare(b) })
	// Of the last max_per_day sends, the oldest must be a day old.
	if n := len(sent); n >= cfg.MaxPerDay {
		due = later(due, sent[n-cfg.MaxPerDay].Add(24*time.Hour))
	}
	return due, true
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// NoticeItem is one update a notification tells of.
type NoticeItem struct {
	Kind   domain.Kind
	Sender string
	At     time.Time
	Text   string // what the sender typed (MessageText); cut to maxNoticeText here
}

// Notification is a notification mail to one follower about one
// conversation.
type Notification struct {
	InboxName, InboxAddress string
	ReplyTo                 string // the conversation's reply address: a reply threads into it
	To                      string // the follower
	MessageID               string // without angle brackets
	Conversation            int64
	Subject                 string // the conversation's
	SubjectTag              string // "[#12]" when the inbox tags subjects
	Status                  domain.Status
	Assignee                string
	Items                   []NoticeItem // oldest first; the newest MaxNoticeItems are shown (the others need no Text)
	// InReplyTo and References name the newest update, so the
	// notification threads with the conversation in the follower's client.
	InReplyTo  string
	References []string
	Now        time.Time
}

// What one notification shows at most: its newest MaxNoticeItems updates,
// maxNoticeText characters of each; it counts the others.
const (
	MaxNoticeItems = 10
	maxNoticeText  = 2000
)

// Message returns the notification's bytes. As in AutoAck.Message, every
// value is made safe: nothing from a customer can add a header field.
func (n Notification) Message() []byte {
	subject := ackSubject(n.Subject)
	what := "Update"
	if len(n.Items) > 1 {
		what = strconv.Itoa(len(n.Items)) + " updates"
	}
	s := what + ": " + orNone(subject)
	if n.SubjectTag != "" && !strings.Contains(s, n.SubjectTag) {
		s += " " + n.SubjectTag
	}
	fields := []field{
		{"Date", n.Now.Format(time.RFC1123Z)},
		{"From", addr(oneLine(n.InboxName), n.InboxAddress)},
		{"Reply-To", addr(oneLine(n.InboxName), n.ReplyTo)},
		{"To", addr("", n.To)},
		{"Subject", mime.QEncoding.Encode("utf-8", s)},
		{"Message-ID", "<" + n.MessageID + ">"},
	}
	if parent := safeIDs([]string{n.InReplyTo}); len(parent) == 1 {
		fields = append(fields, field{"In-Reply-To", angleList(parent)},
			field{"References", angleList(slices.Concat(trimReferences(safeIDs(n.References)), parent))})
	}
	fields = append(fields,
		// RFC 3834 5: a message no person wrote; responders leave it alone.
		field{"Auto-Submitted", "auto-generated"},
		field{"X-Auto-Response-Suppress", "All"},
	)
	return plainTextMessage(fields, n.text(subject))
}

func (n Notification) text(subject string) string {
	var b strings.Builder
	state := string(n.Status)
	if n.Assignee != "" {
		state += ", assigned to " + n.Assignee
	} else {
		state += ", unassigned"
	}
	fmt.Fprintf(&b, "You follow conversation #%d, %q, in %s (%s).\n", n.Conversation, orNone(subject), oneLine(n.InboxName), state)
	items := n.Items
	if len(items) > MaxNoticeItems {
		fmt.Fprintf(&b, "\n%d earlier updates are not shown here.\n", len(items)-MaxNoticeItems)
		items = items[len(items)-MaxNoticeItems:]
	}
	for _, it := range items {
		verb := "wrote"
		switch it.Kind {
		case domain.KindReply:
			verb = "replied to the customer"
		case domain.KindNote:
			verb = "wrote a note for the team"
		case domain.KindSide:
			verb = "wrote in a side conversation"
		}
		fmt.Fprintf(&b, "\n--- %s %s, %s:\n\n", oneLine(it.Sender), verb, it.At.UTC().Format("Mon, 2 Jan 2006 15:04 MST"))
		b.WriteString(noticeText(it.Text))
		b.WriteString("\n")
	}
	b.WriteString("\n-- \nReply to this mail to write into the conversation; only the team sees what you write.\n")
	return b.String()
}

// noticeText is an update's text cut to maxNoticeText characters, as
// valid UTF-8 with LF line ends.
func noticeText(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\r\n", "\n"), "\uFFFD")
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r", "\n"))
	if utf8.RuneCountInString(s) > maxNoticeText {
		s = string([]rune(s)[:maxNoticeText]) + "\n[…]"
	}
	if s == "" {
		s = "(no text)"
	}
	return s
}
