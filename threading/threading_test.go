package threading

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/supportgate/supportgate/domain"
)

// corpusDir holds the .eml corpus shared with the policy tests.
const corpusDir = "../testdata/eml"

// corpus returns the raw .eml files of testdata/eml by file name.
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

// corpusHeaders parses the header of every corpus file that net/mail can
// read; files it cannot read are left out.
func corpusHeaders(tb testing.TB) map[string]mail.Header {
	tb.Helper()
	out := map[string]mail.Header{}
	for name, raw := range corpus(tb) {
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			continue
		}
		out[name] = m.Header
	}
	return out
}

// corpusRecipients returns every address of the To and Cc fields of the corpus.
func corpusRecipients(tb testing.TB) []string {
	var out []string
	for _, h := range corpusHeaders(tb) {
		for _, k := range []string{"To", "Cc"} {
			list, _ := h.AddressList(k)
			for _, a := range list {
				out = append(out, a.Address)
			}
		}
	}
	slices.Sort(out)
	return out
}

// corpusIDValues returns the raw values of the Message-ID, In-Reply-To and
// References fields of the corpus.
func corpusIDValues(tb testing.TB) []string {
	var out []string
	for _, h := range corpusHeaders(tb) {
		for _, k := range []string{"Message-Id", "In-Reply-To", "References"} {
			if v := h.Get(k); v != "" {
				out = append(out, v)
			}
		}
	}
	slices.Sort(out)
	return out
}

// corpusMessageIDs returns every msg-id found in the corpus headers.
func corpusMessageIDs(tb testing.TB) []string {
	var out []string
	for _, v := range corpusIDValues(tb) {
		out = append(out, ParseMessageIDs(v)...)
	}
	return out
}

func TestCorpusIsCRLF(t *testing.T) {
	for name, raw := range corpus(t) {
		if len(raw) >= 4096 {
			t.Errorf("%s is %d bytes; keep corpus files under 4 KiB", name, len(raw))
		}
		if !bytes.HasSuffix(raw, []byte("\r\n")) {
			t.Errorf("%s does not end with CRLF", name)
		}
		if n, m := bytes.Count(raw, []byte("\n")), bytes.Count(raw, []byte("\r\n")); n != m || bytes.Count(raw, []byte("\r")) != m {
			t.Errorf("%s has bare CR or LF: %d LF, %d CRLF", name, n, m)
		}
	}
}

