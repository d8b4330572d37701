package imapgw

import (
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"github.com/supportgate/supportgate/internal/mailaddr"
)

// extractEnvelope is the library's ENVELOPE with the address lists parsed
// here: RFC 3501 7.4.2 keeps RFC 5322 groups in ENVELOPE as a start marker
// (NIL NIL "name" NIL), the members, and an end marker (NIL NIL NIL NIL),
// where the library flattened them; and one address the library cannot
// parse no longer empties its whole field.
func extractEnvelope(h textproto.Header) *imap.Envelope {
	env := imapserver.ExtractEnvelope(h)
	for _, f := range []struct {
		key string
		to  *[]imap.Address
	}{{"From", &env.From}, {"Sender", &env.Sender}, {"Reply-To", &env.ReplyTo},
		{"To", &env.To}, {"Cc", &env.Cc}, {"Bcc", &env.Bcc}} {
		*f.to = envelopeAddresses(h.Get(f.key))
	}
	return env
}

// envelopeAddresses parses an address field for ENVELOPE (mailaddr).
func envelopeAddresses(v string) []imap.Address { return mailaddr.EnvelopeAddresses(v) }

// addressesContain is SEARCH FROM, TO, CC and BCC on one field (mailaddr).
func addressesContain(v, s string) bool { return mailaddr.Contain(v, s) }
