package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/supportgate/supportgate/store"
)

// queueReplyFrom queues a reply to rcpt with return path mailFrom; "" is the
// null return path the gateway gives an automatic acknowledgement (RFC 3834
// 3.3).
func queueReplyFrom(t *testing.T, s store.Store, mailFrom, rcpt string) store.Outbound {
	t.Helper()
	return queueReplyWith(t, s, 0, func(int64) string { return mailFrom }, rcpt)
}

// TestNullSenderOverRelay: a message queued with an empty return path is
// sent with MAIL FROM:<>, not a VERP address; one queued with a return
// path still gets its recipient's VERP address.
func TestNullSenderOverRelay(t *testing.T) {
	f := startFakeSMTP(t)
	s := openStore(t)
	queueReplyFrom(t, s, "", "ack@example.com")
	queueReplyFrom(t, s, "bounces+x@support.example.com", "reply@example.com")
	runWorker(t, s, &RelayTransport{Hostname: "sg.test", Relay: f.Addr}, time.Second, time.Hour)
	waitState(t, s, map[string]store.RecipientState{
		"ack@example.com": store.RecipientDelivered, "reply@example.com": store.RecipientDelivered})
	from := map[string]string{}
	for _, r := range f.received() {
		from[r.To] = r.From
	}
	if mf, ok := from["ack@example.com"]; !ok || mf != "" {
		t.Errorf("the null-sender message came with MAIL FROM:<%s> (received %v), want MAIL FROM:<>", mf, ok)
	}
	if mf := from["reply@example.com"]; !strings.HasPrefix(mf, "bounces+") || !strings.HasSuffix(mf, "@support.example.com") {
		t.Errorf("the reply came with MAIL FROM:<%s>, want its VERP address", mf)
	}
	if rp := (&Worker{Keys: testKeys}).returnPath(store.QueuedRecipient{Message: 1, Number: 1}); rp != "" {
		t.Errorf("returnPath of an empty MailFrom = %q, want \"\"", rp)
	}
}

// TestNullSenderInDirectory: directory mode writes "mail_from": "" for a
// message with a null return path.
func TestNullSenderInDirectory(t *testing.T) {
	s := openStore(t)
	dir := t.TempDir()
	queueReplyFrom(t, s, "", "ack@example.com")
	ds := pending(t, s)
	if len(ds) != 1 {
		t.Fatalf("%d deliveries pending, want 1", len(ds))
	}
	if err := worker(s, dir).Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, fmt.Sprint(ds[0].ID)+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if mf, ok := raw["mail_from"]; !ok || mf != "" {
		t.Errorf(".json is %s, want \"mail_from\": \"\"", data)
	}
}
