package policy

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func TestChildThreadIndex(t *testing.T) {
	parent := "AQHbjLkTzKxYgnb4UEWnrS1cOq2XjQ=="
	pb, _ := base64.StdEncoding.DecodeString(parent)
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	child, ok := ChildThreadIndex(parent, now)
	if !ok {
		t.Fatalf("ChildThreadIndex(%q) refused a 22-byte index", parent)
	}
	cb, err := base64.StdEncoding.DecodeString(child)
	if err != nil || len(cb) != len(pb)+5 || !strings.HasPrefix(string(cb), string(pb)) {
		t.Fatalf("child %q is not the parent plus 5 bytes", child)
	}
	if cb[22]&0x80 != 0 {
		t.Errorf("the child block's high bit is set")
	}
	grand, ok := ChildThreadIndex(child, now.Add(time.Hour))
	if gb, _ := base64.StdEncoding.DecodeString(grand); !ok || len(gb) != 32 {
		t.Errorf("grandchild of a 27-byte index: %q %v", grand, ok)
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(make([]byte, 10)), base64.StdEncoding.EncodeToString(make([]byte, 25))} {
		if _, ok := ChildThreadIndex(bad, now); ok {
			t.Errorf("ChildThreadIndex(%q) accepted an invalid index", bad)
		}
	}
}

func TestRewriteAddsThreadIndex(t *testing.T) {
	r := ReplyRewrite{To: "o@x", ReplyTo: "s+1@x", MessageID: "m@x", InboxAddress: "s@x",
		ThreadIndex: &ThreadIndexHeader{Index: "AQHbjLkTzKxYgnb4UEWnrS1cOq2XjQ==", Topic: "Printer on fire"}}
	out, err := r.Rewrite([]byte("Subject: Re: Printer on fire\r\n\r\nbody\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "\r\nThread-Index: AQHbjLkTzKxYgnb4UEWnrS1cOq2XjQ==\r\n") || !strings.Contains(string(out), "\r\nThread-Topic: Printer on fire\r\n") {
		t.Errorf("Thread-Index/Topic not added:\n%s", out)
	}
	// A client's own Thread-Index wins.
	out, _ = r.Rewrite([]byte("Thread-Index: AQHZZZZZ\r\nSubject: x\r\n\r\nbody\r\n"))
	if strings.Count(string(out), "Thread-Index:") != 1 || !strings.Contains(string(out), "AQHZZZZZ") {
		t.Errorf("the client's Thread-Index was replaced:\n%s", out)
	}
}
