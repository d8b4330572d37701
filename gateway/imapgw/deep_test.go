package imapgw

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// deepMessage is a message of depth nested multiparts (issue 13).
func deepMessage(depth int) []byte {
	var b strings.Builder
	b.WriteString("From: x@y.example\r\nSubject: deep\r\nMIME-Version: 1.0\r\n")
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nhello\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return []byte(b.String())
}

// TestDeepMIMEIsBounded: a message nested deeper than the bound has a
// BODYSTRUCTURE of MaxBodyStructureDepth levels ending in an opaque part,
// and its cached metadata decodes (it failed above 100 levels, and a FETCH
// of the whole folder with it).
func TestDeepMIMEIsBounded(t *testing.T) {
	for _, depth := range []int{10, imapserver.MaxBodyStructureDepth, 101, 10_000} {
		raw := deepMessage(depth)
		d, err := decodeMeta(MessageMeta(raw), int64(len(raw)+len(servedPrefix)))
		if err != nil {
			t.Fatalf("depth %d: the metadata does not decode: %v", depth, err)
		}
		levels := 0
		bs := d.bs
		for {
			mp, ok := bs.(*imap.BodyStructureMultiPart)
			if !ok {
				break
			}
			levels++
			bs = mp.Children[0]
		}
		want := min(depth, imapserver.MaxBodyStructureDepth)
		if levels != want {
			t.Errorf("depth %d: %d multipart levels, want %d", depth, levels, want)
		}
		leaf := bs.(*imap.BodyStructureSinglePart)
		if depth > imapserver.MaxBodyStructureDepth && (leaf.Type != "application" || leaf.Subtype != "octet-stream") {
			t.Errorf("depth %d: the part below the bound is %s/%s, want an opaque application/octet-stream", depth, leaf.Type, leaf.Subtype)
		}
	}
}

// BenchmarkMessageMetaDeep: the metadata of a 10,000-level message costs
// time linear in its size (it was quadratic: 22 s).
func BenchmarkMessageMetaDeep(b *testing.B) {
	raw := deepMessage(10_000)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		MessageMeta(raw)
	}
}
