package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/supportgate/supportgate/threading"
)

// maxReferences bounds the References header of outgoing mail. RFC 5322 3.6.4
// asks to keep the chain; very long chains are trimmed the way most clients
// do: the first (the thread's root) and the newest ones.
const maxReferences = 20

// ReplyRewrite is what turns an agent's message into the customer-visible
// reply of DESIGN.md §5 item 6.
type ReplyRewrite struct {
	AgentName    string
	InboxName    string
	InboxAddress string
	ReplyTo      string   // the inbox's reply address with the conversation's token
	To           string   // the conversation's owner
	Cc           []string // every participant of the conversation
	MessageID    string   // the new signed Message-ID, without angle brackets
	SubjectTag   string   // "[#<id>]" when the inbox asks for subject tags, else ""
	// ThreadIndex, when set, is added unless the client wrote its own
	// (Outlook threading, see ChildThreadIndex).
	ThreadIndex *ThreadIndexHeader
	InReplyTo   []string // the customer-visible chain, without angle brackets
	References  []string // oldest first
	Now         time.Time
}

// removedHeaders are the agent client's header fields that never leave:
// hidden recipients, client noise and anything that would reveal or
// impersonate the agent, or forge our own headers. A name ending in '*' is a
// prefix.
var removedHeaders = []string{
	"Bcc",
	"Sender",
	"Return-Path",
	"Disposition-Notification-To", // read-receipt requests reveal the agent
	"Return-Receipt-To",
	"X-Mozilla-*", // Thunderbird's draft state
	"X-Supportgate-*",
}

// replacedHeaders are set by the rewrite whatever the client wrote.
var replacedHeaders = []string{"From", "Reply-To", "To", "Cc", "Message-Id", "In-Reply-To", "References"}

// ErrMalformedMessage is returned when the agent's message has no readable
// header section.
var ErrMalformedMessage = errors.New("the message header cannot be read")

// Rewrite applies r to an agent's raw message and returns the bytes to send.
// The body, and every header field not named above, is kept byte for byte.
func (r ReplyRewrite) Rewrite(raw []byte) ([]byte, error) {
	return editHeader(raw, func(h *textproto.Header) {
		deleteHeaders(h, removedHeaders)
		deleteHeaders(h, replacedHeaders)
		if !h.Has("Date") {
			h.Add("Date", r.Now.Format(time.RFC1123Z))
		}
		// The subject stays as the agent wrote it, with the tag added when
		// it is missing; appending plain text after encoded words is valid
		// (RFC 2047 5).
		if subject := h.Get("Subject"); r.SubjectTag != "" && !strings.Contains(threading.DecodeSubject(subject), r.SubjectTag) {
			h.Del("Subject")
			h.Add("Subject", strings.TrimSpace(subject+" "+r.SubjectTag))
		}
		if ti := r.ThreadIndex; ti != nil && !h.Has("Thread-Index") {
			if ti.Topic != "" && !h.Has("Thread-Topic") {
				h.Add("Thread-Topic", ti.Topic)
			}
			h.Add("Thread-Index", ti.Index)
		}
		// Added in reverse: textproto inserts each new field at the top.
		if refs := trimReferences(r.References); len(refs) > 0 {
			h.Add("References", angleList(refs))
		}
		if len(r.InReplyTo) > 0 {
			h.Add("In-Reply-To", angleList(r.InReplyTo))
		}
		h.Add("Message-Id", "<"+r.MessageID+">")
		if len(r.Cc) > 0 {
			h.Add("Cc", addressList(r.Cc))
		}
		h.Add("To", addressList([]string{r.To}))
		h.Add("Reply-To", addressList([]string{r.ReplyTo}))
		h.Add("From", FromHeader(r.AgentName, r.InboxName, r.InboxAddress))
	})
}

// editHeader applies edit to the header of raw and returns the message with
// the new header and the body byte for byte. Header fields that edit leaves
// alone keep their exact bytes (go-message textproto keeps raw fields).
func editHeader(raw []byte, edit func(h *textproto.Header)) ([]byte, error) {
	br := bufio.NewReader(bytes.NewReader(raw))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedMessage, err)
	}
	edit(&h)
	var out bytes.Buffer
	out.Grow(len(raw) + 512)
	if err := textproto.WriteHeader(&out, h); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedMessage, err)
	}
	if _, err := io.Copy(&out, br); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// FromHeader is `"<agent name> via <inbox name>" <inbox address>`, encoded
// per RFC 2047 when the names are not ASCII.
func FromHeader(agentName, inboxName, inboxAddress string) string {
	a := mail.Address{Name: agentName + " via " + inboxName, Address: inboxAddress}
	return a.String()
}

func deleteHeaders(h *textproto.Header, names []string) {
	fields := h.Fields()
	for fields.Next() {
		key := fields.Key()
		for _, n := range names {
			if prefix, ok := strings.CutSuffix(n, "*"); ok && len(key) >= len(prefix) && strings.EqualFold(key[:len(prefix)], prefix) ||
				strings.EqualFold(key, n) {
				fields.Del()
				break
			}
		}
	}
}

func angleList(ids []string) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("<" + id + ">")
	}
	return b.String()
}

func addressList(addrs []string) string {
	var b strings.Builder
	for i, a := range addrs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString((&mail.Address{Address: a}).String())
	}
	return b.String()
}

func trimReferences(refs []string) []string {
	if len(refs) <= maxReferences {
		return refs
	}
	out := append([]string{refs[0]}, refs[len(refs)-(maxReferences-1):]...)
	return out
}

// RewriteNote prepares an internal note for the store: the agent's message
// as written, less hidden recipients and client noise, with the note's own
// signed Message-ID so that replies to it thread.
func RewriteNote(raw []byte, messageID string) ([]byte, error) {
	return editHeader(raw, func(h *textproto.Header) {
		deleteHeaders(h, removedHeaders)
		deleteHeaders(h, []string{"Message-Id"})
		h.Add("Message-Id", "<"+messageID+">")
	})
}
