package policy

import (
	gomessage "github.com/emersion/go-message"

	"github.com/supportgate/supportgate/internal/mimeparts"
)

// MaxMIMEDepth bounds how deep the gateway follows nested multiparts
// (DESIGN.md §8; internal/mimeparts).
const MaxMIMEDepth = mimeparts.MaxDepth

// WalkParts calls f for ent and every part below it, depth first, to
// MaxMIMEDepth levels (mimeparts.Walk).
func WalkParts(ent *gomessage.Entity, f func(part *gomessage.Entity) bool) {
	mimeparts.Walk(ent, f)
}
