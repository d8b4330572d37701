package policy

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"html"
	"io"
	"mime"
	"mime/quotedprintable"
	"regexp"
	"slices"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// Quick actions live in the text an agent typed: the first text/plain part,
// or the first text/html part of an HTML-only message. go-message reads MIME
// well but does not give the byte offsets of parts, which removing lines
// while keeping every other byte needs, so this file walks the raw message.

// maxPartDepth bounds nesting, against hostile messages.
const maxPartDepth = 10

// rawPart is a MIME part with the offsets of its body in the message.
type rawPart struct {
	header             textproto.Header
	mediaType          string
	bodyStart, bodyEnd int
	children           []rawPart
}

// parseRawPart reads the part in raw[start:end].
func parseRawPart(raw []byte, start, end, depth int) (rawPart, bool) {
	seg := raw[start:end]
	hdrLen := bytes.Index(seg, []byte("\r\n\r\n"))
	if hdrLen < 0 {
		if !bytes.HasPrefix(seg, []byte("\r\n")) {
			return rawPart{}, false
		}
		hdrLen = -2 // no header fields at all: the body starts after the blank line
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(seg[:hdrLen+4])))
	if err != nil {
		return rawPart{}, false
	}
	p := rawPart{header: h, bodyStart: start + hdrLen + 4, bodyEnd: end, mediaType: "text/plain"}
	if ct := h.Get("Content-Type"); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			return rawPart{}, false
		}
		p.mediaType = mt
		if strings.HasPrefix(mt, "multipart/") && params["boundary"] != "" && depth < maxPartDepth {
			p.children = splitMultipart(raw, p.bodyStart, end, params["boundary"], depth+1)
		}
	}
	return p, true
}

// splitMultipart finds the body parts between "--boundary" lines (RFC 2046
// 5.1.1): each starts after its delimiter line and ends before the CRLF
// that precedes the next delimiter.
func splitMultipart(raw []byte, start, end int, boundary string, depth int) []rawPart {
	delim := []byte("\r\n--" + boundary)
	body := raw[start:end]
	var starts, ends []int
	pos := 0
	if bytes.HasPrefix(body, delim[2:]) {
		pos = -2 // the first delimiter may open the body without a CRLF
	}
	for {
		var i int
		if pos == -2 {
			i, pos = -2, 0
		} else if i = bytes.Index(body[pos:], delim); i < 0 {
			break
		} else {
			i += pos
		}
		after := i + len(delim)
		if len(starts) > len(ends) {
			ends = append(ends, i)
		}
		if bytes.HasPrefix(body[after:], []byte("--")) {
			break // the close delimiter
		}
		nl := bytes.Index(body[after:], []byte("\r\n"))
		if nl < 0 {
			break
		}
		starts = append(starts, after+nl+2)
		pos = after + nl + 2
	}
	var parts []rawPart
	for k := range ends {
		if p, ok := parseRawPart(raw, start+starts[k], start+ends[k], depth); ok {
			parts = append(parts, p)
		}
	}
	return parts
}

// findText returns the first part of a media type that is not an attachment.
func findText(p *rawPart, mediaType string) *rawPart {
	if p.mediaType == mediaType && !strings.HasPrefix(strings.ToLower(p.header.Get("Content-Disposition")), "attachment") {
		return p
	}
	for i := range p.children {
		if t := findText(&p.children[i], mediaType); t != nil {
			return t
		}
	}
	return nil
}

func decodeBody(p *rawPart, raw []byte) (string, bool) {
	body := raw[p.bodyStart:p.bodyEnd]
	switch strings.ToLower(strings.TrimSpace(p.header.Get("Content-Transfer-Encoding"))) {
	case "", "7bit", "8bit", "binary":
		return string(body), true
	case "quoted-printable":
		b, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		return string(b), err == nil
	case "base64":
		b, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, newlineSkipper{bytes.NewReader(body)}))
		return string(b), err == nil
	}
	return "", false
}

func encodeBody(p *rawPart, text string) []byte {
	switch strings.ToLower(strings.TrimSpace(p.header.Get("Content-Transfer-Encoding"))) {
	case "quoted-printable":
		var b bytes.Buffer
		w := quotedprintable.NewWriter(&b)
		w.Write([]byte(text))
		w.Close()
		return b.Bytes()
	case "base64":
		enc := base64.StdEncoding.EncodeToString([]byte(text))
		var b bytes.Buffer
		for len(enc) > 76 { // RFC 2045 6.8
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
		return b.Bytes()
	}
	return []byte(text)
}

type newlineSkipper struct{ r io.Reader }

func (n newlineSkipper) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	j := 0
	for _, c := range p[:k] {
		if c != '\r' && c != '\n' {
			p[j] = c
			j++
		}
	}
	return j, err
}

