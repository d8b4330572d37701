package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

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
	})
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
