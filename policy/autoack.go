package policy

// Automatic acknowledgements (DESIGN.md §7): whether an inbound message gets
// one, and its bytes. RFC 3834 sections are cited where they decide.

import (
	"bytes"
	"mime"
	"mime/quotedprintable"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/threading"
)

// AckInput is what decides whether an inbound message is acknowledged.
type AckInput struct {
	Inbox config.Inbox // the inbox of the conversation
	// NewConversation: the message opened a conversation, or is a copy of
	// the one that did (a client's retry). Only new requests are
	// acknowledged: a reply into a
	// conversation is answered by the team, and acknowledging every message
	// would be the "useless or unwanted responses" RFC 3834 1 warns of.
	NewConversation bool
	ReturnPath      string           // the envelope sender (MAIL FROM), "" for the null sender
	From            string           // the From address, "" when unreadable
	Header          threading.Header // the message's header
	// AuthFailed: SPF or DMARC failed (policy.AuthFailure), whatever the
	// inbox's auth_failure; the sender may be forged, and an answer would
	// be backscatter to whoever was impersonated.
	AuthFailed bool
	// Quarantined: the conversation went to Spam.
	Quarantined bool
}

// AckDecision says whom to acknowledge: To is the recipient, or "" with
// the Reason why not.
type AckDecision struct {
	To     string
	Reason string
}

// ackHeaderRules are header fields that mark mail no person wrote to us
// alone: mailing lists and reports. A rule with a mediaType matches when the
// field's media type is that one.
var ackHeaderRules = []struct {
	field, mediaType, reason string
}{
	{field: "List-Id", reason: "mail from a mailing list"},          // RFC 2919; RFC 3834 2
	{field: "List-Unsubscribe", reason: "mail from a mailing list"}, // RFC 2369
	{field: "List-Post", reason: "mail from a mailing list"},        // RFC 2369
	{field: "List-Help", reason: "mail from a mailing list"},        // RFC 2369
	{field: "Mailing-List", reason: "mail from a mailing list"},     // ezmlm, Yahoo Groups
	{field: "X-Mailing-List", reason: "mail from a mailing list"},
	// RFC 6522: delivery status notifications (RFC 3464), disposition
	// notifications (RFC 8098) and abuse reports (RFC 5965) are all reports.
	{field: "Content-Type", mediaType: "multipart/report", reason: "a report (bounce or receipt)"},
}

// robotLocalParts are addresses no person reads (RFC 3834 2: a responder
// SHOULD NOT answer "owner-*", "*-request", "MAILER-DAEMON"...). Each entry
// is an exact local part, or a prefix ending in '*' or a suffix starting
// with '*'.
var robotLocalParts = []string{
	"mailer-daemon", "postmaster", "listserv", "majordomo",
	"noreply", "no-reply", "donotreply", "do-not-reply",
	"owner-*", "*-request", "*-owner", "bounce", "bounces", "bounce-*", "bounces-*", "bounce+*", "bounces+*",
}

