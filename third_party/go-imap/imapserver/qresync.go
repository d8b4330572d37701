package imapserver

// supportgate: QRESYNC (RFC 7162 3.2) on the server side, which the library
// lacked, on top of CONDSTORE (condstore.go). It is offered when the
// server's capabilities include QRESYNC, and used by a connection only
// after ENABLE QRESYNC (RFC 7162 3.2.3), which enables CONDSTORE too. Then
// SELECT and EXAMINE take (QRESYNC (uidvalidity modseq [known-uids
// [seq-match-data]])), UID FETCH takes the VANISHED modifier with
// CHANGEDSINCE, and expunges are announced as VANISHED with the UID
// instead of EXPUNGE with the sequence number (RFC 7162 3.2.10).

import (
	"fmt"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/internal/imapwire"
)

// SessionQResync is what a session implements for the resynchronization of
// a SELECT or EXAMINE with the QRESYNC parameter (RFC 7162 3.2.5.1).
type SessionQResync interface {
	// ResyncSelected is called after the SELECT responses of a mailbox
	// whose UIDVALIDITY is the one the client gave, before the tagged OK:
	// it writes VANISHED (EARLIER) for the known UIDs that are no longer
	// there (w.WriteVanishedEarlier) and a FETCH with UID, FLAGS and
	// MODSEQ of each message changed since options.ModSeq.
	ResyncSelected(w *FetchWriter, options *imap.SelectQResync) error
}

// qResync reports whether the server offers QRESYNC.
func (c *Conn) qResync() bool {
	return c.server.options.caps().Has(imap.CapQResync)
}

// qResyncEnabled reports whether the client enabled QRESYNC.
func (c *Conn) qResyncEnabled() bool {
	c.mutex.Lock()
	defer c.mutex.Unlock()
	_, ok := c.enabled[imap.CapQResync]
	return ok
}

// readSelectQResync reads the value of SELECT's QRESYNC parameter (RFC 7162
// 7: "QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
// [SP seq-match-data] ")"), the name already read.
func readSelectQResync(dec *imapwire.Decoder) (*imap.SelectQResync, error) {
	var q imap.SelectQResync
	if !dec.ExpectSP() || !dec.ExpectSpecial('(') || !dec.ExpectNumber(&q.UIDValidity) ||
		!dec.ExpectSP() || !dec.ExpectModSeq(&q.ModSeq) {
		return nil, dec.Err()
	}
	if q.UIDValidity == 0 || q.ModSeq == 0 {
		// RFC 7162 7: uidvalidity = nz-number, mod-sequence-value = 1*DIGIT
		// but 0 is not a value a server gave (3.1.2.1).
		return nil, newClientBugError("QRESYNC needs a UIDVALIDITY and a mod-sequence above 0")
	}
	if dec.SP() {
		if dec.Special('(') {
			q.SeqMatch = new(imap.SelectQResyncSeqMatch)
			if err := readSeqMatch(dec, q.SeqMatch); err != nil {
				return nil, err
			}
		} else {
			if !dec.ExpectUIDSet(&q.KnownUIDs) {
				return nil, dec.Err()
			}
			if dec.SP() {
				if !dec.ExpectSpecial('(') {
					return nil, dec.Err()
				}
				q.SeqMatch = new(imap.SelectQResyncSeqMatch)
				if err := readSeqMatch(dec, q.SeqMatch); err != nil {
					return nil, err
				}
			}
		}
	}
	if !dec.ExpectSpecial(')') {
		return nil, dec.Err()
	}
	return &q, nil
}

// readSeqMatch reads seq-match-data's "known-sequence-set SP
// known-uid-set)", the "(" already read.
func readSeqMatch(dec *imapwire.Decoder, m *imap.SelectQResyncSeqMatch) error {
	var seqs imap.NumSet
	if !dec.ExpectNumSet(imapwire.NumKindSeq, &seqs) || !dec.ExpectSP() || !dec.ExpectUIDSet(&m.UIDs) ||
		!dec.ExpectSpecial(')') {
		return dec.Err()
	}
	set, ok := seqs.(imap.SeqSet)
	if !ok {
		return newClientBugError("QRESYNC's sequence match needs message numbers")
	}
	m.SeqNums = set
	return nil
}

// WriteVanishedEarlier writes VANISHED (EARLIER) uids (RFC 7162 3.2.10), the
// UIDs of messages that are no longer in the mailbox, for a SELECT with
// QRESYNC or a UID FETCH with VANISHED. It writes nothing for no UIDs.
func (w *FetchWriter) WriteVanishedEarlier(uids imap.UIDSet) error {
	if len(uids) == 0 {
		return nil
	}
	enc := newResponseEncoder(w.conn)
	defer enc.end()
	enc.Atom("*").SP().Atom("VANISHED").SP().Special('(').Atom("EARLIER").Special(')').SP().NumSet(uids)
	return enc.CRLF()
}

// QueueExpungeUID is QueueExpunge with the message's UID, which a session
// that enabled QRESYNC is told instead of the sequence number (RFC 7162
// 3.2.10: VANISHED).
func (t *MailboxTracker) QueueExpungeUID(seqNum uint32, uid imap.UID) {
	if seqNum == 0 {
		panic("imapserver: invalid expunge message sequence number")
	}
	t.queueUpdate(&trackerUpdate{expunge: seqNum, expungeUID: uid}, nil)
}

// writeExpungeOrVanished writes EXPUNGE seqNum, or VANISHED uid to a client
// that enabled QRESYNC (RFC 7162 3.2.10: it MUST NOT be sent EXPUNGE then).
func (c *Conn) writeExpungeOrVanished(seqNum uint32, uid imap.UID) error {
	if uid == 0 || !c.qResyncEnabled() {
		return c.writeExpunge(seqNum)
	}
	c.mutex.Lock()
	c.vanished++
	c.mutex.Unlock()
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("VANISHED").SP().UID(uid)
	return enc.CRLF()
}

// SessionHighestModSeq is implemented by a session that gives its selected
// mailbox's HIGHESTMODSEQ as last written to the client, for the tagged OK
// of EXPUNGE and UID EXPUNGE (RFC 7162 3.2.7, 3.2.9).
type SessionHighestModSeq interface {
	HighestModSeq() uint64
}

// expungeCode is the response code of the tagged OK of command name: for
// EXPUNGE and UID EXPUNGE that expunged a message of a client that enabled
// QRESYNC, HIGHESTMODSEQ (RFC 7162 3.2.7, 3.2.9: MUST); none otherwise.
func (c *Conn) expungeCode(name string) imap.ResponseCode {
	if name != "EXPUNGE" && name != "UID EXPUNGE" || !c.qResyncEnabled() {
		return ""
	}
	c.mutex.Lock()
	n := c.vanished
	c.mutex.Unlock()
	s, ok := c.session.(SessionHighestModSeq)
	if n == 0 || !ok {
		return ""
	}
	if m := s.HighestModSeq(); m != 0 {
		return imap.ResponseCode(fmt.Sprintf("HIGHESTMODSEQ %d", m))
	}
	return ""
}

// Pending reports whether updates are queued that Poll has not written yet
// (an EXPUNGE waits for a command that allows it, and what follows it
// waits too), for the session's HIGHESTMODSEQ below them (RFC 7162 3.2).
func (t *SessionTracker) Pending() bool {
	t.mutex.Lock()
	defer t.mutex.Unlock()
	return len(t.queue) > 0
}
