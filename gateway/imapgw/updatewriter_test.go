package imapgw

import "testing"

// TestUpdateWriterLayout: the pinned go-imap's UpdateWriter is what
// updateWriterFor mirrors; a library update that changes it fails here.
func TestUpdateWriterLayout(t *testing.T) {
	if !updateWriterLayoutOK() {
		t.Fatal("imapserver.UpdateWriter changed: update updateWriterLayout (or use an exported constructor)")
	}
}
