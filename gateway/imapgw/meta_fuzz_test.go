package imapgw

import (
	"reflect"
	"testing"
)

// FuzzMeta: for any message, the cached ENVELOPE and BODYSTRUCTURE decode
// to what parsing the served bytes gives (the cache never changes an
// answer), and arbitrary cached bytes are refused or decoded, never a panic.
func FuzzMeta(f *testing.F) {
	for _, raw := range corpus(f) {
		f.Add(raw, MessageMeta(raw))
	}
	f.Fuzz(func(t *testing.T, raw, damaged []byte) {
		served := joinServed(servedPrefix, raw)
		got, err := decodeMeta(MessageMeta(raw), int64(len(served)))
		if err != nil {
			t.Fatalf("the cached form of %q does not decode: %v", raw, err)
		}
		if want := envelope(served); !reflect.DeepEqual(normalize(got.env), normalize(want)) {
			t.Fatalf("envelope of %q\n got %+v\nwant %+v", raw, got.env, want)
		}
		if want := bodyStructure(served); !reflect.DeepEqual(normalize(got.bs), normalize(want)) {
			t.Fatalf("body structure of %q\n got %#v\nwant %#v", raw, got.bs, want)
		}
		decodeMeta(damaged, int64(len(raw)))
	})
}
