package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/supportgate/supportgate/internal/hostile"
)

// TestHostileCorpusAgainstDaemon: the hostile corpus (internal/hostile)
// through the daemon: each message is stored or refused with a sentence,
// and a FETCH of the whole INBOX, a restart later too, answers for every
// message (issue 13: one deep message broke the INBOX for good).
func TestHostileCorpusAgainstDaemon(t *testing.T) {
	dir := t.TempDir()
	p := freePorts(t)
	cfg := testConfig(t, dir, p)
	d := startDaemon(t, dir, p, "-config", cfg)
	stored := 0
	for i, m := range hostile.Corpus() {
		reply := smtpRaw(t, d.addr(p.MX), fmt.Sprintf("mallory%d@evil.example", i), m.Data)
		switch {
		case m.Refused && (!strings.HasPrefix(reply, "554 5.6.0 ") || len(reply) < 30):
			t.Errorf("%s: answered %q, want 554 5.6.0 and a sentence", m.Name, reply)
		case !m.Refused && !strings.HasPrefix(reply, "250"):
			t.Errorf("%s: refused: %q", m.Name, reply)
		case !m.Refused:
			stored++
		}
	}
	check := func(when string) {
		t.Helper()
		c, err := imapclient.DialInsecure(d.addr(p.IMAP), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Login("alice@example.test", "demo-alice").Wait(); err != nil {
			t.Fatal(err)
		}
		sel, err := c.Select("INBOX", nil).Wait()
		if err != nil || int(sel.NumMessages) != stored {
			t.Fatalf("%s: INBOX holds %v of %d stored messages (%v)", when, sel, stored, err)
		}
		msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
			Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}, RFC822Size: true,
		}).Collect()
		if err != nil || len(msgs) != stored {
			t.Fatalf("%s: FETCH 1:* answered %d of %d messages: %v", when, len(msgs), stored, err)
		}
	}
	check("after the corpus")
	d.stop()
	d = startDaemon(t, dir, p, "-config", cfg)
	check("after a restart")
	if strings.Contains(d.log.String(), "level=ERROR") {
		t.Errorf("the daemon logged an error:\n%s", d.log.String())
	}
}
