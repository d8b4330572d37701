package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/internal/dnstest"
	"github.com/supportgate/supportgate/store/sqlite"
)

// seedEML adds the messages of testdata/eml and testdata/threading.
func seedEML(f *testing.F) {
	for _, dir := range []string{"../testdata/eml", "../testdata/threading"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte("Subject: " + string(bytes.Repeat([]byte("x"), 5000)) + "\r\n\r\nbody\r\n"))
	f.Add([]byte("From: a\x00b@x\r\n\r\n\x00\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=\"\r\n\r\n--\r\n"))
}

// FuzzParseHeaderInfo: any bytes give a header info, never a panic, and no
// CR or LF in the cleaned subject.
func FuzzParseHeaderInfo(f *testing.F) {
	seedEML(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		info := parseHeaderInfo(raw)
		if s := cleanSubject(info.Subject); bytes.ContainsAny([]byte(s), "\r\n") {
			t.Fatalf("cleanSubject kept a line break: %q", s)
		}
		checkValidUTF8(t, info)
	})
}

// checkValidUTF8 fails unless every text parseHeaderInfo returns is valid
// UTF-8: the store's text fields must be (PostgreSQL refuses anything
// else), and a message is never refused for its header's bytes.
func checkValidUTF8(t *testing.T, info headerInfo) {
	t.Helper()
	texts := append([]string{info.Subject, info.RawSubject, info.From, info.MessageID}, info.To...)
	texts = append(append(append(texts, info.Cc...), info.InReplyTo...), info.References...)
	for _, s := range texts {
		if !utf8.ValidString(s) {
			t.Fatalf("parseHeaderInfo returned text that is not UTF-8: %q", s)
		}
	}
}

// TestHeaderInfoIsUTF8: raw 8-bit header bytes (Latin-1, as old clients
// send) become valid UTF-8, and an address in them is unreadable (its
// list may be, whole).
func TestHeaderInfoIsUTF8(t *testing.T) {
	raw := []byte("From: Ren\xe9 <ren\xe9@example.com>\r\nTo: support@example.com, caf\xe9@example.com\r\n" +
		"Subject: Caf\xe9 cr\xe8me\r\nMessage-ID: <a\xe9@example.com>\r\n\r\nbody\r\n")
	info := parseHeaderInfo(raw)
	checkValidUTF8(t, info)
	if info.Subject != "Caf\uFFFD cr\uFFFDme" || info.From != "" || len(info.To) > 1 || info.MessageID != "" {
		t.Errorf("parseHeaderInfo = subject %q, from %q, to %q, message-id %q", info.Subject, info.From, info.To, info.MessageID)
	}
}

// FuzzMXData feeds bytes through the MX DATA path (readData, then
// deliverInbound with a real store): an error or a stored message, never a
// panic.
func FuzzMXData(f *testing.F) {
	seedEML(f)
	cfg, err := config.Demo()
	if err != nil {
		f.Fatal(err)
	}
	cfg.Server.DataDir = f.TempDir()
	// Hermetic: the DKIM and DMARC lookups of fuzzed mail go to a loopback
	// server, never to the machine's resolver (where, on a closed network,
	// each would wait for its timeout).
	cfg.DNS.Resolver = dnstest.New(f).Addr
	st, err := sqlite.Open(context.Background(), cfg.Server.DataDir)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	keys, err := LoadKeys(cfg.Server.DataDir)
	if err != nil {
		f.Fatal(err)
	}
	s := New(cfg, st, keys, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Fuzz(func(t *testing.T, data []byte) {
		raw, _, err := readData(bytes.NewReader(data), nil)
		if err != nil {
			return
		}
		s.deliverInbound(context.Background(), "fuzz@x.example", []string{"support@example.test"}, raw, "")
	})
}