func TestParseMessageIDs(t *testing.T) {
	long250 := strings.Repeat("a", 248) + "@b"
	many := make([]string, 150)
	for i := range many {
		many[i] = fmt.Sprintf("<id%d@example.test>", i)
	}
	newest100 := make([]string, 100)
	for i := range newest100 {
		newest100[i] = fmt.Sprintf("id%d@example.test", i+50)
	}
	tests := []struct {
		name  string
		value string
		want  []string
	}{
		{"empty", "", nil},
		{"blank", " \r\n\t", nil},
		{"one", "<a@example.test>", []string{"a@example.test"}},
		{"two", "<a@x.test> <b@y.test>", []string{"a@x.test", "b@y.test"}},
		{"adjacent", "<a@x.test><b@y.test>", []string{"a@x.test", "b@y.test"}},
		{"comma separated", "<a@x.test>, <b@y.test>", []string{"a@x.test", "b@y.test"}},
		{"folded list", "\r\n <a@x.test>\r\n\t<b@y.test>\r\n ", []string{"a@x.test", "b@y.test"}},
		{"leading comment", "(first) <a@x.test>", []string{"a@x.test"}},
		{"trailing comment", `<a@x.test> (Jan's message of "Tue, 4 Mar 2025 09:12:43 +0000")`, []string{"a@x.test"}},
		{"comments between", "<a@x.test> (c1) (c2 (nested)) <b@y.test>", []string{"a@x.test", "b@y.test"}},
		{"folding inside", "<a.b.c\r\n @x.test>", []string{"a.b.c@x.test"}},
		{"space inside", "< a@x.test >", []string{"a@x.test"}},
		{"tab inside", "<a@\tx.test>", []string{"a@x.test"}},
		{"no brackets", "a@x.test", []string{"a@x.test"}},
		{"no brackets list", "a@x.test\r\n b@y.test", []string{"a@x.test", "b@y.test"}},
		{"no brackets garbage dropped", "garbage sg.42.8 (no brackets) 20250301.abc@beispiel.example", []string{"20250301.abc@beispiel.example"}},
		{"only garbage", "garbage, more garbage", nil},
		{"brackets win over bare ids", "<a@x.test> b@y.test", []string{"a@x.test"}},
		{"empty brackets", "<>", nil},
		{"empty brackets then id", "<> <a@x.test>", []string{"a@x.test"}},
		{"unterminated", "<a@x.test", nil},
		{"unterminated second", "<a@x.test> <b@y.test", []string{"a@x.test"}},
		{"stray closing bracket", "> a@x.test", nil},
		{"nul dropped", "<a\x00b@x.test> <c@y.test>", []string{"c@y.test"}},
		{"escape dropped", "<a\x1b[2Jb@x.test>", nil},
		{"del dropped", "<a\x7f@x.test>", nil},
		{"bare cr removed like folding", "<a\rb@x.test>", []string{"ab@x.test"}},
		{"c1 control dropped", "<a\u0080b@x.test> <c@y.test>", []string{"c@y.test"}},
		{"csi dropped", "<a\u009b2Jb@x.test>", nil},
		{"invalid utf-8 dropped", "<a\xffb@x.test> <c@y.test>", []string{"c@y.test"}},
		{"unicode space removed", "<a\u00a0b@x.test>", []string{"ab@x.test"}},
		{"utf-8 kept", "<münchen.1@example.test>", []string{"münchen.1@example.test"}},
		{"250 chars kept", "<" + long250 + ">", []string{long250}},
		{"251 chars dropped", "<a" + long250 + "> <c@y.test>", []string{"c@y.test"}},
		{"long id folded", "<" + strings.Repeat("a", 100) + "\r\n " + strings.Repeat("b", 48) + "@c>", []string{strings.Repeat("a", 100) + strings.Repeat("b", 48) + "@c"}},
		{"150 ids keep the newest 100", strings.Join(many, "\r\n "), newest100},
		{"100 ids kept", strings.Join(many[:100], " "), func() []string {
			out := make([]string, 100)
			for i := range out {
				out[i] = fmt.Sprintf("id%d@example.test", i)
			}
			return out
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseMessageIDs(tt.value)
			if !slices.Equal(got, tt.want) {
				t.Errorf("ParseMessageIDs(%q)\n got %q\nwant %q", tt.value, got, tt.want)
			}
			first := ""
			if len(tt.want) > 0 {
				first = tt.want[0]
			}
			if got := ParseMessageID(tt.value); got != first {
				t.Errorf("ParseMessageID(%q) = %q, want %q", tt.value, got, first)
			}
		})
	}
}

func TestParseMessageIDsCorpus(t *testing.T) {
	hs := corpusHeaders(t)
	tests := []struct {
		file, field string
		want        []string
	}{
		{"outlook-reply.eml", "Message-Id", []string{"AS8PR04MB8247A1B2C3D4E5F6A7B8C9D0E1F2A@AS8PR04MB8247.eurprd04.prod.outlook.com"}},
		{"outlook-reply.eml", "References", []string{"AS8PR04MB82479F1E2D3C4B5A69788796A5B4C@AS8PR04MB8247.eurprd04.prod.outlook.com", corpusMessageID7}},
		{"outlook-reply.eml", "In-Reply-To", []string{corpusMessageID7}},
		{"auto-reply.eml", "In-Reply-To", []string{corpusMessageID8}},
		{"malformed-headers.eml", "In-Reply-To", []string{corpusMessageID9}},
		{"apple-mail.eml", "In-Reply-To", nil},
		{"bounce-dsn.eml", "References", nil},
	}
	for _, tt := range tests {
		h, ok := hs[tt.file]
		if !ok {
			t.Fatalf("%s: net/mail cannot read the header", tt.file)
		}
		if got := ParseMessageIDs(h.Get(tt.field)); !slices.Equal(got, tt.want) {
			t.Errorf("%s %s: ParseMessageIDs = %q, want %q", tt.file, tt.field, got, tt.want)
		}
	}
	if refs := ParseMessageIDs(hs["gmail-thread.eml"].Get("References")); len(refs) != 24 || !strings.HasPrefix(refs[0], "CAK8JZp") || !strings.HasPrefix(refs[23], "CA+JvhQ8") {
		t.Errorf("gmail-thread.eml References = %d ids %q", len(refs), refs)
	}
	// Garbage without angle brackets: only what looks like an id survives.
	for _, id := range ParseMessageIDs(hs["malformed-headers.eml"].Get("References")) {
		if !strings.Contains(id, "@") || strings.ContainsAny(id, "() ") {
			t.Errorf("malformed-headers.eml References gave %q", id)
		}
	}
	if refs := ParseMessageIDs(hs["malformed-headers.eml"].Get("References")); !slices.Contains(refs, "20250301.abc@beispiel.example") {
		t.Errorf("malformed-headers.eml References = %q, want it to hold 20250301.abc@beispiel.example", refs)
	}
	if _, ok := hs["malformed-no-colon.eml"]; ok {
		t.Error("net/mail read malformed-no-colon.eml; it is meant to be unreadable")
	}
}

