package imapserver

// supportgate: CONDSTORE (RFC 7162 3.1) on the server side, which the
// library lacked: the modifiers and data items are parsed only when the
// server's capabilities include CONDSTORE, and a CONDSTORE-enabling command
// (RFC 7162 3.1) turns MODSEQ on in the untagged FETCH of flag changes.

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// condStore reports whether the server offers CONDSTORE.
func (c *Conn) condStore() bool {
	return c.server.options.caps().Has(imap.CapCondStore)
}

// enableCondStore records a CONDSTORE-enabling command (RFC 7162 3.1):
// from now on, untagged FETCH responses carry MODSEQ.
func (c *Conn) enableCondStore() {
	c.mutex.Lock()
	c.enabled[imap.CapCondStore] = struct{}{}
	c.mutex.Unlock()
}

// condStoreEnabled reports whether a CONDSTORE-enabling command was seen.
func (c *Conn) condStoreEnabled() bool {
	c.mutex.Lock()
	defer c.mutex.Unlock()
	_, ok := c.enabled[imap.CapCondStore]
	return ok
}

// readModifiers reads a parenthesized list of modifiers (RFC 4466 2.2:
// fetch-modifiers, store-modifiers, select-params), the "(" already read,
// calling f with each name upper-cased; f reads the value.
func readModifiers(dec *imapwire.Decoder, f func(name string) error) error {
	for {
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		if err := f(strings.ToUpper(name)); err != nil {
			return err
		}
		if !dec.SP() {
			break
		}
	}
	if !dec.ExpectSpecial(')') {
		return dec.Err()
	}
	return nil
}

// WriteModSeq writes the MODSEQ data item (RFC 7162 3.1.4.1).
func (w *FetchResponseWriter) WriteModSeq(modSeq uint64) {
	w.writeItemSep()
	w.enc.Atom("MODSEQ").SP().Special('(').ModSeq(modSeq).Special(')')
}

// WriteHighestModSeq writes an untagged OK [HIGHESTMODSEQ] (RFC 7162
// 3.1.2.1), as a server must at the first CONDSTORE-enabling command while
// a mailbox is selected (RFC 7162 3.1).
func (w *UpdateWriter) WriteHighestModSeq(modSeq uint64) error {
	return w.conn.writeHighestModSeq(modSeq)
}

func (c *Conn) writeHighestModSeq(modSeq uint64) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("OK").SP()
	enc.Special('[').Atom("HIGHESTMODSEQ").SP().ModSeq(modSeq).Special(']')
	enc.SP().Text("Highest")
	return enc.CRLF()
}

// QueueMessageFlagsModSeq is QueueMessageFlags with the message's
// mod-sequence, written as MODSEQ to the sessions that enabled CONDSTORE
// (RFC 7162 3.1).
func (t *MailboxTracker) QueueMessageFlagsModSeq(seqNum uint32, uid imap.UID, flags []imap.Flag, modSeq uint64, source *SessionTracker) {
	t.queueUpdate(&trackerUpdate{fetch: &trackerUpdateFetch{
		seqNum: seqNum,
		uid:    uid,
		flags:  flags,
		modSeq: modSeq,
	}}, source)
}

// SetCurrentFlags makes the session write a queued FETCH of flags with
// the message's flags and mod-sequence as current(uid) gives them when it
// is written, not as they were when queued: a FETCH queued behind an
// EXPUNGE (which waits for a command that allows it, RFC 9051 7.5.1) may
// be written after the command's own FETCH of the same message, and must
// not show the client an older mod-sequence than that one (RFC 7162 3.1:
// a message's MODSEQ never decreases). current returns false for a
// message that is no longer there; its FETCH is dropped (its EXPUNGE
// follows). current is called from Poll, never concurrently with it.
func (t *SessionTracker) SetCurrentFlags(current func(uid imap.UID) (flags []imap.Flag, modSeq uint64, ok bool)) {
	t.mutex.Lock()
	t.current = current
	t.mutex.Unlock()
}

// WriteMessageFlagsModSeq writes a FETCH response with FLAGS, and MODSEQ
// when the client enabled CONDSTORE and modSeq is not 0 (RFC 7162 3.1).
func (w *UpdateWriter) WriteMessageFlagsModSeq(seqNum uint32, uid imap.UID, flags []imap.Flag, modSeq uint64) error {
	fetchWriter := &FetchWriter{conn: w.conn}
	respWriter := fetchWriter.CreateMessage(seqNum)
	if uid != 0 {
		respWriter.WriteUID(uid)
	}
	respWriter.WriteFlags(flags)
	if modSeq != 0 && w.conn.condStoreEnabled() {
		respWriter.WriteModSeq(modSeq)
	}
	return respWriter.Close()
}