// DecideAutoAck decides whether a message gets an automatic
// acknowledgement and to whom. The rules apply in order; the first that
// matches says why not.
func DecideAutoAck(cfg *config.Config, in AckInput) AckDecision {
	to := strings.ToLower(strings.TrimSpace(in.ReturnPath))
	from := strings.ToLower(strings.TrimSpace(in.From))
	no := func(reason string) AckDecision { return AckDecision{Reason: reason} }
	switch {
	case !in.Inbox.AutoAcknowledge:
		return no("the inbox does not acknowledge")
	case !in.NewConversation:
		return no("the message continues a conversation")
	// RFC 3834 2: never respond to a null return path (RFC 5321 4.5.5:
	// bounces and other notifications); RFC 3834 4: the response goes to
	// the envelope return path, so there is nobody to send it to.
	case to == "" || to == "<>":
		return no("the return path is null (a bounce or a notification)")
	// RFC 3834 2: no response to Auto-Submitted other than "no", nor to
	// Precedence bulk, list or junk (threading.IsAutoReply's table).
	case in.Header != nil && threading.IsAutoReply(in.Header, to):
		return no("an automatic message (RFC 3834)")
	}
	if in.Header != nil {
		for _, r := range ackHeaderRules {
			v := strings.TrimSpace(in.Header.Get(r.field))
			if v == "" {
				continue
			}
			if r.mediaType == "" {
				return no(r.reason)
			}
			if mt, _, err := mime.ParseMediaType(v); err == nil && mt == r.mediaType {
				return no(r.reason)
			}
		}
	}
	switch {
	case !plainAddress(to):
		return no("the return path is not a plain address")
	case isRobot(to) || from != "" && isRobot(from):
		return no("a robot's address (RFC 3834 2)")
	case IsInternal(cfg, to) || from != "" && IsInternal(cfg, from):
		return no("mail from an agent or a support address")
	case cfg.Blocked(in.Inbox, to) || from != "" && cfg.Blocked(in.Inbox, from):
		return no("a blocked sender")
	case in.AuthFailed:
		return no("the sender is not authenticated (SPF or DMARC failed)")
	case in.Quarantined:
		return no("the conversation is quarantined as spam")
	}
	return AckDecision{To: to}
}

// isRobot reports whether an address's local part is in robotLocalParts.
func isRobot(addr string) bool {
	local, _, _ := strings.Cut(addr, "@")
	for _, p := range robotLocalParts {
		switch {
		case strings.HasSuffix(p, "*"):
			if strings.HasPrefix(local, strings.TrimSuffix(p, "*")) {
				return true
			}
		case strings.HasPrefix(p, "*"):
			if strings.HasSuffix(local, strings.TrimPrefix(p, "*")) {
				return true
			}
		case local == p:
			return true
		}
	}
	return false
}

// plainAddress reports whether addr is local@domain in printable ASCII
// without spaces, quotes or brackets: what can be written into a To field
// and an RCPT TO as it is. Anything else gets no answer.
func plainAddress(addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 || len(addr) > 254 {
		return false
	}
	for i := 0; i < len(addr); i++ {
		if c := addr[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`"()<>[]\,;:`, c) >= 0 {
			return false
		}
	}
	return !strings.Contains(addr[at+1:], "@")
}

// AutoAck is an automatic acknowledgement of a new conversation.
type AutoAck struct {
	InboxName    string
	InboxAddress string
	ReplyTo      string // the inbox's reply address with the conversation's token
	To           string // from DecideAutoAck
	MessageID    string // the new signed Message-ID, without angle brackets
	Conversation int64
	Subject      string // the customer's subject, decoded
	SubjectTag   string // "[#<id>]" when the inbox asks for subject tags, else ""
	InReplyTo    string // the customer's Message-ID, without angle brackets; "" if none
	References   []string
	Text         string // the inbox's auto_acknowledge_text
	Now          time.Time
}

// maxAckSubject bounds the customer's subject quoted in an acknowledgement,
// in characters.
const maxAckSubject = 200