func TestReferencedIDs(t *testing.T) {
	tests := []struct {
		name                  string
		inReplyTo, references []string
		want                  []string
	}{
		{"nothing", nil, nil, nil},
		{"in-reply-to only", []string{"p"}, nil, []string{"p"}},
		{"references newest first", nil, []string{"a", "b", "c"}, []string{"c", "b", "a"}},
		{"in-reply-to first", []string{"x"}, []string{"a", "b", "c"}, []string{"x", "c", "b", "a"}},
		{"parent also last reference", []string{"c"}, []string{"a", "b", "c"}, []string{"c", "b", "a"}},
		{"parent in the middle", []string{"b"}, []string{"a", "b", "c"}, []string{"b", "c", "a"}},
		{"repeats in references", nil, []string{"a", "b", "a", "c", "b"}, []string{"b", "c", "a"}},
		{"two in-reply-to", []string{"x", "y", "x"}, []string{"y", "z"}, []string{"x", "y", "z"}},
		{"empty ids skipped", []string{""}, []string{"", "a", ""}, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ReferencedIDs(tt.inReplyTo, tt.references)
			if !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Errorf("ReferencedIDs(%q, %q) = %q, want %q", tt.inReplyTo, tt.references, got, tt.want)
			}
		})
	}
	// The inputs are not modified.
	refs := []string{"a", "b", "c"}
	ReferencedIDs([]string{"x"}, refs)
	if !slices.Equal(refs, []string{"a", "b", "c"}) {
		t.Errorf("ReferencedIDs changed its input: %q", refs)
	}
}

func TestSplitPlus(t *testing.T) {
	tests := []struct {
		addr, base, tag string
	}{
		{"support@example.test", "support@example.test", ""},
		{"support+42-abc@example.test", "support@example.test", "42-abc"},
		{"Support+42-ABC@Example.TEST", "support@example.test", "42-abc"},
		{"  support+x@example.test\t", "support@example.test", "x"},
		{"support+@example.test", "support@example.test", ""},
		{"support+a+b@example.test", "support@example.test", "a+b"},
		{"+tag@example.test", "@example.test", "tag"},
		{"bounces+1234-abc@example.test", "bounces@example.test", "1234-abc"},
		{"first.last+tag@sub.example.test", "first.last@sub.example.test", "tag"},
		{"no-at-sign", "no-at-sign", ""},
		{"plus+but-no-at", "plus+but-no-at", ""},
		{"", "", ""},
		{"support@plus+domain.test", "support@plus+domain.test", ""},
		{`"a@b"+t@example.test`, `"a@b"@example.test`, "t"},
	}
	for _, tt := range tests {
		base, tag := SplitPlus(tt.addr)
		if base != tt.base || tag != tt.tag {
			t.Errorf("SplitPlus(%q) = %q, %q; want %q, %q", tt.addr, base, tag, tt.base, tt.tag)
		}
	}
}

// mapIndex is a fake Index: Message-ID -> conversation. Like the store, it
// answers with the conversation of the first of ids that it knows.
type mapIndex struct {
	m     map[string]int64
	err   error
	calls [][]string
}

func (x *mapIndex) ConversationByMessageID(_ context.Context, ids []string) (int64, bool, error) {
	x.calls = append(x.calls, slices.Clone(ids))
	if x.err != nil {
		return 0, false, x.err
	}
	for _, id := range ids {
		if c, ok := x.m[id]; ok {
			return c, true, nil
		}
	}
	return 0, false, nil
}

// Every conversation a fake index is asked about exists, in the demo inbox,
// unless listed in missing.
var missing = map[int64]bool{404: true}

func fakeConversation(id int64) (domain.Conversation, error) {
	if missing[id] {
		return domain.Conversation{}, domain.ErrNotFound
	}
	return domain.Conversation{ID: id, Inbox: "support@example.test", Owner: "owner@customer.example", Status: domain.StatusOpen}, nil
}

