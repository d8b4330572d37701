package policy

import (
	"bufio"
	"bytes"
	"errors"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/supportgate/supportgate/threading"
)

// corpusDir holds the .eml corpus shared with the threading tests.
const corpusDir = "../testdata/eml"

func corpus(tb testing.TB) map[string][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(corpusDir, "*.eml"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no corpus in %s: %v", corpusDir, err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

// unreadable lists the corpus files whose header is meant to be unreadable.
var unreadable = map[string]bool{"malformed-no-colon.eml": true}

// split returns the header (with its final CRLF, without the blank line)
// and the body after the first CRLFCRLF.
func split(t testing.TB, raw []byte) (header, body []byte) {
	t.Helper()
	i := bytes.Index(raw, []byte("\r\n\r\n"))
	if i < 0 {
		t.Fatalf("no CRLFCRLF in %q", raw)
	}
	return raw[:i+2], raw[i+4:]
}

// fields splits a raw header into its fields, each with its continuation
// lines and CRLFs, byte for byte.
func fields(header []byte) [][]byte {
	var out [][]byte
	for len(header) > 0 {
		end := 0
		for {
			i := bytes.Index(header[end:], []byte("\r\n"))
			if i < 0 {
				end = len(header)
				break
			}
			end += i + 2
			if end >= len(header) || (header[end] != ' ' && header[end] != '\t') {
				break
			}
		}
		out = append(out, header[:end])
		header = header[end:]
	}
	return out
}

func fieldName(f []byte) string {
	name, _, _ := bytes.Cut(f, []byte(":"))
	return strings.TrimSpace(string(name))
}

// namedFields returns the fields of header called name (case-insensitive).
func namedFields(header []byte, name string) [][]byte {
	var out [][]byte
	for _, f := range fields(header) {
		if strings.EqualFold(fieldName(f), name) {
			out = append(out, f)
		}
	}
	return out
}

// isRemoved reports a field that the rewrite must never let through.
func isRemoved(name string) bool {
	n := strings.ToLower(name)
	return slices.Contains([]string{"bcc", "sender", "return-path", "disposition-notification-to", "return-receipt-to"}, n) ||
		strings.HasPrefix(n, "x-mozilla-") || strings.HasPrefix(n, "x-supportgate-")
}

var replaced = []string{"from", "reply-to", "to", "cc", "message-id", "in-reply-to", "references"}

// readHeader parses the header of a rewritten message with net/mail, as a
// recipient would.
func readHeader(t testing.TB, out []byte) mail.Header {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("the rewritten message cannot be read: %v\n%s", err, out)
	}
	return m.Header
}

var testNow = time.Date(2025, 3, 6, 10, 41, 7, 0, time.FixedZone("", 3600))

func baseRewrite() ReplyRewrite {
	return ReplyRewrite{
		AgentName:    "Bob",
		InboxName:    "Example Support",
		InboxAddress: "support@example.test",
		ReplyTo:      "support+42-zdnjah3cwgd4czz4@example.test",
		To:           "jan.devries@contoso.example",
		Cc:           []string{"finance@contoso.example", "boss@contoso.example"},
		MessageID:    "sg.42.10.aaaaaaaaaaaaaaaa@mail.example.test",
		InReplyTo:    []string{"AS8PR04MB8247A1B2C3D4E5F6A7B8C9D0E1F2A@AS8PR04MB8247.eurprd04.prod.outlook.com"},
		References: []string{
			"AS8PR04MB82479F1E2D3C4B5A69788796A5B4C@AS8PR04MB8247.eurprd04.prod.outlook.com",
			"sg.42.7.qhkxc7bq6gaikyii@mail.example.test",
			"AS8PR04MB8247A1B2C3D4E5F6A7B8C9D0E1F2A@AS8PR04MB8247.eurprd04.prod.outlook.com",
		},
		Now: testNow,
	}
}

func angle(ids []string) string {
	var parts []string
	for _, id := range ids {
		parts = append(parts, "<"+id+">")
	}
	return strings.Join(parts, " ")
}

// checkRewrite checks everything DESIGN.md §5 item 6 says of a rewritten
// reply, against the message it came from.
func checkRewrite(t *testing.T, r ReplyRewrite, raw, out []byte) {
	t.Helper()
	inHeader, inBody := split(t, raw)
	outHeader, outBody := split(t, out)
	if !bytes.Equal(outBody, inBody) {
		t.Errorf("the body changed:\n got %q\nwant %q", outBody, inBody)
	}
	if bytes.ContainsAny(bytes.ReplaceAll(outHeader, []byte("\r\n"), nil), "\r\n") {
		t.Errorf("the header has a bare CR or LF:\n%q", outHeader)
	}
	h := readHeader(t, out)

	// From, Reply-To, To, Cc: as given, once each.
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != r.InboxAddress || from[0].Name != r.AgentName+" via "+r.InboxName {
		t.Errorf("From = %v, %v; want %q via %q <%s>", from, err, r.AgentName, r.InboxName, r.InboxAddress)
	}
	for _, tt := range []struct {
		field string
		want  []string
	}{
		{"Reply-To", []string{r.ReplyTo}},
		{"To", []string{r.To}},
		{"Cc", r.Cc},
	} {
		list, err := h.AddressList(tt.field)
		var got []string
		for _, a := range list {
			got = append(got, a.Address)
		}
		if (err != nil && len(tt.want) > 0) || !slices.Equal(got, tt.want) {
			t.Errorf("%s = %q, %v; want %q", tt.field, got, err, tt.want)
		}
	}
	for _, name := range []string{"From", "Reply-To", "To", "Message-Id", "Date"} {
		if n := len(namedFields(outHeader, name)); n != 1 {
			t.Errorf("%d %s fields, want exactly one", n, name)
		}
	}
	if n := len(namedFields(outHeader, "Cc")); n != min(len(r.Cc), 1) {
		t.Errorf("%d Cc fields for %d participants", n, len(r.Cc))
	}

	// The new Message-ID, and the chain as given.
	if got := h.Get("Message-Id"); got != "<"+r.MessageID+">" {
		t.Errorf("Message-Id = %q, want <%s>", got, r.MessageID)
	}
	if got, want := threading.ParseMessageIDs(h.Get("In-Reply-To")), r.InReplyTo; !slices.Equal(got, want) && len(want) > 0 {
		t.Errorf("In-Reply-To = %q, want %q", got, want)
	}
	if len(r.InReplyTo) == 0 && len(namedFields(outHeader, "In-Reply-To")) != 0 {
		t.Errorf("In-Reply-To kept although none was given")
	}
	wantRefs := r.References
	if len(wantRefs) > 20 {
		wantRefs = append([]string{wantRefs[0]}, wantRefs[len(wantRefs)-19:]...)
	}
	if got := threading.ParseMessageIDs(strings.Join(h["References"], " ")); !slices.Equal(got, wantRefs) && len(wantRefs) > 0 {
		t.Errorf("References = %q, want %q", got, wantRefs)
	}
	if len(r.References) == 0 && len(namedFields(outHeader, "References")) != 0 {
		t.Errorf("References kept although none was given")
	}

	// Every other field of the agent's header, byte for byte and in order;
	// the removed ones nowhere.
	var kept [][]byte
	for _, f := range fields(inHeader) {
		name := fieldName(f)
		if !isRemoved(name) && !slices.Contains(replaced, strings.ToLower(name)) {
			kept = append(kept, f)
		}
	}
	var outKept [][]byte
	for _, f := range fields(outHeader) {
		name := fieldName(f)
		if isRemoved(name) {
			t.Errorf("%s left through: %q", name, f)
		}
		if !slices.Contains(replaced, strings.ToLower(name)) && !(strings.EqualFold(name, "Date") && len(namedFields(inHeader, "Date")) == 0) {
			outKept = append(outKept, f)
		}
	}
	if !slices.EqualFunc(outKept, kept, bytes.Equal) {
		t.Errorf("the agent's other fields changed:\n got %q\nwant %q", outKept, kept)
	}
	if len(namedFields(inHeader, "Date")) == 0 {
		if got := h.Get("Date"); got != r.Now.Format(time.RFC1123Z) {
			t.Errorf("Date = %q, want %q", got, r.Now.Format(time.RFC1123Z))
		}
	}
	for _, line := range strings.Split(string(outHeader), "\r\n") {
		if strings.HasPrefix(strings.ToLower(line), "bcc:") {
			t.Errorf("a Bcc line in the output: %q", line)
		}
	}
}

func TestRewriteCorpus(t *testing.T) {
	for name, raw := range corpus(t) {
		if unreadable[name] {
			continue
		}
		t.Run(name, func(t *testing.T) {
			r := baseRewrite()
			out, err := r.Rewrite(raw)
			if err != nil {
				t.Fatalf("Rewrite: %v", err)
			}
			checkRewrite(t, r, raw, out)

			// With no participants and no chain: no Cc, In-Reply-To or
			// References at all, whatever the client wrote.
			r.Cc, r.InReplyTo, r.References = nil, nil, nil
			out, err = r.Rewrite(raw)
			if err != nil {
				t.Fatalf("Rewrite: %v", err)
			}
			checkRewrite(t, r, raw, out)
		})
	}
}

func TestRewriteKeepsOutlookThreadHeaders(t *testing.T) {
	raw := corpus(t)["outlook-reply.eml"]
	out, err := baseRewrite().Rewrite(raw)
	if err != nil {
		t.Fatal(err)
	}
	inHeader, _ := split(t, raw)
	outHeader, _ := split(t, out)
	for _, name := range []string{"Thread-Index", "Thread-Topic", "X-MS-Has-Attach", "X-MS-Exchange-CrossTenant-id", "x-ms-publictraffictype"} {
		in, got := namedFields(inHeader, name), namedFields(outHeader, name)
		if len(in) != 1 || len(got) != 1 || !bytes.Equal(in[0], got[0]) {
			t.Errorf("%s: %q became %q", name, in, got)
		}
	}
	if !bytes.Contains(out, []byte("\r\nThread-Index: AQHbjLkTzKxYgnb4UEWnrS1cOq2XjbNh0ZYAgAAFt4A=\r\n")) {
		t.Error("Thread-Index is not kept byte for byte")
	}
}

func TestRewriteRemovesClientNoise(t *testing.T) {
	c := corpus(t)
	tests := []struct {
		file    string
		removed []string // present in the input, absent from the output
	}{
		{"thunderbird-agent.eml", []string{"Disposition-Notification-To", "X-Mozilla-Draft-Info", "X-Mozilla-Cloud-Part"}},
		{"mutt-agent-bcc.eml", []string{"Bcc", "Sender", "Return-Path", "Return-Receipt-To", "X-Supportgate-Conversation", "X-Supportgate-Kind"}},
	}
	for _, tt := range tests {
		raw := c[tt.file]
		out, err := baseRewrite().Rewrite(raw)
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		inHeader, _ := split(t, raw)
		outHeader, _ := split(t, out)
		for _, name := range tt.removed {
			if len(namedFields(inHeader, name)) == 0 {
				t.Errorf("%s has no %s; the corpus changed", tt.file, name)
			}
			if f := namedFields(outHeader, name); len(f) != 0 {
				t.Errorf("%s: %s kept: %q", tt.file, name, f)
			}
		}
		if bytes.Contains(out, []byte("auditor@audit.example")) {
			t.Errorf("%s: the Bcc address leaked into the output", tt.file)
		}
		if len(namedFields(outHeader, "User-Agent")) != 1 {
			t.Errorf("%s: User-Agent is not noise and is kept", tt.file)
		}
	}
}

func TestRewriteTrimsLongReferences(t *testing.T) {
	raw := corpus(t)["gmail-thread.eml"]
	h := readHeader(t, raw)
	refs := threading.ParseMessageIDs(h.Get("References"))
	if len(refs) != 24 {
		t.Fatalf("gmail-thread.eml has %d references, want 24", len(refs))
	}
	for _, n := range []int{19, 20, 21, 24} {
		r := baseRewrite()
		r.References = refs[:n]
		out, err := r.Rewrite(raw)
		if err != nil {
			t.Fatal(err)
		}
		checkRewrite(t, r, raw, out)
		got := threading.ParseMessageIDs(readHeader(t, out).Get("References"))
		want := refs[:n]
		if n > 20 {
			want = append([]string{refs[0]}, refs[n-19:n]...)
		}
		if !slices.Equal(got, want) || len(got) > 20 {
			t.Errorf("%d references became %d: %q, want %q", n, len(got), got, want)
		}
	}
	r := baseRewrite()
	r.References = refs
	if _, err := r.Rewrite(raw); err != nil || len(r.References) != 24 || r.References[1] != refs[1] {
		t.Errorf("Rewrite changed the caller's References: %v", err)
	}
}

func TestRewriteDate(t *testing.T) {
	r := baseRewrite()
	withDate := []byte("Date: Tue, 4 Mar 2025 09:12:43 +0000\r\nSubject: x\r\n\r\nbody\r\n")
	out, err := r.Rewrite(withDate)
	if err != nil {
		t.Fatal(err)
	}
	checkRewrite(t, r, withDate, out)
	if got := readHeader(t, out).Get("Date"); got != "Tue, 4 Mar 2025 09:12:43 +0000" {
		t.Errorf("Date = %q; the agent's Date is kept", got)
	}

	raw := corpus(t)["thunderbird-agent.eml"]
	noDate := bytes.Replace(raw, []byte("Date: Thu, 6 Mar 2025 10:41:07 +0100\r\n"), nil, 1)
	if bytes.Equal(noDate, raw) {
		t.Fatal("thunderbird-agent.eml has no Date line to remove")
	}
	r.Now = time.Date(2031, 12, 24, 23, 59, 58, 0, time.UTC)
	out, err = r.Rewrite(noDate)
	if err != nil {
		t.Fatal(err)
	}
	checkRewrite(t, r, noDate, out)
	if got := readHeader(t, out).Get("Date"); got != "Wed, 24 Dec 2031 23:59:58 +0000" {
		t.Errorf("Date = %q, want the rewrite's Now", got)
	}
}

func TestRewriteMinimalMessages(t *testing.T) {
	for _, raw := range []string{
		"Subject: hello\r\n\r\nbody\r\n",
		"Subject: no body\r\n\r\n",
		"Subject: blank lines in the body\r\n\r\n\r\n\r\nx\r\n\r\n",
		"\r\nno header at all\r\n",
	} {
		r := baseRewrite()
		out, err := r.Rewrite([]byte(raw))
		if err != nil {
			t.Errorf("Rewrite(%q): %v", raw, err)
			continue
		}
		if strings.HasPrefix(raw, "\r\n") {
			if !bytes.HasSuffix(out, []byte(raw)) {
				t.Errorf("Rewrite(%q) = %q; the body is not kept", raw, out)
			}
			continue
		}
		checkRewrite(t, r, []byte(raw), out)
	}
}

func TestRewriteNonASCIINames(t *testing.T) {
	tests := []struct{ agent, inbox string }{
		{"José Müller", "Example Support"},
		{"Bob", "Support für Kunden"},
		{"Zoë \"Z\" O'Brien, Jr.", "Ünïcödé (Support)"},
		{"山田太郎", "サポート"},
		{strings.Repeat("Ångström ", 12), strings.Repeat("Ça va ", 10)},
		{"Bob", "Example \"Support\" <team>"},
	}
	raw := []byte("Subject: x\r\nDate: Tue, 4 Mar 2025 09:12:43 +0000\r\n\r\nbody\r\n")
	for _, tt := range tests {
		r := baseRewrite()
		r.AgentName, r.InboxName = tt.agent, tt.inbox
		out, err := r.Rewrite(raw)
		if err != nil {
			t.Errorf("%q via %q: %v", tt.agent, tt.inbox, err)
			continue
		}
		checkRewrite(t, r, raw, out)
		header, _ := split(t, out)
		for i, c := range header {
			if c >= 0x80 {
				t.Errorf("%q via %q: raw 8-bit byte %#x at %d in the header:\n%s", tt.agent, tt.inbox, c, i, header)
				break
			}
		}
		from := readHeader(t, out).Get("From")
		a, err := mail.ParseAddress(from)
		if err != nil || a.Name != tt.agent+" via "+tt.inbox || a.Address != "support@example.test" {
			t.Errorf("From %q decodes to %v, %v; want %q via %q", from, a, err, tt.agent, tt.inbox)
		}
	}
}

func TestFromHeader(t *testing.T) {
	tests := []struct{ agent, inbox, addr, want string }{
		{"Alice", "Example Support", "support@example.test", `"Alice via Example Support" <support@example.test>`},
		{"Bob", "Acme", "help@acme.example", `"Bob via Acme" <help@acme.example>`},
		{`Al "the pal"`, "X", "s@x.example", `"Al \"the pal\" via X" <s@x.example>`},
	}
	for _, tt := range tests {
		if got := FromHeader(tt.agent, tt.inbox, tt.addr); got != tt.want {
			t.Errorf("FromHeader(%q, %q, %q) = %s, want %s", tt.agent, tt.inbox, tt.addr, got, tt.want)
		}
	}
}

// TestRewriteHeaderInjection feeds CR/LF through every value of the rewrite:
// the result is either an error or a header with no new field.
func TestRewriteHeaderInjection(t *testing.T) {
	raw := corpus(t)["thunderbird-agent.eml"]
	payloads := []string{"\r\nBcc: x@y", "\nBcc: x@y", "\rBcc: x@y", "x\r\n\r\nBcc: x@y", "\r\n Bcc: x@y", "\u2028Bcc: x@y", "x@y>\r\nBcc: x@y"}
	set := map[string]func(r *ReplyRewrite, p string){
		"AgentName":    func(r *ReplyRewrite, p string) { r.AgentName += p },
		"InboxName":    func(r *ReplyRewrite, p string) { r.InboxName += p },
		"InboxAddress": func(r *ReplyRewrite, p string) { r.InboxAddress += p },
		"ReplyTo":      func(r *ReplyRewrite, p string) { r.ReplyTo += p },
		"To":           func(r *ReplyRewrite, p string) { r.To += p },
		"Cc":           func(r *ReplyRewrite, p string) { r.Cc = append(r.Cc, "c"+p) },
		"MessageID":    func(r *ReplyRewrite, p string) { r.MessageID += p },
		"InReplyTo":    func(r *ReplyRewrite, p string) { r.InReplyTo = []string{"a@b" + p} },
		"References":   func(r *ReplyRewrite, p string) { r.References = append(r.References, "a@b"+p) },
	}
	for field, apply := range set {
		for _, p := range payloads {
			r := baseRewrite()
			apply(&r, p)
			out, err := r.Rewrite(raw)
			if err != nil {
				continue // refused: fine
			}
			header, body := split(t, out)
			_, inBody := split(t, raw)
			if !bytes.Equal(body, inBody) {
				t.Errorf("%s = …%q: the body moved: the header ends early", field, p)
			}
			for _, line := range strings.FieldsFunc(string(header), func(r rune) bool { return r == '\r' || r == '\n' }) {
				if strings.HasPrefix(strings.ToLower(strings.TrimLeft(line, "\u2028")), "bcc:") {
					t.Errorf("%s = …%q made a Bcc line:\n%s", field, p, header)
				}
			}
			if h := readHeader(t, out); len(h["Bcc"]) != 0 {
				t.Errorf("%s = …%q: a reader sees Bcc %q", field, p, h["Bcc"])
			}
		}
	}
	// Names are what an admin or an agent can type: they are encoded, never
	// refused, so that a reply is not lost over a display name.
	r := baseRewrite()
	r.AgentName, r.InboxName = "Eve\r\nBcc: x@y", "Support\r\nBcc: x@y"
	out, err := r.Rewrite(raw)
	if err != nil {
		t.Fatalf("a name with CRLF was refused: %v", err)
	}
	a, err := mail.ParseAddress(readHeader(t, out).Get("From"))
	if err != nil || a.Name != "Eve\r\nBcc: x@y via Support\r\nBcc: x@y" {
		t.Errorf("From decodes to %v, %v", a, err)
	}
}

func TestRewriteMalformed(t *testing.T) {
	tests := map[string][]byte{
		"corpus: header line without colon": corpus(t)["malformed-no-colon.eml"],
		"first line is a continuation":      []byte(" Subject: x\r\n\r\nbody\r\n"),
		"space in a field name":             []byte("Subject: x\r\nBad Name: y\r\n\r\nbody\r\n"),
		"control character in a field name": []byte("Sub\x01ject: x\r\n\r\nbody\r\n"),
		"no colon at all":                   []byte("just some text\r\n\r\n"),
		"8-bit field name":                  []byte("Sübject: x\r\n\r\nbody\r\n"),
	}
	for name, raw := range tests {
		out, err := baseRewrite().Rewrite(raw)
		if !errors.Is(err, ErrMalformedMessage) || out != nil {
			t.Errorf("%s: Rewrite = %q, %v; want an error wrapping ErrMalformedMessage", name, out, err)
		}
		out, err = RewriteNote(raw, "sg.1.1.a@h")
		if !errors.Is(err, ErrMalformedMessage) || out != nil {
			t.Errorf("%s: RewriteNote = %q, %v; want an error wrapping ErrMalformedMessage", name, out, err)
		}
	}
}

func TestRewriteNote(t *testing.T) {
	const newID = "sg.42.11.bbbbbbbbbbbbbbbb@mail.example.test"
	for name, raw := range corpus(t) {
		if unreadable[name] {
			continue
		}
		t.Run(name, func(t *testing.T) {
			out, err := RewriteNote(raw, newID)
			if err != nil {
				t.Fatal(err)
			}
			inHeader, inBody := split(t, raw)
			outHeader, outBody := split(t, out)
			if !bytes.Equal(outBody, inBody) {
				t.Errorf("the body changed")
			}
			if ids := namedFields(outHeader, "Message-Id"); len(ids) != 1 || readHeader(t, out).Get("Message-Id") != "<"+newID+">" {
				t.Errorf("Message-Id fields = %q, want one <%s>", ids, newID)
			}
			// Everything else is kept byte for byte and in order, less the
			// removed fields.
			var want, got [][]byte
			for _, f := range fields(inHeader) {
				if !isRemoved(fieldName(f)) && !strings.EqualFold(fieldName(f), "Message-Id") {
					want = append(want, f)
				}
			}
			for _, f := range fields(outHeader) {
				if isRemoved(fieldName(f)) {
					t.Errorf("%s kept", fieldName(f))
				}
				if !strings.EqualFold(fieldName(f), "Message-Id") {
					got = append(got, f)
				}
			}
			if !slices.EqualFunc(got, want, bytes.Equal) {
				t.Errorf("the note's fields changed:\n got %q\nwant %q", got, want)
			}
			for _, keep := range []string{"From", "To", "Cc", "Subject", "Date", "In-Reply-To", "References", "Thread-Index"} {
				if in, o := namedFields(inHeader, keep), namedFields(outHeader, keep); !slices.EqualFunc(in, o, bytes.Equal) {
					t.Errorf("%s: %q became %q", keep, in, o)
				}
			}
		})
	}
}

// bodyOf returns what follows the end of raw's header the way a MIME reader
// sees it: after the first empty line, where lines end in LF or CRLF. found
// is false when the header runs to the end.
func bodyOf(raw []byte) (body []byte, found bool) {
	rest := raw
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return nil, false
		}
		line := rest[:i]
		line = bytes.TrimSuffix(line, []byte("\r"))
		rest = rest[i+1:]
		if len(line) == 0 {
			return rest, true
		}
	}
}

