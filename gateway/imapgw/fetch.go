package imapgw

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"github.com/supportgate/supportgate/policy"
	"github.com/supportgate/supportgate/store"
)

// servedHeader is what the IMAP copy of a message carries above the stored
// bytes (DESIGN.md §6). It is computed from the message's fixed attributes,
// so the size and bytes a client sees never change (DESIGN.md §13).
func servedHeader(e store.MailboxEntry) string {
	var b strings.Builder
	b.WriteString("X-Supportgate-Conversation: " + strconv.FormatInt(e.Conversation, 10) + "\r\n")
	b.WriteString("X-Supportgate-Kind: " + string(e.Kind) + "\r\n")
	if e.Kind == store.KindInbound && e.SenderRole != "" {
		// A stranger's mail is flagged for the team here (DESIGN.md §4).
		b.WriteString("X-Supportgate-Sender: " + string(e.SenderRole) + "\r\n")
	}
	if e.Kind == store.KindSide && e.Side > 0 {
		// DESIGN.md §14: which side conversation of the conversation.
		b.WriteString("X-Supportgate-Side: " + strconv.Itoa(e.Side) + "\r\n")
	}
	if (e.Kind == store.KindReply || e.Kind == store.KindSide) && len(e.HiddenBCC) > 0 {
		b.WriteString("X-Supportgate-Bcc: " + strings.Join(e.HiddenBCC, ", ") + "\r\n")
	}
	if servesReplyTo(e) {
		// DESIGN.md §6: Reply in a mail client on a public reply writes to
		// the customer, on a note stays a note. It replaces the stored
		// copy's Reply-To fields (servedBody): never two of them.
		b.WriteString("Reply-To: " + e.ReplyTo + "\r\n")
	}
	return b.String()
}

// servesReplyTo reports whether the served copy carries a Reply-To of its
// own: one the store recorded, fit for a header (it is our own address or
// a customer's, checked when stored; this is a second guard).
func servesReplyTo(e store.MailboxEntry) bool {
	return e.ReplyTo != "" && !strings.ContainsAny(e.ReplyTo, "\r\n")
}

// servedBody is the stored bytes as a client sees them below servedHeader:
// without their Reply-To fields when the copy carries its own.
func servedBody(e store.MailboxEntry, raw []byte) []byte {
	if !servesReplyTo(e) {
		return raw
	}
	out, _ := policy.WithoutField(raw, "Reply-To")
	return out
}

// servedSize is the size of what a client sees: a private message with
// bytes of its own (Message 0) is served as it is.
func servedSize(e store.MailboxEntry) int64 {
	if e.Message == 0 {
		return e.Size
	}
	size := int64(len(servedHeader(e))) + e.Size
	if servesReplyTo(e) {
		size -= e.ReplyToCut
	}
	return size
}

// served returns the bytes an agent's client sees for an entry.
func (m *session) served(e store.MailboxEntry) ([]byte, error) {
	if e.Message == 0 {
		return m.srv.opts.Store.PrivateRaw(m.ctx, m.agent.Email, m.mbox.folder.name, e.UID)
	}
	raw, err := m.srv.opts.Store.MessageRaw(m.ctx, e.Message)
	if err != nil {
		return nil, err
	}
	return joinServed(servedHeader(e), servedBody(e, raw)), nil
}

// servedEnvelope puts the served Reply-To into an ENVELOPE computed from
// the stored bytes (the metadata cache, meta.go).
func servedEnvelope(e store.MailboxEntry, env *imap.Envelope) {
	if env == nil || !servesReplyTo(e) {
		return
	}
	local, host, _ := strings.Cut(e.ReplyTo, "@")
	env.ReplyTo = []imap.Address{{Mailbox: local, Host: host}}
}

func joinServed(h string, raw []byte) []byte {
	buf := make([]byte, 0, len(h)+len(raw))
	return append(append(buf, h...), raw...)
}

// fetchItem is one message of a FETCH answer and what it needs.
type fetchItem struct {
	seq    uint32
	entry  store.MailboxEntry
	recent bool // \Recent in this session (recent.go)
	gone   bool // expunged meanwhile: its bytes are no longer there
	// head and raw are the served copy: the X-Supportgate-* header and the
	// stored bytes (a private message with bytes of its own: raw alone).
	head string
	raw  []byte
	meta decodedMeta // env nil: not needed, or to be computed from the bytes
}

// served is the whole served copy.
func (it *fetchItem) served() []byte {
	if it.head == "" {
		return it.raw
	}
	return joinServed(it.head, it.raw)
}

