// Package mimeparts walks a message's MIME parts to a bounded depth
// (DESIGN.md §8). It is shared by the decisions (policy), the search index
// (store/searchtext) and the protocol edge, and imports nothing of
// supportgate's.
package mimeparts

import gomessage "github.com/emersion/go-message"

// MaxDepth bounds how deep the gateway follows nested multiparts
// (DESIGN.md §8: MIME is parsed to a bounded depth, deeper parts are
// opaque). Each level reads its bytes through the readers of every level
// above it, so an unbounded depth costs time quadratic in the size of a
// hostile message; with a bound it is linear. go-imap's BODYSTRUCTURE has
// the same bound (third_party/go-imap: MaxBodyStructureDepth).
const MaxDepth = 50

// WalkParts calls f for ent and every part below it, depth first, in
// order, to MaxDepth levels: a multipart at that depth is passed to f
// and not entered. f returns false to stop the walk. Unlike go-message's
// Entity.Walk, a hostile nesting cannot make it slow or deep.
func Walk(ent *gomessage.Entity, f func(part *gomessage.Entity) bool) {
	walk(ent, 0, f)
}

func walk(ent *gomessage.Entity, depth int, f func(part *gomessage.Entity) bool) bool {
	if !f(ent) {
		return false
	}
	if depth >= MaxDepth {
		return true
	}
	mr := ent.MultipartReader()
	if mr == nil {
		return true
	}
	for {
		part, err := mr.NextPart()
		if err != nil {
			return true // the end, or a broken multipart: what was read is all
		}
		if !walk(part, depth+1, f) {
			return false
		}
	}
}
