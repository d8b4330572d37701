package imapgw

import (
	"bytes"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// bodyStructure is the library's BODYSTRUCTURE of raw, made writable: the
// library builds a multipart without children for a broken multipart
// (malformed MIME from the internet) and then panics writing it, which
// drops the agent's connection on every FETCH of the folder. Such a part is
// shown as the single opaque part it really is (RFC 9051 7.5.2).
func bodyStructure(raw []byte) imap.BodyStructure {
	return unmark(bodyStructureMarked(raw))
}

// markedPart is an opaque part that replaced a broken multipart: its size
// is the whole message's, which the metadata cache (meta.go) records as
// such, so that it is right for any served size.
type markedPart struct {
	*imap.BodyStructureSinglePart
}

// bodyStructureMarked is bodyStructure with the replaced parts marked.
func bodyStructureMarked(raw []byte) imap.BodyStructure {
	return fixBodyStructure(imapserver.ExtractBodyStructure(bytes.NewReader(raw)), int64(len(raw)))
}

func fixBodyStructure(bs imap.BodyStructure, size int64) imap.BodyStructure {
	mp, ok := bs.(*imap.BodyStructureMultiPart)
	if !ok {
		return bs
	}
	if len(mp.Children) == 0 {
		return &markedPart{&imap.BodyStructureSinglePart{Type: "application", Subtype: "octet-stream",
			Encoding: "7bit", Size: uint32(min(size, 1<<32-1)), Extended: &imap.BodyStructureSinglePartExt{}}}
	}
	for i, c := range mp.Children {
		mp.Children[i] = fixBodyStructure(c, size)
	}
	return mp
}

// unmark replaces marked parts by the plain parts they hold.
func unmark(bs imap.BodyStructure) imap.BodyStructure {
	switch b := bs.(type) {
	case *markedPart:
		return b.BodyStructureSinglePart
	case *imap.BodyStructureMultiPart:
		for i, c := range b.Children {
			b.Children[i] = unmark(c)
		}
	}
	return bs
}

// withExtensions gives every part of bs its extension data (empty where it
// has none), which an extended BODYSTRUCTURE needs of every part: the
// library panics writing a part without it, and the agent's connection
// dropped on every FETCH of a folder holding such a message (an opaque
// part made for broken MIME, metadata cached without it).
func withExtensions(bs imap.BodyStructure) {
	switch b := bs.(type) {
	case *imap.BodyStructureSinglePart:
		if b.Extended == nil {
			b.Extended = &imap.BodyStructureSinglePartExt{}
		}
		if b.MessageRFC822 != nil && b.MessageRFC822.BodyStructure != nil {
			withExtensions(b.MessageRFC822.BodyStructure)
		}
	case *imap.BodyStructureMultiPart:
		if b.Extended == nil {
			b.Extended = &imap.BodyStructureMultiPartExt{}
		}
		for _, c := range b.Children {
			withExtensions(c)
		}
	}
}
