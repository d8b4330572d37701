package threading

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strconv"
	"strings"
)

// macLen is the number of base32 characters kept of an HMAC-SHA256: 16
// characters are 80 bits, beyond guessing over SMTP.
const macLen = 16

// lowerBase32 is base32 without padding in lower case: local parts are
// case-insensitive in practice (RFC 5321 2.4 leaves it to the host, and many
// MTAs fold case), so tokens must survive lower-casing.
var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Keys signs and checks reply tokens and Message-IDs under the secret kept in
// the data directory. The zero Keys is not usable; use NewKeys.
type Keys struct {
	secret []byte
}

// NewKeys returns Keys for a secret of at least 32 bytes.
func NewKeys(secret []byte) Keys {
	return Keys{secret: append([]byte(nil), secret...)}
}

// mac returns the truncated HMAC of a purpose and a value, so that a MAC for
// one purpose (a reply token) is never valid for another (a Message-ID).
func (k Keys) mac(purpose, value string) string {
	h := hmac.New(sha256.New, k.secret)
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write([]byte(value))
	return lowerBase32.EncodeToString(h.Sum(nil))[:macLen]
}

func (k Keys) valid(purpose, value, mac string) bool {
	if len(k.secret) == 0 {
		return false
	}
	return hmac.Equal([]byte(k.mac(purpose, value)), []byte(strings.ToLower(mac)))
}

// ReplyToken is the plus part of a conversation's reply address
// (`support+<token>@domain`, DESIGN.md §4 rule 1): "<conversation>-<mac>".
func (k Keys) ReplyToken(conversation int64) string {
	id := strconv.FormatInt(conversation, 10)
	return id + "-" + k.mac("reply", id)
}

// ParseReplyToken returns the conversation a reply token names, and false if
// the token is malformed or its MAC is wrong.
func (k Keys) ParseReplyToken(token string) (int64, bool) {
	id, mac, ok := strings.Cut(token, "-")
	if !ok {
		return 0, false
	}
	conv, err := strconv.ParseInt(id, 10, 64)
	if err != nil || conv <= 0 || strconv.FormatInt(conv, 10) != id {
		return 0, false
	}
	if !k.valid("reply", id, mac) {
		return 0, false
	}
	return conv, true
}

// SideToken is the plus part of a side conversation's reply address
// (DESIGN.md §14): "<conversation>s<side>-<mac>", signed for its own purpose
// so that it is never a conversation's token.
func (k Keys) SideToken(conversation int64, side int) string {
	id := strconv.FormatInt(conversation, 10) + "s" + strconv.Itoa(side)
	return id + "-" + k.mac("side", id)
}

// ParseSideToken returns the conversation and side a SideToken names, and
// false if the token is malformed or its MAC is wrong.
func (k Keys) ParseSideToken(token string) (conversation int64, side int, ok bool) {
	id, mac, found := strings.Cut(token, "-")
	c, n, found2 := strings.Cut(id, "s")
	if !found || !found2 {
		return 0, 0, false
	}
	conv, err1 := strconv.ParseInt(c, 10, 64)
	sd, err2 := strconv.Atoi(n)
	if err1 != nil || err2 != nil || conv <= 0 || sd <= 0 || strconv.FormatInt(conv, 10)+"s"+strconv.Itoa(sd) != id {
		return 0, 0, false
	}
	if !k.valid("side", id, mac) {
		return 0, 0, false
	}
	return conv, sd, true
}

// MessageID returns the self-describing signed Message-ID of an outbound
// message, without angle brackets: sg.<conversation>.<message>.<mac>@hostname
// (DESIGN.md §4 rule 2), so that it threads even if the index lost its row.
func (k Keys) MessageID(conversation, message int64, hostname string) string {
	ids := strconv.FormatInt(conversation, 10) + "." + strconv.FormatInt(message, 10)
	return "sg." + ids + "." + k.mac("msgid", ids) + "@" + hostname
}

// ParseMessageID returns the conversation and message named by a signed
// Message-ID (without angle brackets), and false for any other Message-ID.
func (k Keys) ParseMessageID(id string) (conversation, message int64, ok bool) {
	left, _, found := strings.Cut(id, "@")
	if !found {
		return 0, 0, false
	}
	parts := strings.Split(left, ".")
	if len(parts) != 4 || parts[0] != "sg" {
		return 0, 0, false
	}
	conv, err1 := strconv.ParseInt(parts[1], 10, 64)
	msg, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || conv <= 0 || msg <= 0 {
		return 0, 0, false
	}
	ids := strconv.FormatInt(conv, 10) + "." + strconv.FormatInt(msg, 10)
	if ids != parts[1]+"."+parts[2] || !k.valid("msgid", ids, parts[3]) {
		return 0, 0, false
	}
	return conv, msg, true
}

// BounceToken is the plus part of the return path of an outbound message
// (`bounces+<token>@domain`, DESIGN.md §4): "<message>-<mac>", so that a DSN
// names the message it reports on.
func (k Keys) BounceToken(message int64) string {
	id := strconv.FormatInt(message, 10)
	return id + "-" + k.mac("bounce", id)
}

// RecipientBounceToken is the plus part of the VERP return path of one
// recipient of an outbound message (`bounces+<token>@domain`, DESIGN.md §4):
// "<message>-<recipient>-<mac>", where recipient is the recipient's number in
// the queue (store.QueuedRecipient.Number), so that a bounce names both
// without being parsed.
func (k Keys) RecipientBounceToken(message int64, recipient int) string {
	ids := strconv.FormatInt(message, 10) + "-" + strconv.Itoa(recipient)
	return ids + "-" + k.mac("bounce-rcpt", ids)
}

// ParseBounceToken returns what a return-path token names: the message and
// the recipient's number of a RecipientBounceToken, or the message and 0 for
// a BounceToken. It returns false for a malformed token or a wrong MAC.
func (k Keys) ParseBounceToken(token string) (message int64, recipient int, ok bool) {
	parts := strings.Split(token, "-")
	canonical := func(s string) (int64, bool) {
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil && n > 0 && strconv.FormatInt(n, 10) == s
	}
	switch len(parts) {
	case 2:
		msg, good := canonical(parts[0])
		if !good || !k.valid("bounce", parts[0], parts[1]) {
			return 0, 0, false
		}
		return msg, 0, true
	case 3:
		msg, good1 := canonical(parts[0])
		n, good2 := canonical(parts[1])
		if !good1 || !good2 || n > 1<<20 || !k.valid("bounce-rcpt", parts[0]+"-"+parts[1], parts[2]) {
			return 0, 0, false
		}
		return msg, int(n), true
	}
	return 0, 0, false
}
