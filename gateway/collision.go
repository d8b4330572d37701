package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/policy"
	"github.com/supportgate/supportgate/store"
)

// The collision hold (DESIGN.md §5 item 10): a public reply to a message
// older than the conversation's newest from the customer, a participant or
// another agent's public reply is refused with a sentence that says who
// wrote what since; the agent's client keeps the message, and "#send" at
// its top sends it anyway.

// maxCollisionNews bounds how many messages the sentence names: an SMTP
// reply line is at most 512 octets (RFC 5321 4.5.3.1.5).
const maxCollisionNews = 3

// maxCollisionSentence bounds the sentence, with room for "550 5.7.0 " and
// the line end in 512 octets.
const maxCollisionSentence = 480

// collisionHold returns the hold to record a reply with (store.Outbound.Hold),
// or nil when the reply is not checked: the inbox turns the check off, the
// agent wrote #send, the message answers nothing of this conversation.
func (s *Server) collisionHold(ctx context.Context, inbox config.Inbox, conv int64, inReplyTo []string) (*store.Hold, error) {
	if !inbox.CollisionCheck || conv == 0 || len(inReplyTo) == 0 {
		return nil, nil
	}
	answered, err := s.store.MessageByHeaderID(ctx, inReplyTo[0])
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // a message of no conversation here: nothing to compare
	}
	if err != nil {
		return nil, err
	}
	if answered.Conversation != conv {
		return nil, nil
	}
	// The store checks the hold as it records the reply, in the same
	// transaction (ErrCollision), and only then is what holds it read for
	// the sentence: reading it here as well cost every reply a query as
	// long as the rest of its reads together (issue 18), for the rare
	// reply that is held.
	return &store.Hold{After: answered.ID}, nil
}

// collisionRefusal returns the 550 for a reply that the store held
// (ErrCollision), naming who wrote what since; nil when it finds no one
// (they were gone by the time it read).
func (s *Server) collisionRefusal(ctx context.Context, agent string, conv int64, hold *store.Hold) error {
	// Only what holds the reply, newest first, one more than the sentence
	// names: the store's own condition (store.Outbound.Hold), never the
	// whole conversation.
	msgs, err := s.store.Collisions(ctx, conv, *hold, agent, maxCollisionNews+1)
	if err != nil {
		return err
	}
	var news []string
	for _, m := range msgs {
		did := "replied"
		if m.Kind == store.KindInbound {
			did = "wrote again"
		}
		if len(news) == maxCollisionNews {
			news = append(news, "more")
			break
		}
		line := fmt.Sprintf("%s %s %s", m.Sender, did, ago(time.Since(m.Received)))
		if raw, err := s.store.MessageRaw(ctx, m.ID); err == nil {
			if first := firstLine(raw); first != "" {
				line += fmt.Sprintf(" (%q)", first)
			}
		}
		news = append(news, line)
	}
	if len(news) == 0 {
		return nil
	}
	const format = "Not sent: since the message you answered, %s; read the news and send again, or put #send at the top of your message to send it anyway"
	// The whole reply line stays within RFC 5321's 512 octets.
	for len(news) > 1 && len(format)+len(strings.Join(news, " and ")) > maxCollisionSentence {
		news = append(news[:len(news)-2], "more")
	}
	return refuse(550, smtp.EnhancedCode{5, 7, 0}, format, strings.Join(news, " and "))
}

// ago says how long ago something happened, in words an agent reads at a
// glance.
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < 2*time.Minute:
		return "1 minute ago"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d/time.Minute))
	case d < 2*time.Hour:
		return "1 hour ago"
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
}

// firstLine is the first line of a message's text that is not quoted nor a
// quick action, cut to a few words and to printable ASCII: an SMTP reply is
// ASCII (RFC 5321 4.2).
func firstLine(raw []byte) string {
	text, ok := policy.MessageText(raw)
	if !ok {
		return ""
	}
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, ">") || strings.HasPrefix(l, "#") {
			continue
		}
		l = strings.Map(func(r rune) rune {
			if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == '"' || r == '\\' {
				return '?'
			}
			return r
		}, l)
		if len(l) > 60 {
			l = l[:57] + "..."
		}
		return l
	}
	return ""
}