func (x *mapIndex) Conversation(_ context.Context, id int64) (domain.Conversation, error) {
	return fakeConversation(id)
}

func (x *mapIndex) ContinuityCandidate(context.Context, string, string, string, time.Time) (int64, bool, error) {
	return 0, false, nil
}

// noIndex fails the test when its Message-ID index is consulted.
type noIndex struct{ t *testing.T }

func (x noIndex) Conversation(_ context.Context, id int64) (domain.Conversation, error) {
	return fakeConversation(id)
}

func (x noIndex) ContinuityCandidate(context.Context, string, string, string, time.Time) (int64, bool, error) {
	return 0, false, nil
}

// dec is the part of a Decision the tables compare.
type dec struct {
	conv int64
	rule Rule
}

func asDec(d Decision) dec { return dec{d.Conv.ID, d.Rule} }

func (x noIndex) ConversationByMessageID(_ context.Context, ids []string) (int64, bool, error) {
	x.t.Errorf("the index was consulted with %q; this decision needs no index", ids)
	return 0, false, errors.New("no index")
}

func TestDecide(t *testing.T) {
	k := testKeys()
	tok42 := k.ReplyToken(42)
	wrongMAC := "42-" + strings.Repeat("a", macLen)
	signed7 := k.MessageID(7, 70, "mail.example.test")
	signed8 := k.MessageID(8, 80, "mail.example.test")
	foreignSigned := otherKeys().MessageID(9, 90, "mail.example.test")
	errStore := errors.New("store is down")
	index := map[string]int64{
		"old@customer.example":    1,
		"mid@customer.example":    2,
		"parent@customer.example": 3,
		foreignSigned:             11,
	}

	tests := []struct {
		name      string
		in        Input
		index     map[string]int64 // nil: the index must not be consulted
		indexErr  error
		want      dec
		wantErr   error
		wantCalls [][]string // what the index was asked, when it is consulted
	}{
		{
			name: "nothing matches",
			in:   Input{Recipients: []string{"support@example.test"}},
			want: dec{0, RuleNew},
		},
		{
			name: "no recipients at all",
			want: dec{0, RuleNew},
		},
		{
			name: "reply token",
			in:   Input{Recipients: []string{"support+" + tok42 + "@example.test"}},
			want: dec{42, RuleReplyToken},
		},
		{
			name: "reply token folded to upper case by an MTA",
			in:   Input{Recipients: []string{strings.ToUpper("support+" + tok42 + "@example.test")}},
			want: dec{42, RuleReplyToken},
		},
		{
			name: "reply token on the second recipient",
			in:   Input{Recipients: []string{"billing@example.test", "support+" + tok42 + "@example.test"}},
			want: dec{42, RuleReplyToken},
		},
		{
			name: "rule 1 beats rule 2",
			in: Input{
				Recipients: []string{"support+" + tok42 + "@example.test"},
				InReplyTo:  []string{signed7},
				References: []string{"parent@customer.example"},
			},
			want: dec{42, RuleReplyToken},
		},
		{
			name:     "rule 1 beats a broken index",
			in:       Input{Recipients: []string{"support+" + tok42 + "@example.test"}, InReplyTo: []string{"parent@customer.example"}},
			indexErr: errStore,
			want:     dec{42, RuleReplyToken},
		},
		{
			name: "wrong MAC is ignored and the rules go on",
			in: Input{
				Recipients: []string{"support+" + wrongMAC + "@example.test"},
				InReplyTo:  []string{"parent@customer.example"},
			},
			index:     index,
			want:      dec{3, RuleReferences},
			wantCalls: [][]string{{"parent@customer.example"}},
		},
		{
			name: "wrong MAC alone is a new conversation, not an error",
			in:   Input{Recipients: []string{"support+" + wrongMAC + "@example.test", "support+garbage@example.test", "support+@example.test"}},
			want: dec{0, RuleNew},
		},
		{
			name: "bounce token is not a reply token",
			in:   Input{Recipients: []string{"bounces+" + k.BounceToken(42) + "@example.test"}},
			want: dec{0, RuleNew},
		},
		{
			name: "token of another secret is ignored",
			in:   Input{Recipients: []string{"support+" + otherKeys().ReplyToken(42) + "@example.test"}},
			want: dec{0, RuleNew},
		},
		{
			name: "signed Message-ID threads without the index",
			in:   Input{InReplyTo: []string{signed7}},
			want: dec{7, RuleReferences},
		},
		{
			name: "signed Message-ID in References threads without the index",
			in:   Input{References: []string{"unknown-root@x.example", signed7}},
			want: dec{7, RuleReferences},
		},
		{
			name: "signed Message-ID behind unknown newer ids",
			in:   Input{InReplyTo: []string{"unknown@x.example"}, References: []string{signed7, "unknown@x.example"}},
			// The index is asked about the ids newer than the signed one;
			// none is known, so the signed id decides.
			index:     index,
			want:      dec{7, RuleReferences},
			wantCalls: [][]string{{"unknown@x.example"}},
		},
		{
			name: "newest signed Message-ID wins",
			in:   Input{InReplyTo: []string{signed8}, References: []string{signed7, signed8}},
			want: dec{8, RuleReferences},
		},
		{
			name: "newest reference wins: indexed parent before an older signed id",
			in: Input{
				InReplyTo:  []string{"parent@customer.example"},
				References: []string{signed7, "parent@customer.example"},
			},
			index:     index,
			want:      dec{3, RuleReferences},
			wantCalls: [][]string{{"parent@customer.example"}},
		},
		{
			name:      "signed Message-ID of another secret goes to the index",
			in:        Input{InReplyTo: []string{foreignSigned}},
			index:     index,
			want:      dec{11, RuleReferences},
			wantCalls: [][]string{{foreignSigned}},
		},
		{
			name: "index lookup newest first",
			in: Input{
				InReplyTo:  []string{"unknown@x.example"},
				References: []string{"old@customer.example", "mid@customer.example"},
			},
			index:     index,
			want:      dec{2, RuleReferences},
			wantCalls: [][]string{{"unknown@x.example", "mid@customer.example", "old@customer.example"}},
		},
		{
			name: "In-Reply-To before References",
			in: Input{
				InReplyTo:  []string{"old@customer.example"},
				References: []string{"mid@customer.example"},
			},
			index:     index,
			want:      dec{1, RuleReferences},
			wantCalls: [][]string{{"old@customer.example", "mid@customer.example"}},
		},
		{
			name:      "unknown references are a new conversation",
			in:        Input{InReplyTo: []string{"a@x.example"}, References: []string{"b@x.example"}},
			index:     index,
			want:      dec{0, RuleNew},
			wantCalls: [][]string{{"a@x.example", "b@x.example"}},
		},
		{
			name:      "index error is returned",
			in:        Input{InReplyTo: []string{"parent@customer.example"}},
			index:     index,
			indexErr:  errStore,
			wantErr:   errStore,
			wantCalls: [][]string{{"parent@customer.example"}},
		},
		{
			name: "index error with an older signed id is returned",
			in: Input{
				InReplyTo:  []string{"parent@customer.example"},
				References: []string{signed7},
			},
			index:     index,
			indexErr:  errStore,
			wantErr:   errStore,
			wantCalls: [][]string{{"parent@customer.example"}},
		},
		{
			name: "empty ids are not looked up",
			in:   Input{InReplyTo: []string{""}, References: []string{""}},
			want: dec{0, RuleNew},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var idx Index = noIndex{t}
			var fake *mapIndex
			if tt.index != nil || tt.indexErr != nil {
				fake = &mapIndex{m: tt.index, err: tt.indexErr}
				idx = fake
			}
			got, err := Decide(context.Background(), k, idx, tt.in)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Decide error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && asDec(got) != tt.want {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
			if fake != nil && tt.wantCalls != nil && !slices.EqualFunc(fake.calls, tt.wantCalls, slices.Equal) {
				t.Errorf("index calls = %q, want %q", fake.calls, tt.wantCalls)
			}
		})
	}
}

