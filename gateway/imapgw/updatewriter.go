package imapgw

import (
	"reflect"
	"unsafe"

	"github.com/emersion/go-imap/v2/imapserver"
)

// updateWriterFor returns an UpdateWriter of the connection, for untagged
// FLAGS in the middle of a command (session.flushFlags), or nil.
//
// go-imap's beta hands an UpdateWriter only to Session.Poll and Idle, and
// calls Poll after neither LOGIN nor SELECT: the first FETCH after a SELECT
// would otherwise have no way to announce a keyword before it shows it
// (RFC 9051 7.3.5). The library is pinned (go.mod) and only this package
// sees it; the layout is checked here, so a version that changes it gets
// nil (and TestKeywordsAnnouncedBeforeUse fails) rather than a bad pointer.
// An exported constructor upstream, or our fork, replaces this.
func updateWriterFor(c *imapserver.Conn) *imapserver.UpdateWriter {
	if c == nil || !updateWriterLayoutOK() {
		return nil
	}
	w := &updateWriterLayout{conn: c}
	return (*imapserver.UpdateWriter)(unsafe.Pointer(w))
}

// updateWriterLayout mirrors imapserver.UpdateWriter of v2.0.0-beta.8.
type updateWriterLayout struct {
	conn         *imapserver.Conn
	allowExpunge bool
}

func updateWriterLayoutOK() bool {
	want := reflect.TypeFor[updateWriterLayout]()
	got := reflect.TypeFor[imapserver.UpdateWriter]()
	if got.Size() != want.Size() || got.NumField() != want.NumField() {
		return false
	}
	for i := range want.NumField() {
		g, w := got.Field(i), want.Field(i)
		if g.Name != w.Name || g.Type != w.Type || g.Offset != w.Offset {
			return false
		}
	}
	return true
}