// Batches of a FETCH: the store is read once per batch, not per message.
const (
	fetchBatch      = 256
	fetchBatchBytes = 8 << 20
)

func (m *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) (err error) {
	mbox, err := m.selected()
	if err != nil {
		return err
	}
	if options.ModSeq { // RFC 7162 3.1.4.1 (CHANGEDSINCE sets it too)
		announce := m.enableCondStore()
		defer func() {
			if err == nil {
				err = announce()
			}
		}()
	}
	// Other sessions' changes first, so that FLAGS are current; those of the
	// fetched messages are reported here, not again by the next poll.
	var quiet map[uint32]bool
	if options.Flags {
		quiet = map[uint32]bool{}
		mbox.forEach(numSet, func(_ uint32, e *store.MailboxEntry) { quiet[e.UID] = true })
	}
	if err := m.refresh(quiet); err != nil {
		return err
	}
	// RFC 9051 6.4.5: BODY[] (not BODY.PEEK[]) sets \Seen.
	markSeen := false
	for _, bs := range options.BodySection {
		markSeen = markSeen || !bs.Peek
	}
	markSeen = markSeen && !mbox.readOnly

	var items []fetchItem
	var toSee []store.MailboxEntry
	collect := func() {
		items, toSee = items[:0], nil
		mbox.forEach(numSet, func(seq uint32, e *store.MailboxEntry) {
			// RFC 7162 3.1.4.1: CHANGEDSINCE, only what changed after it.
			if options.ChangedSince != 0 && modSeq(e) <= options.ChangedSince {
				return
			}
			items = append(items, fetchItem{seq: seq, entry: *e, recent: mbox.recent.has(e.UID)})
			if markSeen && !e.Seen {
				toSee = append(toSee, *e)
			}
		})
	}
	collect()
	if options.Vanished {
		// RFC 7162 3.2.6: before any FETCH response (qresync.go).
		if set, ok := numSet.(imap.UIDSet); ok {
			if err := w.WriteVanishedEarlier(vanished(mbox.entries, set, mbox.uidNext)); err != nil {
				return err
			}
		}
	}
	seenNow := map[uint32]bool{}
	if len(toSee) > 0 {
		if err := m.setSeen(toSee, true); err != nil {
			return err
		}
		for _, e := range toSee {
			seenNow[e.UID] = true
		}
		if m.condStore {
			// RFC 7162 3.1: the FETCH that sets \Seen reports the new
			// MODSEQ, which the store gave: read again, quietly for
			// these messages, whose flags this answer shows.
			quiet := map[uint32]bool{}
			for _, it := range items {
				quiet[it.entry.UID] = true
			}
			if err := m.refresh(quiet); err != nil {
				return err
			}
			changedSince := options.ChangedSince
			options.ChangedSince = 0 // the messages that changed before stay
			collect()
			options.ChangedSince = changedSince
			kept := items[:0]
			for _, it := range items {
				if quiet[it.entry.UID] {
					kept = append(kept, it)
				}
			}
			items = kept
		}
	}
	if m.cork != nil {
		m.cork.cork()
		defer m.cork.uncork() // the library writes the tagged answer after this
	}
	needRaw := len(options.BodySection) > 0 || len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0
	needMeta := options.Envelope || options.BodyStructure != nil
	expunged := false
	for len(items) > 0 {
		n, size := 0, int64(0)
		for n < len(items) && n < fetchBatch && (!needRaw || size < fetchBatchBytes || n == 0) {
			size += items[n].entry.Size
			n++
		}
		batch := items[:n]
		items = items[n:]
		if err := m.fetchData(batch, needRaw, needMeta); err != nil {
			return m.internal("reading message failed", err)
		}
		for i := range batch {
			it := &batch[i]
			if it.gone {
				expunged = true
				continue
			}
			flags, withModSeq := options.Flags, options.ModSeq
			if seenNow[it.entry.UID] {
				// RFC 9051 6.4.5: report the implicit change, and RFC 7162
				// 3.1 its MODSEQ once CONDSTORE is enabled.
				it.entry.Seen, flags = true, true
				withModSeq = withModSeq || m.condStore
			}
			if err := writeFetch(w.CreateMessage(it.seq), it, flags, withModSeq, options); err != nil {
				return err
			}
			it.raw = nil // let the batch's bytes go as they are written
		}
	}
	if expunged {
		// RFC 9051 7.5.2 lets a server answer NO for messages another
		// session expunged; the client's EXPUNGE follows at its next
		// command that allows it. RFC 5530 EXPUNGEISSUED.
		return errExpungeIssued
	}
	return nil
}