// TestDecideCorpus threads the corpus messages as the MX would: envelope
// recipients from To/Cc, Message-IDs from the headers parsed by net/mail.
func TestDecideCorpus(t *testing.T) {
	k := testKeys()
	hs := corpusHeaders(t)
	gmailRefs := ParseMessageIDs(hs["gmail-thread.eml"].Get("References"))
	if len(gmailRefs) != 24 {
		t.Fatalf("gmail-thread.eml has %d references, want 24", len(gmailRefs))
	}
	index := map[string]int64{
		gmailRefs[21]: 17, // the third newest
		gmailRefs[0]:  99, // the root: older, must not win
		"8F2C1D3E-4B5A-4C6D-9E7F-0A1B2C3D4E5F@icloud.example": 77, // Apple Mail's request
	}
	tests := []struct {
		file       string
		recipients []string // nil: To and Cc of the message
		want       dec
	}{
		{"outlook-reply.eml", nil, dec{42, RuleReplyToken}},
		{"outlook-reply.eml", []string{"support@example.test"}, dec{42, RuleReferences}},
		{"gmail-thread.eml", nil, dec{17, RuleReferences}},
		{"apple-mail.eml", nil, dec{0, RuleNew}},
		{"thunderbird-agent.eml", nil, dec{77, RuleReferences}},
		{"mutt-agent-bcc.eml", nil, dec{42, RuleReplyToken}},
		{"mutt-agent-bcc.eml", []string{"jan.devries@contoso.example"}, dec{42, RuleReferences}},
		{"bounce-dsn.eml", nil, dec{0, RuleNew}},
		{"auto-reply.eml", nil, dec{42, RuleReferences}},
		{"malformed-headers.eml", nil, dec{42, RuleReferences}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			h, ok := hs[tt.file]
			if !ok {
				t.Fatalf("net/mail cannot read %s", tt.file)
			}
			in := Input{
				Recipients: tt.recipients,
				InReplyTo:  ParseMessageIDs(h.Get("In-Reply-To")),
				References: ParseMessageIDs(h.Get("References")),
			}
			if in.Recipients == nil {
				for _, f := range []string{"To", "Cc"} {
					list, err := h.AddressList(f)
					if err != nil && !errors.Is(err, mail.ErrHeaderNotPresent) {
						t.Fatalf("%s: %v", f, err)
					}
					for _, a := range list {
						in.Recipients = append(in.Recipients, a.Address)
					}
				}
			}
			fake := &mapIndex{m: index}
			got, err := Decide(context.Background(), k, fake, in)
			if err != nil {
				t.Fatal(err)
			}
			if asDec(got) != tt.want {
				t.Errorf("Decide(%s) = %+v, want %+v (input %+v)", tt.file, got, tt.want, in)
			}
			if tt.file == "gmail-thread.eml" {
				if len(fake.calls) != 1 || len(fake.calls[0]) != 24 || fake.calls[0][0] != gmailRefs[23] || fake.calls[0][23] != gmailRefs[0] {
					t.Errorf("index calls for the Gmail chain = %q; want the 24 ids newest first", fake.calls)
				}
			}
		})
	}
}