// Message returns the acknowledgement's bytes (RFC 5322, CRLF line ends).
// Every value from the customer or the configuration is made safe here:
// control characters become spaces, non-ASCII is encoded (RFC 2047 in the
// header, quoted-printable in the body), so nothing can add a header field.
func (a AutoAck) Message() []byte {
	subject := ackSubject(a.Subject)
	id := strconv.FormatInt(a.Conversation, 10)

	fields := []field{
		{"Date", a.Now.Format(time.RFC1123Z)},
		// RFC 3834 3.1.1, 3.1.2: from the responder; replies go to the
		// conversation's reply address, so they thread into it.
		{"From", addr(oneLine(a.InboxName), a.InboxAddress)},
		{"Reply-To", addr("", a.ReplyTo)},
		{"To", addr("", a.To)}, // RFC 3834 3.1.3
	}
	// RFC 3834 3.1.4: the subject says the message is automatic ("Auto: "),
	// followed by the original subject; "Re:" would claim a person replied.
	s := "Auto: " + subject
	if subject == "" {
		s = "Auto: your request #" + id
	}
	if a.SubjectTag != "" && !strings.Contains(s, a.SubjectTag) {
		s += " " + a.SubjectTag
	}
	fields = append(fields, field{"Subject", mime.QEncoding.Encode("utf-8", s)}, field{"Message-ID", "<" + a.MessageID + ">"})
	// RFC 3834 3.1.5: In-Reply-To and References per RFC 5322 3.6.4, so the
	// acknowledgement threads under the customer's message.
	if parent := safeIDs([]string{a.InReplyTo}); len(parent) == 1 {
		fields = append(fields, field{"In-Reply-To", angleList(parent)},
			field{"References", angleList(slices.Concat(trimReferences(safeIDs(a.References)), parent))})
	}
	fields = append(fields,
		// RFC 3834 3.1.7 and 5: marks the response automatic, so that other
		// responders do not answer it; Exchange honours its own field.
		field{"Auto-Submitted", "auto-replied"},
		field{"X-Auto-Response-Suppress", "All"},
	)
	text := strings.NewReplacer("{id}", id, "{subject}", orNone(subject), "{inbox}", oneLine(a.InboxName)).Replace(a.Text)
	return plainTextMessage(fields, text)
}

// field is one header field of a generated message.
type field struct{ k, v string }

// addr is an address field's value, the name encoded as RFC 2047 needs.
func addr(name, address string) string { return (&mail.Address{Name: name, Address: address}).String() }

// plainTextMessage writes a generated message: fields in the order given
// (their values already safe), then text as UTF-8 quoted-printable with
// CRLF line ends.
func plainTextMessage(fields []field, text string) []byte {
	fields = append(fields,
		field{"MIME-Version", "1.0"},
		field{"Content-Type", "text/plain; charset=utf-8"},
		field{"Content-Transfer-Encoding", "quoted-printable"},
	)
	// textproto adds each new field at the top, so they are added in reverse.
	var h textproto.Header
	for i := len(fields) - 1; i >= 0; i-- {
		h.Add(fields[i].k, fields[i].v)
	}
	text = strings.ReplaceAll(text, "\r\n", "\n")

	var out bytes.Buffer
	// The fields are checked by the callers, so WriteHeader cannot fail; a
	// field it refused would be left out rather than break the message.
	textproto.WriteHeader(&out, h)
	qp := quotedprintable.NewWriter(&out)
	qp.Write([]byte(text))
	qp.Close()
	if !bytes.HasSuffix(out.Bytes(), []byte("\r\n")) {
		out.WriteString("\r\n")
	}
	return out.Bytes()
}

// ackSubject makes the customer's subject one safe line of at most
// maxAckSubject characters, without a leading "Re:"-like prefix.
func ackSubject(s string) string {
	s = strings.TrimSpace(oneLine(s))
	for {
		lower := strings.ToLower(s)
		cut := false
		for _, p := range []string{"re:", "aw:", "sv:", "fwd:", "fw:", "auto:"} {
			if strings.HasPrefix(lower, p) {
				s, cut = strings.TrimSpace(s[len(p):]), true
			}
		}
		if !cut {
			break
		}
	}
	if utf8.RuneCountInString(s) > maxAckSubject {
		r := []rune(s)
		s = strings.TrimSpace(string(r[:maxAckSubject])) + "…"
	}
	return s
}

// oneLine replaces control characters (CR, LF, NUL, C1...) by spaces and
// invalid UTF-8 by U+FFFD.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// safeIDs keeps the message identifiers that can be written between angle
// brackets as they are (threading.ParseMessageIDs gives only such ids).
func safeIDs(ids []string) []string {
	var out []string
	for _, id := range ids {
		if id != "" && len(id) <= 250 && strings.Contains(id, "@") &&
			!strings.ContainsFunc(id, func(r rune) bool { return r < 0x21 || r == 0x7f || r == '<' || r == '>' || unicode.IsControl(r) }) {
			out = append(out, id)
		}
	}
	return out
}

func orNone(subject string) string {
	if subject == "" {
		return "(no subject)"
	}
	return subject
}