var (
	htmlBreak = regexp.MustCompile(`(?i)<br\s*/?>|</p\s*>|</div\s*>`)
	htmlTag   = regexp.MustCompile(`<[^>]*>`)
)

// htmlText is the text of an HTML body, line by line, for finding actions.
func htmlText(s string) string {
	s = strings.NewReplacer("\r", "", "\n", " ").Replace(s)
	s = htmlBreak.ReplaceAllString(s, "\n")
	return html.UnescapeString(htmlTag.ReplaceAllString(s, ""))
}

// MessageText returns the text an agent typed: the first text/plain part,
// else the text of the first text/html part; false when there is none.
func MessageText(raw []byte) (string, bool) {
	root, ok := parseRawPart(raw, 0, len(raw), 0)
	if !ok {
		return "", false
	}
	if p := findText(&root, "text/plain"); p != nil {
		return decodeBody(p, raw)
	}
	if p := findText(&root, "text/html"); p != nil {
		if s, ok := decodeBody(p, raw); ok {
			return htmlText(s), true
		}
	}
	return "", false
}

// StripActionLines removes the quick-action lines (as ParseActions returned
// them) from what customers receive: from the first text/plain part, and
// from the first text/html part (where the lines are found in its text).
// Every other byte of the message stays as it was.
func StripActionLines(raw []byte, lines []string) []byte {
	root, ok := parseRawPart(raw, 0, len(raw), 0)
	if !ok {
		return raw
	}
	type edit struct {
		start, end int
		body       []byte
	}
	var edits []edit
	if p := findText(&root, "text/plain"); p != nil {
		if s, ok := decodeBody(p, raw); ok {
			rest := dropLines(s, len(lines))
			if enc := strings.ToLower(p.header.Get("Content-Transfer-Encoding")); enc == "" || enc == "7bit" || enc == "8bit" || enc == "binary" {
				edits = append(edits, edit{p.bodyStart, p.bodyEnd, []byte(rest)})
			} else {
				edits = append(edits, edit{p.bodyStart, p.bodyEnd, encodeBody(p, rest)})
			}
		}
	}
	if p := findText(&root, "text/html"); p != nil {
		if s, ok := decodeBody(p, raw); ok {
			if out := stripHTMLLines(s, lines); out != s {
				edits = append(edits, edit{p.bodyStart, p.bodyEnd, encodeBody(p, out)})
			}
		}
	}
	// Back to front, so that the offsets of the earlier part stay valid.
	slices.SortFunc(edits, func(a, b edit) int { return b.start - a.start })
	out := raw
	for _, e := range edits {
		out = append(append(append([]byte{}, out[:e.start]...), e.body...), out[e.end:]...)
	}
	return out
}

// dropLines removes the first n lines of s.
func dropLines(s string, n int) string {
	for ; n > 0; n-- {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return ""
		}
		s = s[i+1:]
	}
	return s
}

var leadingBreak = regexp.MustCompile(`^\s*(?i:<br\s*/?>)?\s*`)

var emptyBlock = regexp.MustCompile(`(?i)^(\s*<(p|div)[^>]*>\s*(<br\s*/?>)?\s*</(p|div)>)+`)

// stripHTMLLines removes each action line's text, with the line break that
// follows it, from the start of an HTML body, then any block left empty.
func stripHTMLLines(s string, lines []string) string {
	body := s
	lower := strings.ToLower(s)
	if i := strings.Index(lower, "<body"); i >= 0 {
		if j := strings.IndexByte(lower[i:], '>'); j >= 0 {
			body = s[i+j+1:]
		}
	}
	prefix := s[:len(s)-len(body)]
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		i := strings.Index(body, html.EscapeString(l))
		if i < 0 {
			continue
		}
		rest := body[i+len(html.EscapeString(l)):]
		if loc := leadingBreak.FindStringIndex(rest); loc != nil {
			rest = rest[loc[1]:]
		}
		body = body[:i] + rest
	}
	body = emptyBlock.ReplaceAllString(body, "")
	return prefix + body
}