func FuzzRewrite(f *testing.F) {
	for _, raw := range corpus(f) {
		f.Add(raw)
	}
	for _, s := range []string{"", "\r\n", "\n\n", "Subject: x", "Subject: x\n\nbody", " x: y\r\n\r\n", "a:\r\n\tb\r\n\r\nc",
		"Bcc: a@b\r\nBCC: c@d\r\nX-Mozilla-Status: 1\r\n\r\n", ": empty key\r\n\r\nbody", "Subject: x\r\rBcc: y\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r := baseRewrite()
		in := bytes.Clone(raw)
		out, err := r.Rewrite(raw)
		if !bytes.Equal(in, raw) {
			t.Fatal("Rewrite changed its input")
		}
		if err != nil {
			if !errors.Is(err, ErrMalformedMessage) {
				t.Fatalf("Rewrite error %v does not wrap ErrMalformedMessage", err)
			}
			if out != nil {
				t.Fatal("output with an error")
			}
			return
		}
		if body, ok := bodyOf(raw); ok && !bytes.HasSuffix(out, body) {
			t.Fatalf("the output does not end with the input's body %q:\n%q", body, out)
		}
		if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 && !bytes.HasSuffix(out, raw[i+4:]) {
			t.Fatalf("the output does not end with what follows the input's first CRLFCRLF")
		}
		// The output's own header says what the rewrite promises.
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(out)))
		if err != nil {
			t.Fatalf("the output header cannot be read back: %v\n%q", err, out)
		}
		if v := h.Values("Message-Id"); len(v) != 1 || v[0] != "<"+r.MessageID+">" {
			t.Fatalf("Message-Id = %q", v)
		}
		if v := h.Values("From"); len(v) != 1 || v[0] != FromHeader(r.AgentName, r.InboxName, r.InboxAddress) {
			t.Fatalf("From = %q", v)
		}
		for _, name := range []string{"Bcc", "Sender", "Return-Path", "Disposition-Notification-To"} {
			if h.Has(name) {
				t.Fatalf("%s kept: %q", name, h.Values(name))
			}
		}
		fs := h.Fields()
		for fs.Next() {
			if isRemoved(fs.Key()) {
				t.Fatalf("%s kept", fs.Key())
			}
		}
	})
}

