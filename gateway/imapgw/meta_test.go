package imapgw

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/supportgate/supportgate/store"
)

// corpus is every .eml of testdata with malformed mail added: a broken
// multipart (no boundary, nested), a header without a blank line, a header
// that does not parse from its first line, a message/rfc822 part, and
// nothing at all.
func corpus(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, pat := range []string{"../../testdata/eml/*.eml", "../../testdata/threading/*.eml"} {
		files, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(f)] = b
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d corpus files found", len(out))
	}
	out["broken-multipart"] = []byte("From: a@b.example\r\nSubject: x\r\nContent-Type: multipart/mixed\r\n\r\nno boundary at all\r\n")
	out["nested-broken-multipart"] = []byte("From: a@b.example\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n" +
		"Content-Type: multipart/alternative\r\n\r\nbroken\r\n--o\r\nContent-Type: text/plain\r\n\r\nfine\r\n--o--\r\n")
	out["header-only"] = []byte("From: a@b.example\r\nSubject: only a header")
	out["bad-first-line"] = []byte(" folded continuation first\r\nFrom: a@b.example\r\n\r\nbody\r\n")
	out["no-colon"] = []byte("this is not a header\r\n\r\nbody\r\n")
	out["empty"] = nil
	out["rfc822"] = []byte("From: a@b.example\r\nDate: Tue, 14 Nov 2023 22:13:20 +0130\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n" +
		"Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"fwd.eml\"\r\nContent-Language: en, fr\r\n\r\n" +
		"From: \"Dan\" <dan@c.example>\r\nTo: x@y.example, z@w.example\r\nSubject: =?UTF-8?Q?Caf=C3=A9?=\r\nIn-Reply-To: <a@b> <c@d>\r\n\r\ninner\r\n--o--\r\n")
	return out
}

// entriesFor are the ways a message is served: a conversation's message
// with the X-Supportgate-* fields, and a private message's own bytes.
func entriesFor(raw []byte) []store.MailboxEntry {
	return []store.MailboxEntry{
		{Message: 7, Conversation: 42, Kind: store.KindInbound, SenderRole: store.SenderStranger, Size: int64(len(raw))},
		{Message: 8, Conversation: 4242, Kind: store.KindReply, HiddenBCC: []string{"x@y.example", "z@w.example"}, Size: int64(len(raw))},
		{Message: 0, Size: int64(len(raw))},
	}
}

// normalize makes what FETCH writes comparable: the library writes an
// empty list or map as it writes none (NIL), and a date as its instant and
// zone offset. It returns a copy of v with empty maps and slices nil and
// dates in a fixed zone of their offset.
func normalize(v any) any {
	if v == nil {
		return nil
	}
	return canon(reflect.ValueOf(v)).Interface()
}

var timeType = reflect.TypeOf(time.Time{})

func canon(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(canon(v.Elem()))
		return p
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(canon(v.Elem()))
		return out
	case reflect.Struct:
		if v.Type() == timeType {
			t := v.Interface().(time.Time)
			if !t.IsZero() {
				_, off := t.Zone()
				t = time.Unix(t.Unix(), 0).In(time.FixedZone("", off))
			}
			return reflect.ValueOf(t)
		}
		out := reflect.New(v.Type()).Elem()
		for i := range v.NumField() {
			out.Field(i).Set(canon(v.Field(i)))
		}
		return out
	case reflect.Slice:
		if v.Len() == 0 {
			return reflect.Zero(v.Type())
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(canon(v.Index(i)))
		}
		return out
	case reflect.Map:
		if v.Len() == 0 {
			return reflect.Zero(v.Type())
		}
		out := reflect.MakeMap(v.Type())
		for _, k := range v.MapKeys() {
			out.SetMapIndex(k, canon(v.MapIndex(k)))
		}
		return out
	}
	return v
}

// TestMetaEqualsParsed checks that the cached ENVELOPE and BODYSTRUCTURE
// equal the ones parsed from the served bytes, as FETCH computed them
// before the cache, over the corpus, malformed mail included.
func TestMetaEqualsParsed(t *testing.T) {
	for name, raw := range corpus(t) {
		for _, e := range entriesFor(raw) {
			var served, stored []byte
			if e.Message == 0 {
				served, stored = raw, metaOf(raw)
			} else {
				served, stored = joinServed(servedHeader(e), raw), MessageMeta(raw)
			}
			got, err := decodeMeta(stored, int64(len(served)))
			if err != nil {
				t.Fatalf("%s: decoding: %v", name, err)
			}
			wantEnv, wantBS := envelope(served), bodyStructure(served)
			if !reflect.DeepEqual(normalize(got.env), normalize(wantEnv)) {
				t.Errorf("%s (message %d): envelope\n got %+v\nwant %+v", name, e.Message, got.env, wantEnv)
			}
			if !reflect.DeepEqual(normalize(got.bs), normalize(wantBS)) {
				t.Errorf("%s (message %d): body structure\n got %#v\nwant %#v", name, e.Message, got.bs, wantBS)
			}
		}
	}
}

// TestMetaRFC822 checks that a forwarded message's own envelope and
// structure survive the cache (RFC 9051 7.5.2 body-type-msg).
func TestMetaRFC822(t *testing.T) {
	raw := corpus(t)["rfc822"]
	d, err := decodeMeta(MessageMeta(raw), 0)
	if err != nil {
		t.Fatal(err)
	}
	mp, ok := d.bs.(*imap.BodyStructureMultiPart)
	if !ok || len(mp.Children) != 1 {
		t.Fatalf("structure %#v", d.bs)
	}
	part := mp.Children[0].(*imap.BodyStructureSinglePart)
	if part.MessageRFC822 == nil || part.MessageRFC822.Envelope.Subject != "Café" || len(part.MessageRFC822.Envelope.To) != 2 {
		t.Fatalf("forwarded message %#v", part.MessageRFC822)
	}
	if ext := part.Extended; ext == nil || ext.Disposition.Params["filename"] != "fwd.eml" || len(ext.Language) != 2 {
		t.Fatalf("extension data %#v", part.Extended)
	}
	if _, off := d.env.Date.Zone(); off != 90*60 {
		t.Fatalf("date %v: the zone offset is lost", d.env.Date)
	}
}

// TestMetaDamaged checks that damaged or foreign cached data is refused (and
// the message parsed instead), never a panic.
func TestMetaDamaged(t *testing.T) {
	good := MessageMeta(corpus(t)["rfc822"])
	for i := range good {
		if _, err := decodeMeta(good[:i], 100); err == nil {
			t.Errorf("a cut at %d of %d decoded", i, len(good))
		}
	}
	for _, b := range [][]byte{nil, {0}, {2, 0}, {metaVersion, 1, 1}, bytes.Repeat([]byte{0xff}, 20)} {
		if _, err := decodeMeta(b, 100); err == nil {
			t.Errorf("%x decoded", b)
		}
	}
	// Every byte flipped: an error or a structure, never a panic.
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x5a
		decodeMeta(b, 100)
	}
}

// BenchmarkMetaDecode is what FETCH (ENVELOPE BODYSTRUCTURE) costs a
// message with the cache; BenchmarkMetaParse what it cost without.
func BenchmarkMetaDecode(b *testing.B) {
	raw := benchRaw(0)
	m := MessageMeta(raw)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeMeta(m, int64(len(raw))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMetaParse(b *testing.B) {
	raw := benchRaw(0)
	b.ReportAllocs()
	for b.Loop() {
		envelope(raw)
		bodyStructure(raw)
	}
}
