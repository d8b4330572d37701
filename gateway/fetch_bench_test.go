package gateway

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"
)

// benchMIME is a 4 KiB multipart message with an attachment, the shape of a
// customer's mail.
func benchMIME() []byte {
	var b bytes.Buffer
	b.WriteString("From: Carla <carla@customer.example>\r\nTo: support@example.test\r\nCc: dan@customer.example\r\n" +
		"Subject: =?UTF-8?Q?Caf=C3=A9?= machine\r\nMessage-ID: <c1@customer.example>\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n")
	for b.Len() < 3000 {
		b.WriteString("The coffee machine makes tea instead of coffee since the last update.\r\n")
	}
	b.WriteString("--b1\r\nContent-Type: application/octet-stream; name=\"log.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for b.Len() < 4096 {
		b.WriteString("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n")
	}
	b.WriteString("--b1--\r\n")
	return b.Bytes()
}

// BenchmarkFetchEnvelopeBodyStructure measures what FETCH (ENVELOPE
// BODYSTRUCTURE) computes per message: parsing the header into an envelope
// and the MIME tree into a body structure.
func BenchmarkFetchEnvelopeBodyStructure(b *testing.B) {
	raw := benchMIME()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			b.Fatal(err)
		}
		if imapserver.ExtractEnvelope(h) == nil {
			b.Fatal("no envelope")
		}
		if imapserver.ExtractBodyStructure(bytes.NewReader(raw)) == nil {
			b.Fatal("no body structure")
		}
	}
}
