package imapgw

import (
	"encoding/binary"
	"errors"
	"sort"
	"time"

	"github.com/emersion/go-imap/v2"
)

// FETCH metadata cache.
//
// ENVELOPE and BODYSTRUCTURE (RFC 9051 7.5.2) are computed once per message
// from its stored bytes and kept by the store next to them, in the compact
// binary form below; a FETCH decodes them instead of parsing the message
// (about 50 µs a message, most of the cost of FETCH 1:* (ENVELOPE
// BODYSTRUCTURE)). The form is private to this package: the store keeps it
// as opaque bytes, and a form it does not know (another version, damaged)
// is computed again from the message.
//
// Layout, all integers unsigned varints, strings a length then the bytes:
//
//	version=2, envelope, body structure
//	envelope: present(0|1) [date-present(0|1) [unix-seconds zigzag, zone-offset zigzag]
//	          subject, 6 address lists (count, then name mailbox host adl each),
//	          in-reply-to (count, strings), message-id]
//	body:     1 single: type subtype params id description encoding size
//	                    flags(1 whole-size, 2 message/rfc822, 4 text, 8 extended)
//	                    [envelope body lines] [lines] [extended]
//	          2 multi:  children(count, bodies) subtype flags(8 extended) [params extended]
//	params:   count, then key value pairs sorted by key
//	extended: disposition-present [value params] languages(count, strings) location

// Version 2 (issue 12): groups kept in address lists, and an address's
// source route (adl); version 1 forms are computed again.
const metaVersion = 2

// Single-part flags.
const (
	metaWholeSize = 1 << iota // Size is the whole served message's (a broken multipart, bodystructure.go)
	metaRFC822
	metaText
	metaExtended
)

var errMeta = errors.New("imapgw: damaged metadata")

// metaOf computes the cached form of a message's ENVELOPE and BODYSTRUCTURE
// from the bytes a client is served.
func metaOf(served []byte) []byte {
	env := envelope(served)
	bs := bodyStructureMarked(served)
	b := make([]byte, 0, 256)
	b = binary.AppendUvarint(b, metaVersion)
	b = appendEnvelope(b, env)
	return appendBody(b, bs)
}

// servedPrefix stands for the X-Supportgate-* header fields that a
// conversation's message is served with (servedHeader): valid fields that
// are in neither ENVELOPE nor BODYSTRUCTURE, so that parsing it and the
// stored bytes gives what parsing the served copy gives, also for mail
// whose own header is broken.
const servedPrefix = "X-Supportgate-Conversation: 0\r\n"

// MessageMeta computes the cached FETCH metadata of a conversation's message
// from its stored bytes. The store calls it when it stores a message
// (sqlite.Store.SetMetaFunc), so that FETCH never parses the message.
func MessageMeta(raw []byte) []byte {
	buf := make([]byte, 0, len(servedPrefix)+len(raw))
	return metaOf(append(append(buf, servedPrefix...), raw...))
}

// decodedMeta is a message's ENVELOPE and BODYSTRUCTURE.
type decodedMeta struct {
	env *imap.Envelope
	bs  imap.BodyStructure
}

// decodeMeta decodes the cached form; whole is the size of the served
// message, which a broken multipart part is given (bodystructure.go).
func decodeMeta(b []byte, whole int64) (decodedMeta, error) {
	d := metaDecoder{s: string(b)} // one copy; every string below is a slice of it
	if d.uint() != metaVersion {
		return decodedMeta{}, errMeta
	}
	env := d.envelope()
	if env == nil {
		env = &imap.Envelope{}
	}
	bs := d.body(whole, 0)
	if d.bad || d.i != len(d.s) || bs == nil {
		return decodedMeta{}, errMeta
	}
	return decodedMeta{env: env, bs: bs}, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendStrings(b []byte, l []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	for _, s := range l {
		b = appendString(b, s)
	}
	return b
}

func appendEnvelope(b []byte, env *imap.Envelope) []byte {
	b = appendBool(b, env != nil)
	if env == nil {
		return b
	}
	b = appendBool(b, !env.Date.IsZero())
	if !env.Date.IsZero() {
		_, off := env.Date.Zone()
		b = binary.AppendVarint(b, env.Date.Unix())
		b = binary.AppendVarint(b, int64(off))
	}
	b = appendString(b, env.Subject)
	for _, l := range [][]imap.Address{env.From, env.Sender, env.ReplyTo, env.To, env.Cc, env.Bcc} {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, a := range l {
			b = appendString(appendString(appendString(appendString(b, a.Name), a.Mailbox), a.Host), a.Adl)
		}
	}
	b = appendStrings(b, env.InReplyTo)
	return appendString(b, env.MessageID)
}

func appendParams(b []byte, p map[string]string) []byte {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(appendString(b, k), p[k])
	}
	return b
}

