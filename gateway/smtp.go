package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"

	"github.com/supportgate/supportgate/internal/budget"
	"github.com/supportgate/supportgate/threading"
)

// The SMTP replies shared by MX and submission. Each carries an RFC 3463
// enhanced code and a sentence for a person; none carries internal detail.
var (
	// RFC 5321 4.2.2, RFC 3463 4.3.0: our side failed; the client retries.
	errTemporary = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "A temporary problem on this server prevented accepting the message; please try again later"}
	// RFC 1870 and RFC 3463 5.3.4.
	errTooLarge = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
		Message: "The message is larger than this server accepts"}
	// RFC 5322 2.1.1 allows 998 octets a line; real mail breaks that, so
	// lines up to maxLineBytes are kept as they are, longer ones refused.
	errLineTooLong = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: "A line of the message is longer than this server accepts (64 KiB); send it with shorter lines"}
	errBareLineEnd = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: "The message has a bare CR or LF; every line must end with CRLF"}
	errAborted = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 5, 0},
		Message: "The message transfer was aborted"}
	// RFC 3463 4.3.1 (mail system full), DESIGN.md §8: the message data in
	// flight is at max_inflight_bytes.
	errBusy = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 1},
		Message: "This server is receiving too much mail at once; please try again in a few minutes"}
	// DESIGN.md §8: a NUL is no text (RFC 5322 2.1, RFC 5321 4.5.2), and
	// passing it on would let another server read the message otherwise.
	errNUL = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: "The message contains a NUL byte, which mail may not carry; remove it and send again"}
)

// maxLineBytes bounds one line of a command or of a message.
const maxLineBytes = 64 << 10

// maxCommandsWithoutMessage bounds the commands of an SMTP session between
// messages (DESIGN.md §8).
const maxCommandsWithoutMessage = 100

// readData reads a whole DATA or BDAT body. go-smtp enforces the size limit
// and reports it as ErrDataTooLarge. A bare CR or LF is refused: go-smtp
// passes them through, and a message that holds one is how SMTP smuggling
// hides a second message from one server and shows it to another
// (RFC 5321 2.3.8: lines end with CRLF; only CRLF.CRLF ends the data).
//
// The bytes are taken from inflight (DESIGN.md §8: memory is bounded as a
// whole); release gives them back once the message is stored or refused.
// Beyond the budget the message is refused for now (451 4.3.1) and the
// rest of it is drained by go-smtp without being kept.
func readData(r io.Reader, inflight *budget.Bytes) (raw []byte, release func(), err error) {
	raw, release, err = inflight.ReadAll(r)
	if raw, err = checkData(raw, err); err != nil {
		release() // refused: nothing is kept
		return nil, func() {}, err
	}
	return raw, release, nil
}

func checkData(raw []byte, err error) ([]byte, error) {
	switch {
	case errors.Is(err, budget.ErrExhausted):
		return nil, errBusy
	case err == nil && hasBareLineEnd(raw):
		return nil, errBareLineEnd
	case err == nil && bytes.IndexByte(raw, 0) >= 0:
		return nil, errNUL
	case err == nil && longestLine(raw) > maxLineBytes:
		// The whole message was read (third_party/go-smtp PATCHES.md), so
		// the client reads this answer on a connection that goes on.
		return nil, errLineTooLong
	case err == nil:
		return raw, nil
	case errors.Is(err, smtp.ErrDataTooLarge):
		return nil, errTooLarge
	case errors.Is(err, smtp.ErrTooLongLine):
		return nil, errLineTooLong
	default:
		return nil, errAborted
	}
}

// longestLine returns the length of the longest line of b, without its
// line end.
func longestLine(b []byte) int {
	longest := 0
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return max(longest, len(b))
		}
		longest = max(longest, len(bytes.TrimSuffix(b[:i], []byte("\r"))))
		b = b[i+1:]
	}
	return longest
}

// hasBareLineEnd reports a CR not followed by LF, or an LF not preceded by CR.
func hasBareLineEnd(b []byte) bool {
	for i := bytes.IndexAny(b, "\r\n"); i >= 0; {
		if b[i] == '\n' || i+1 == len(b) || b[i+1] != '\n' {
			return true
		}
		next := bytes.IndexAny(b[i+2:], "\r\n")
		if next < 0 {
			return false
		}
		i += 2 + next
	}
	return false
}

// headerInfo is what the gateway reads from a message's header.
type headerInfo struct {
	Header     textproto.Header // the whole header, empty when unreadable
	From       string           // the first From address, lower-cased; "" if unreadable
	To, Cc     []string
	Subject    string // decoded
	RawSubject string // as it came
	MessageID  string
	InReplyTo  []string
	References []string
}

// parseHeaderInfo reads the header fields threading and policy need. It is
// lenient: mail with a broken header is still mail, and is kept; what cannot
// be read is left empty. What it returns is valid UTF-8 (raw Latin-1 bytes
// in a Subject become U+FFFD; an address that is not UTF-8 is unreadable),
// as the store's text fields must be: PostgreSQL refuses anything else,
// and a message must never be refused for its header's bytes.
func parseHeaderInfo(raw []byte) headerInfo {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil && h.Len() == 0 {
		return headerInfo{}
	}
	mh := mail.Header{Header: gomessage.Header{Header: h}}
	info := headerInfo{
		Header:     h,
		RawSubject: strings.ToValidUTF8(h.Get("Subject"), "\uFFFD"),
		MessageID:  threading.ParseMessageID(h.Get("Message-Id")),
		InReplyTo:  threading.ParseMessageIDs(h.Get("In-Reply-To")),
		References: threading.ParseMessageIDs(strings.Join(h.Values("References"), " ")),
	}
	if s, err := mh.Subject(); err == nil {
		info.Subject = strings.ToValidUTF8(s, "\uFFFD")
	} else {
		info.Subject = info.RawSubject
	}
	if from := addresses(mh, "From"); len(from) > 0 {
		info.From = from[0]
	}
	info.To = addresses(mh, "To")
	info.Cc = addresses(mh, "Cc")
	return info
}

func addresses(mh mail.Header, key string) []string {
	list, err := mh.AddressList(key)
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range list {
		if a.Address != "" && utf8.ValidString(a.Address) {
			out = append(out, strings.ToLower(a.Address))
		}
	}
	return out
}

// cleanSubject makes a subject safe to keep as a conversation's title.
func cleanSubject(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}
