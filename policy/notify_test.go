package policy

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/domain"
)

func TestNoticeDue(t *testing.T) {
	cfg := config.Notifications{FirstAfter: 5 * time.Minute, Interval: 4 * time.Hour, MaxPerDay: 3}
	t0 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	h := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Hour))) }
	for _, tc := range []struct {
		name string
		cfg  config.Notifications
		st   NoticeState
		want time.Time
		off  bool
	}{
		{"first: first_after after the first unread update", cfg, NoticeState{PendingSince: t0}, t0.Add(5 * time.Minute), false},
		{"next, unread: at least interval after the last", cfg, NoticeState{PendingSince: h(1), LastSent: h(0.5), SentTimes: []time.Time{h(0.5)}}, h(4.5), false},
		{"next, read: the timer starts again", cfg, NoticeState{PendingSince: h(1), LastSent: h(0.5), SentTimes: []time.Time{h(0.5)}, ReadAll: true}, h(1).Add(5 * time.Minute), false},
		{"an update long after the interval: first_after", cfg, NoticeState{PendingSince: h(6), LastSent: h(0.5), SentTimes: []time.Time{h(0.5)}}, h(6).Add(5 * time.Minute), false},
		{"three in the last day: the oldest must be a day old", cfg,
			NoticeState{PendingSince: h(12), LastSent: h(9), SentTimes: []time.Time{h(9), h(1), h(5)}, ReadAll: true}, h(25), false},
		{"two in the last day: room for a third", cfg,
			NoticeState{PendingSince: h(12), LastSent: h(9), SentTimes: []time.Time{h(5), h(9)}, ReadAll: true}, h(12).Add(5 * time.Minute), false},
		{"max_per_day 1", config.Notifications{FirstAfter: time.Minute, Interval: time.Hour, MaxPerDay: 1},
			NoticeState{PendingSince: h(2), LastSent: h(1), SentTimes: []time.Time{h(1)}, ReadAll: true}, h(25), false},
		{"off", config.Notifications{FirstAfter: time.Minute, Interval: time.Hour}, NoticeState{PendingSince: t0}, time.Time{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, on := NoticeDue(tc.cfg, tc.st)
			if on == tc.off || !got.Equal(tc.want) {
				t.Errorf("NoticeDue = %v, %v; want %v, %v", got, on, tc.want, !tc.off)
			}
		})
	}
}

func testNotification() Notification {
	return Notification{
		InboxName: "Example Support", InboxAddress: "support@example.test",
		ReplyTo: "support+tok3n@example.test", To: "cfo@example.test",
		MessageID: "n1.abc@mx.example.test", Conversation: 12, Subject: "Re: Refund for order 42", SubjectTag: "[#12]",
		Status: domain.StatusOpen, Assignee: "bob@example.test",
		Items: []NoticeItem{
			{Kind: domain.KindInbound, Sender: "kim@customer.example", At: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), Text: "Where is my refund?\r\nThanks, Kim"},
			{Kind: domain.KindNote, Sender: "carol@example.test", At: time.Date(2026, 11, 21, 9, 5, 0, 0, time.UTC), Text: "VIP customer — be quick."},
		},
		InReplyTo: "kim-2@customer.example", References: []string{"kim-1@customer.example"},
		Now: time.Date(2026, 11, 21, 9, 10, 0, 0, time.UTC),
	}
}

// TestNotificationMessage: the notification threads into the conversation
// when answered, is marked automatic, and tells of each update.
func TestNotificationMessage(t *testing.T) {
	raw := testNotification().Message()
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not a message: %v\n%s", err, raw)
	}
	h := r.Header
	for field, want := range map[string]string{
		"To":             "<cfo@example.test>",
		"Reply-To":       `"Example Support" <support+tok3n@example.test>`,
		"Message-Id":     "<n1.abc@mx.example.test>",
		"In-Reply-To":    "<kim-2@customer.example>",
		"References":     "<kim-1@customer.example> <kim-2@customer.example>",
		"Auto-Submitted": "auto-generated",
	} {
		if got := h.Get(field); got != want {
			t.Errorf("%s: %q, want %q", field, got, want)
		}
	}
	if s, _ := h.Subject(); s != "2 updates: Refund for order 42 [#12]" {
		t.Errorf("Subject %q", s)
	}
	p, err := r.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(p.Body)
	for _, want := range []string{"You follow conversation #12", "open, assigned to bob@example.test",
		"kim@customer.example wrote", "Where is my refund?\nThanks, Kim",
		"carol@example.test wrote a note for the team", "VIP customer — be quick.", "only the team sees"} {
		if !strings.Contains(strings.ReplaceAll(body.String(), "\r\n", "\n"), want) {
			t.Errorf("the text lacks %q:\n%s", want, body.String())
		}
	}
}

// FuzzNotificationMessage: whatever the customer's subject and texts, the
// notification is one message with one of each field it writes.
func FuzzNotificationMessage(f *testing.F) {
	f.Add("Refund", "text", "kim@customer.example", "id@x")
	f.Add("a\r\nBcc: evil@x.example", "\x00\xff\r\n.\r\n", "x\r\nTo: y@z", "<a>@b c")
	f.Fuzz(func(t *testing.T, subject, text, sender, inReplyTo string) {
		n := testNotification()
		n.Subject, n.InReplyTo = subject, inReplyTo
		n.Items = []NoticeItem{{Kind: domain.KindInbound, Sender: sender, Text: text}}
		raw := n.Message()
		head, _, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
		if !ok {
			t.Fatalf("no header end:\n%q", raw)
		}
		for _, field := range []string{"Subject", "To", "From", "Reply-To", "Bcc", "Message-ID"} {
			count := 0
			for _, l := range strings.Split(string(head), "\r\n") {
				if strings.HasPrefix(strings.ToLower(l), strings.ToLower(field)+":") {
					count++
				}
			}
			if want := map[bool]int{true: 0, false: 1}[field == "Bcc"]; count != want {
				t.Fatalf("%d %s fields, want %d:\n%s", count, field, want, head)
			}
		}
		if bytes.Contains(raw, []byte("\n")) && bytes.Count(raw, []byte("\n")) != bytes.Count(raw, []byte("\r\n")) {
			t.Fatalf("a bare LF in the message:\n%q", raw)
		}
	})
}

// TestNotificationShowsNewest: of many updates, the newest MaxNoticeItems
// are shown and the others counted.
func TestNotificationShowsNewest(t *testing.T) {
	n := testNotification()
	n.Items = nil
	for i := range MaxNoticeItems + 2 {
		n.Items = append(n.Items, NoticeItem{Kind: domain.KindInbound, Sender: fmt.Sprintf("p%02d@customer.example", i), Text: "hello"})
	}
	raw := string(n.Message())
	if !strings.Contains(raw, "2 earlier updates are not shown here.") || strings.Contains(raw, "p01@customer.example") ||
		!strings.Contains(raw, "p02@customer.example") || !strings.Contains(raw, fmt.Sprintf("Subject: %d updates:", MaxNoticeItems+2)) {
		t.Errorf("12 updates:\n%s", raw)
	}
}