func appendExtended(b []byte, disp *imap.BodyStructureDisposition, lang []string, loc string) []byte {
	b = appendBool(b, disp != nil)
	if disp != nil {
		b = appendParams(appendString(b, disp.Value), disp.Params)
	}
	return appendString(appendStrings(b, lang), loc)
}

func appendBody(b []byte, bs imap.BodyStructure) []byte {
	switch bs := bs.(type) {
	case *markedPart:
		return appendSingle(b, bs.BodyStructureSinglePart, metaWholeSize)
	case *imap.BodyStructureSinglePart:
		return appendSingle(b, bs, 0)
	case *imap.BodyStructureMultiPart:
		b = append(b, 2)
		b = binary.AppendUvarint(b, uint64(len(bs.Children)))
		for _, c := range bs.Children {
			b = appendBody(b, c)
		}
		b = appendString(b, bs.Subtype)
		if bs.Extended == nil {
			return append(b, 0)
		}
		b = append(b, metaExtended)
		b = appendParams(b, bs.Extended.Params)
		return appendExtended(b, bs.Extended.Disposition, bs.Extended.Language, bs.Extended.Location)
	}
	return append(b, 0) // no structure: decoding fails and the message is parsed
}

func appendSingle(b []byte, bs *imap.BodyStructureSinglePart, flags byte) []byte {
	b = append(b, 1)
	b = appendString(appendString(b, bs.Type), bs.Subtype)
	b = appendParams(b, bs.Params)
	b = appendString(appendString(appendString(b, bs.ID), bs.Description), bs.Encoding)
	b = binary.AppendUvarint(b, uint64(bs.Size))
	if bs.MessageRFC822 != nil {
		flags |= metaRFC822
	}
	if bs.Text != nil {
		flags |= metaText
	}
	if bs.Extended != nil {
		flags |= metaExtended
	}
	b = append(b, flags)
	if m := bs.MessageRFC822; m != nil {
		b = appendEnvelope(b, m.Envelope)
		b = appendBody(b, m.BodyStructure)
		b = binary.AppendUvarint(b, uint64(m.NumLines))
	}
	if bs.Text != nil {
		b = binary.AppendUvarint(b, uint64(bs.Text.NumLines))
	}
	if e := bs.Extended; e != nil {
		b = appendExtended(b, e.Disposition, e.Language, e.Location)
	}
	return b
}

// metaDecoder reads the cached form; a read past the end sets bad.
type metaDecoder struct {
	s   string
	i   int
	bad bool
}

func (d *metaDecoder) uint() uint64 {
	var v uint64
	for shift := 0; shift < 64 && d.i < len(d.s); shift += 7 {
		c := d.s[d.i]
		d.i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	d.bad = true // as binary.Uvarint: the end, or more than 64 bits
	d.i = len(d.s)
	return 0
}

func (d *metaDecoder) int() int64 {
	u := d.uint()
	return int64(u>>1) ^ -int64(u&1) // zigzag, as binary.AppendVarint
}

func (d *metaDecoder) byte() byte {
	if d.i >= len(d.s) {
		d.bad = true
		return 0
	}
	c := d.s[d.i]
	d.i++
	return c
}

func (d *metaDecoder) str() string {
	n := d.uint()
	if n > uint64(len(d.s)-d.i) {
		d.bad = true
		d.i = len(d.s)
		return ""
	}
	s := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}

// count reads a list length, bounded by what is left (each element takes a
// byte at least), so that damaged data cannot make a huge allocation.
func (d *metaDecoder) count() int {
	n := d.uint()
	if n > uint64(len(d.s)-d.i) {
		d.bad = true
		d.i = len(d.s)
		return 0
	}
	return int(n)
}

func (d *metaDecoder) strs() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = d.str()
	}
	return l
}

