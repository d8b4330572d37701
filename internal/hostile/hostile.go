// Package hostile is a corpus of hostile mail (issue 13, DESIGN.md §8):
// nesting to 10,000 levels, 100,000 parts, a 10 MB header, broken
// encodings, a NUL, and every bare CR/LF end-of-data variant of smtpsmug.
// The gateway's tests send it to an in-process server, cmd/supportgate's to
// the daemon; each message must be stored and served like any other, or
// refused with a sentence.
package hostile

import (
	"fmt"
	"strings"
)

// Mail is one message of the corpus: either it is stored, and then served
// over IMAP like any other, or it is refused with a 5xx and a sentence.
type Mail struct {
	Name, Data string
	Refused    bool // 554 5.6.0 expected
}

// Corpus builds the corpus; the big ones are made here rather than kept in
// testdata/.
func Corpus() []Mail {
	head := func(id string) string {
		return "From: Mallory <mallory@evil.example>\r\nTo: support@example.test\r\nSubject: " + id +
			"\r\nMessage-ID: <" + id + "@evil.example>\r\nMIME-Version: 1.0\r\n"
	}
	nested := func(id string, depth int, rfc822 bool) string {
		var b strings.Builder
		b.WriteString(head(id))
		for i := range depth {
			if rfc822 {
				b.WriteString("Content-Type: message/rfc822\r\n\r\nSubject: level " + fmt.Sprint(i) + "\r\n")
			} else {
				fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
			}
		}
		b.WriteString("Content-Type: text/plain\r\n\r\nthe bottom\r\n")
		if !rfc822 {
			for i := depth - 1; i >= 0; i-- {
				fmt.Fprintf(&b, "--b%d--\r\n", i)
			}
		}
		return b.String()
	}
	var parts strings.Builder
	parts.WriteString(head("many-parts") + "Content-Type: multipart/mixed; boundary=\"p\"\r\n\r\n")
	for i := range 100_000 {
		fmt.Fprintf(&parts, "--p\r\n\r\n%d\r\n", i)
	}
	parts.WriteString("--p--\r\n")
	var bigHeader strings.Builder
	bigHeader.WriteString(head("big-header"))
	for bigHeader.Len() < 10<<20 {
		bigHeader.WriteString("X-Filler: " + strings.Repeat("h", 990) + "\r\n")
	}
	bigHeader.WriteString("\r\nbody\r\n")
	return []Mail{
		{Name: "nested multiparts, 10,000 levels", Data: nested("deep-multipart", 10_000, false)},
		{Name: "nested message/rfc822, 10,000 levels", Data: nested("deep-rfc822", 10_000, true)},
		{Name: "100,000 parts", Data: parts.String()},
		{Name: "10 MB header", Data: bigHeader.String()},
		{Name: "broken base64", Data: head("bad-base64") + "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64***\r\n"},
		{Name: "broken quoted-printable", Data: head("bad-qp") + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n=\r\n"},
		{Name: "unknown charset", Data: head("bad-charset") + "Content-Type: text/plain; charset=x-nonesuch\r\n\r\n\xff\xfe\r\n"},
		{Name: "multipart without boundary", Data: head("no-boundary") + "Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nhello\r\n"},
		{Name: "multipart never closed", Data: head("unclosed") + "Content-Type: multipart/mixed; boundary=u\r\n\r\n--u\r\nContent-Type: multipart/alternative; boundary=v\r\n\r\n--v\r\n\r\nx\r\n"},
		{Name: "encoded words gone wrong", Data: head("bad-words") + "Content-Type: text/plain\r\nX-Note: =?utf-8?B?!!!?= =?x-none?Q?a?=\r\n\r\nbody\r\n"},
		{Name: "NUL", Data: head("nul") + "\r\nbefore\x00after\r\n", Refused: true},
		// smtpsmug's end-of-data variants (the bytes after them would be a
		// second message on a server that took them for the end).
		{Name: "bare LF", Data: head("lf") + "\r\nline\nline\r\n", Refused: true},
		{Name: "bare CR", Data: head("cr") + "\r\nline\rline\r\n", Refused: true},
		{Name: "LF.LF", Data: head("lf-dot-lf") + "\r\nline\n.\nMAIL FROM:<x@evil.example>\r\n", Refused: true},
		{Name: "CRLF.LF", Data: head("crlf-dot-lf") + "\r\nline\r\n.\nMAIL FROM:<x@evil.example>\r\n", Refused: true},
		{Name: "LF.CRLF", Data: head("lf-dot-crlf") + "\r\nline\n.\r\nMAIL FROM:<x@evil.example>\r\n", Refused: true},
		{Name: "CR.CR", Data: head("cr-dot-cr") + "\r\nline\r.\rMAIL FROM:<x@evil.example>\r\n", Refused: true},
		{Name: "CRLF.CR", Data: head("crlf-dot-cr") + "\r\nline\r\n.\rMAIL FROM:<x@evil.example>\r\n", Refused: true},
		{Name: "CR.CRLF", Data: head("cr-dot-crlf") + "\r\nline\r.\r\nMAIL FROM:<x@evil.example>\r\n", Refused: true},
	}
}