// checkIDs checks what every id from ParseMessageIDs promises: it can be
// written back between angle brackets into a header.
func checkIDs(t *testing.T, value string, ids []string) {
	t.Helper()
	if len(ids) > maxMessageIDs {
		t.Fatalf("ParseMessageIDs(%q) returned %d ids, more than %d", value, len(ids), maxMessageIDs)
	}
	for _, id := range ids {
		if id == "" || len(id) > 250 {
			t.Fatalf("ParseMessageIDs(%q) returned an id of %d bytes: %q", value, len(id), id)
		}
		if !utf8.ValidString(id) {
			t.Fatalf("ParseMessageIDs(%q) returned invalid UTF-8 %q", value, id)
		}
		for _, r := range id {
			if r == '<' || r == '>' || unicode.IsSpace(r) || unicode.IsControl(r) || r < 0x21 || r == 0x7f {
				t.Fatalf("ParseMessageIDs(%q) returned %q, which holds %U", value, id, r)
			}
		}
	}
}

func FuzzParseMessageIDs(f *testing.F) {
	for _, v := range corpusIDValues(f) {
		f.Add(v)
	}
	for _, v := range []string{"", "<>", "<<a@b>>", "a@b c@d", "<a@b", "(c <x@y>) <a@b>", "<a\x00@b>", "<a\u0080@b>",
		"<a\xff@b>", "<" + strings.Repeat("x", 300) + "@b>", strings.Repeat("<a@b>", 120)} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, value string) {
		ids := ParseMessageIDs(value)
		checkIDs(t, value, ids)
		first := ""
		if len(ids) > 0 {
			first = ids[0]
		}
		if got := ParseMessageID(value); got != first {
			t.Fatalf("ParseMessageID(%q) = %q, want the first of %q", value, got, ids)
		}
		// Written back as a header value, the ids parse to themselves.
		var b strings.Builder
		for _, id := range ids {
			b.WriteString("<" + id + "> ")
		}
		if again := ParseMessageIDs(b.String()); !slices.Equal(again, ids) && len(ids) > 0 {
			t.Fatalf("ParseMessageIDs(%q) = %q, but written back %q they parse to %q", value, ids, b.String(), again)
		}
	})
}