func (d *metaDecoder) envelope() *imap.Envelope {
	if d.byte() == 0 {
		return nil
	}
	env := &imap.Envelope{}
	if d.byte() == 1 {
		sec, off := d.int(), d.int()
		env.Date = time.Unix(sec, 0).In(time.FixedZone("", int(off)))
	}
	env.Subject = d.str()
	for _, l := range []*[]imap.Address{&env.From, &env.Sender, &env.ReplyTo, &env.To, &env.Cc, &env.Bcc} {
		n := d.count()
		if n == 0 {
			continue
		}
		*l = make([]imap.Address, n)
		for i := range *l {
			(*l)[i] = imap.Address{Name: d.str(), Mailbox: d.str(), Host: d.str(), Adl: d.str()}
		}
	}
	env.InReplyTo = d.strs()
	env.MessageID = d.str()
	return env
}

func (d *metaDecoder) params() map[string]string {
	n := d.count()
	if n == 0 {
		return nil
	}
	p := make(map[string]string, n)
	for range n {
		k := d.str()
		p[k] = d.str()
	}
	return p
}

func (d *metaDecoder) extended() (disp *imap.BodyStructureDisposition, lang []string, loc string) {
	if d.byte() == 1 {
		disp = &imap.BodyStructureDisposition{Value: d.str(), Params: d.params()}
	}
	return disp, d.strs(), d.str()
}

// body decodes a body structure; depth bounds the recursion of damaged data.
func (d *metaDecoder) body(whole int64, depth int) imap.BodyStructure {
	if depth > 100 || d.bad {
		d.bad = true
		return nil
	}
	switch d.byte() {
	case 1:
		bs := &imap.BodyStructureSinglePart{Type: d.str(), Subtype: d.str(), Params: d.params(),
			ID: d.str(), Description: d.str(), Encoding: d.str(), Size: uint32(d.uint())}
		flags := d.byte()
		if flags&metaWholeSize != 0 {
			bs.Size = uint32(min(whole, 1<<32-1))
		}
		if flags&metaRFC822 != 0 {
			m := &imap.BodyStructureMessageRFC822{Envelope: d.envelope()}
			m.BodyStructure = d.body(whole, depth+1)
			m.NumLines = int64(d.uint())
			bs.MessageRFC822 = m
		}
		if flags&metaText != 0 {
			bs.Text = &imap.BodyStructureText{NumLines: int64(d.uint())}
		}
		if flags&metaExtended != 0 {
			e := &imap.BodyStructureSinglePartExt{}
			e.Disposition, e.Language, e.Location = d.extended()
			bs.Extended = e
		}
		return bs
	case 2:
		n := d.count()
		if n == 0 {
			d.bad = true // RFC 9051 7.5.2: a multipart has one part at least
			return nil
		}
		mp := &imap.BodyStructureMultiPart{Children: make([]imap.BodyStructure, n)}
		for i := range mp.Children {
			if mp.Children[i] = d.body(whole, depth+1); mp.Children[i] == nil {
				d.bad = true
				return nil
			}
		}
		mp.Subtype = d.str()
		if d.byte()&metaExtended != 0 {
			e := &imap.BodyStructureMultiPartExt{Params: d.params()}
			e.Disposition, e.Language, e.Location = d.extended()
			mp.Extended = e
		}
		return mp
	}
	d.bad = true
	return nil
}