func TestRewriteSubjectTag(t *testing.T) {
	for _, tc := range []struct{ subject, tag, want string }{
		{"Subject: Re: Printer\r\n", "[#12]", "Subject: Re: Printer [#12]\r\n"},
		{"Subject: Re: Printer [#12]\r\n", "[#12]", "Subject: Re: Printer [#12]\r\n"},
		{"Subject: =?UTF-8?Q?Re=3A_caf=C3=A9_=5B#12=5D?=\r\n", "[#12]", "Subject: =?UTF-8?Q?Re=3A_caf=C3=A9_=5B#12=5D?=\r\n"},
		{"Subject: =?UTF-8?Q?caf=C3=A9?=\r\n", "[#3]", "Subject: =?UTF-8?Q?caf=C3=A9?= [#3]\r\n"},
		{"", "[#3]", "Subject: [#3]\r\n"},
		{"Subject: Re: Printer\r\n", "", "Subject: Re: Printer\r\n"},
	} {
		raw := []byte(tc.subject + "From: a@b\r\n\r\nbody\r\n")
		out, err := ReplyRewrite{To: "o@x", ReplyTo: "s+1@x", MessageID: "m@x", InboxAddress: "s@x", SubjectTag: tc.tag}.Rewrite(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), tc.want) || strings.Count(string(out), "Subject:") != 1 {
			t.Errorf("subject %q with tag %q:\n%s\nwant %q", tc.subject, tc.tag, out, tc.want)
		}
	}
}