// fetchData reads what a batch needs: the stored bytes of its messages
// (needRaw), and their ENVELOPE and BODYSTRUCTURE (needMeta) from the
// metadata cache, computing and recording those the cache lacks (messages
// stored before it, meta.go).
func (m *session) fetchData(batch []fetchItem, needRaw, needMeta bool) error {
	st := m.srv.opts.Store
	var ids []int64
	for i := range batch {
		it := &batch[i]
		if it.entry.Message == 0 {
			if needRaw || needMeta {
				raw, err := st.PrivateRaw(m.ctx, m.agent.Email, m.mbox.folder.name, it.entry.UID)
				if errors.Is(err, store.ErrNotFound) {
					it.gone = true // expunged by another session since the picture was taken
					continue
				}
				if err != nil {
					return err
				}
				it.raw = raw
			}
			continue
		}
		it.head = servedHeader(it.entry)
		ids = append(ids, it.entry.Message)
	}
	if len(ids) == 0 {
		return nil
	}
	var raws map[int64][]byte
	if needRaw {
		var err error
		if raws, err = st.MessagesRaw(m.ctx, ids); err != nil {
			return err
		}
	}
	var metas map[int64][]byte
	if needMeta {
		var err error
		if metas, err = st.MessagesMeta(m.ctx, ids); err != nil {
			return err
		}
	}
	var missing []int64
	for i := range batch {
		it := &batch[i]
		if it.entry.Message == 0 {
			continue
		}
		if needMeta {
			d, err := decodeMeta(metas[it.entry.Message], servedSize(it.entry))
			if err == nil {
				servedEnvelope(it.entry, d.env)
				it.meta = d
			} else {
				missing = append(missing, it.entry.Message)
			}
		}
		if needRaw {
			raw, ok := raws[it.entry.Message]
			if !ok {
				return fmt.Errorf("message %d: %w", it.entry.Message, store.ErrNotFound)
			}
			it.raw = servedBody(it.entry, raw)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if raws == nil {
		var err error
		if raws, err = st.MessagesRaw(m.ctx, missing); err != nil {
			return err
		}
	}
	computed := make(map[int64][]byte, len(missing))
	for i := range batch {
		it := &batch[i]
		if it.entry.Message == 0 || it.meta.env != nil {
			continue
		}
		raw, ok := raws[it.entry.Message]
		if !ok {
			return fmt.Errorf("message %d: %w", it.entry.Message, store.ErrNotFound)
		}
		b, ok := computed[it.entry.Message]
		if !ok {
			b = MessageMeta(raw)
			computed[it.entry.Message] = b
		}
		d, err := decodeMeta(b, servedSize(it.entry))
		if err != nil {
			// DESIGN.md §8: one message never makes a FETCH of the others
			// fail; this one is answered from its bytes (writeFetch).
			m.log.Warn("FETCH metadata of a message cannot be kept; computed from its bytes", "message", it.entry.Message)
			delete(computed, it.entry.Message)
			it.raw = servedBody(it.entry, raw)
			continue
		}
		servedEnvelope(it.entry, d.env)
		it.meta = d
	}
	// The cache is filled for the next FETCH; the answer does not wait
	// for it, and a failure costs only the parsing again.
	if err := st.SetMessagesMeta(m.ctx, computed); err != nil {
		m.log.Warn("recording FETCH metadata failed", "err", err)
	}
	return nil
}

func writeFetch(w *imapserver.FetchResponseWriter, it *fetchItem, flags, withModSeq bool, options *imap.FetchOptions) error {
	e := &it.entry
	w.WriteUID(imap.UID(e.UID))
	if flags {
		fl := entryFlags(e)
		if it.recent {
			fl = append([]imap.Flag{`\Recent`}, fl...)
		}
		w.WriteFlags(fl)
	}
	if withModSeq {
		w.WriteModSeq(modSeq(e)) // RFC 7162 3.1.4.1
	}
	if options.InternalDate {
		w.WriteInternalDate(e.Received)
	}
	if options.RFC822Size {
		w.WriteRFC822Size(servedSize(*e))
	}
	var buf []byte // the whole served copy, made when a section needs it
	whole := func() []byte {
		if buf == nil {
			buf = it.served()
		}
		return buf
	}
	if options.Envelope {
		env := it.meta.env
		if env == nil {
			env = envelope(whole())
		}
		w.WriteEnvelope(env)
	}
	if options.BodyStructure != nil {
		bs := it.meta.bs
		if bs == nil {
			bs = bodyStructure(whole()) // bodystructure.go: broken multiparts
		}
		if options.BodyStructure.Extended {
			withExtensions(bs) // the library panics on a part without them
		}
		w.WriteBodyStructure(bs)
	}
	for _, bs := range options.BodySection {
		if len(bs.Part) == 0 && bs.Specifier == imap.PartSpecifierNone && bs.Partial == nil {
			// The whole message, the usual case: written as it is stored,
			// without a copy.
			lw := w.WriteBodySection(bs, int64(len(it.head)+len(it.raw)))
			_, err := io.WriteString(lw, it.head)
			if err == nil {
				_, err = lw.Write(it.raw)
			}
			if cerr := lw.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			continue
		}
		b := bodySection(whole(), bs)
		if err := writeLiteral(w.WriteBodySection(bs, int64(len(b))), b); err != nil {
			return err
		}
	}
	for _, bs := range options.BinarySection {
		b := imapserver.ExtractBinarySection(bytes.NewReader(whole()), bs)
		if err := writeLiteral(w.WriteBinarySection(bs, int64(len(b))), b); err != nil {
			return err
		}
	}
	for _, bss := range options.BinarySectionSize {
		w.WriteBinarySectionSize(bss, imapserver.ExtractBinarySectionSize(bytes.NewReader(whole()), bss))
	}
	return w.Close()
}

// bodySection extracts a FETCH BODY[...] section. The whole message, its
// HEADER and its TEXT are cut here from the bytes as they are, so that mail
// whose header go-message cannot parse is still shown whole (the library
// returns nothing for it); parts and header-field selections use the library.
func bodySection(buf []byte, bs *imap.FetchItemBodySection) []byte {
	if len(bs.Part) > 0 {
		return imapserver.ExtractBodySection(bytes.NewReader(buf), bs)
	}
	var b []byte
	head, body := splitMessage(buf)
	switch bs.Specifier {
	case imap.PartSpecifierNone:
		b = buf
	case imap.PartSpecifierHeader:
		b = head
		if len(bs.HeaderFields) > 0 || len(bs.HeaderFieldsNot) > 0 {
			b = headerFields(head, bs.HeaderFields, bs.HeaderFieldsNot)
		}
	case imap.PartSpecifierText:
		b = body
	default:
		return imapserver.ExtractBodySection(bytes.NewReader(buf), bs)
	}
	if p := bs.Partial; p != nil { // RFC 9051 6.4.5 <offset.size>
		if p.Offset >= int64(len(b)) {
			return nil
		}
		b = b[p.Offset:]
		if p.Size < int64(len(b)) {
			b = b[:p.Size]
		}
	}
	return b
}

// headerFields implements HEADER.FIELDS and HEADER.FIELDS.NOT (RFC 9051
// 6.4.5) on a header as it is stored: the fields named in fields (when
// given), less those named in not, each with its continuation lines, then
// the blank line that ends a header, also when no field is left.
func headerFields(head []byte, fields, not []string) []byte {
	named := func(names []string, name string) bool {
		for _, n := range names {
			if strings.EqualFold(strings.TrimSpace(n), name) {
				return true
			}
		}
		return false
	}
	var out []byte
	keep := false
	for rest := head; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break // the blank line that ends the header
		}
		if line[0] != ' ' && line[0] != '\t' { // a new field, not a continuation
			name := line
			if i := bytes.IndexByte(line, ':'); i >= 0 {
				name = line[:i]
			}
			n := strings.TrimSpace(string(name))
			keep = (len(fields) == 0 || named(fields, n)) && !named(not, n)
		}
		if keep {
			out = append(out, line...)
			if line[len(line)-1] != '\n' { // a header without its blank line
				out = append(out, "\r\n"...)
			}
		}
	}
	return append(out, "\r\n"...)
}

// splitMessage splits a message after the blank line that ends its header
// (the header keeps it, RFC 9051 6.4.5 HEADER); with no blank line it is all
// header.
func splitMessage(buf []byte) (head, body []byte) {
	if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
		return buf[:i+4], buf[i+4:]
	}
	return buf, nil
}

func writeLiteral(wc io.WriteCloser, b []byte) error {
	_, err := wc.Write(b)
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	return err
}

func envelope(buf []byte) *imap.Envelope {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(buf)))
	if err != nil && h.Len() == 0 {
		return &imap.Envelope{}
	}
	return extractEnvelope(h)
}
