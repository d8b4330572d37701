package policy

import (
	"bytes"
	"testing"
)

func TestWithoutField(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"From: a@x\r\nReply-To: b@x\r\nSubject: s\r\n\r\nReply-To: body\r\n", "From: a@x\r\nSubject: s\r\n\r\nReply-To: body\r\n"},
		{"reply-to : b@x,\r\n\tc@x\r\nFrom: a@x\r\n\r\nbody", "From: a@x\r\n\r\nbody"},
		{"From: a@x\r\nReply-To: b@x\r\nReply-To: c@x\r\n\r\n", "From: a@x\r\n\r\n"},
		{"From: a@x\r\nReply-Tox: b@x\r\n\r\n", "From: a@x\r\nReply-Tox: b@x\r\n\r\n"},
		{"From: a@x\nReply-To: b@x\n\nbody", "From: a@x\n\nbody"},
		{"Reply-To: b@x", ""},
		{"", ""},
		{"no header at all", "no header at all"},
	} {
		got, cut := WithoutField([]byte(tc.in), "Reply-To")
		if string(got) != tc.want || cut != len(tc.in)-len(tc.want) {
			t.Errorf("%q:\n got %q (cut %d)\nwant %q", tc.in, got, cut, tc.want)
		}
	}
}

func TestIsClientKeyword(t *testing.T) {
	for _, k := range []string{"Junk", "junk", "NonJunk", "nonjunk", "$Junk", "$NotJunk", "$Phishing", "$Forwarded", "$MDNSent", "$SubmitPending", "$Submitted", "$JUNK"} {
		if !IsClientKeyword(k) {
			t.Errorf("%s is a client's bookkeeping", k)
		}
	}
	for _, k := range []string{"urgent", "$label1", `\Flagged`, `\Answered`, "billing", "JunkMail"} {
		if IsClientKeyword(k) {
			t.Errorf("%s is not a client's bookkeeping", k)
		}
	}
}

// FuzzWithoutField: the cut is what was removed, the rest keeps its order
// and the body, and no field of the name is left in the header.
func FuzzWithoutField(f *testing.F) {
	f.Add([]byte("From: a@x\r\nReply-To: b@x\r\n\tc\r\n\r\nbody"))
	f.Add([]byte("Reply-To:\n\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		in := bytes.Clone(msg)
		out, cut := WithoutField(msg, "Reply-To")
		if !bytes.Equal(in, msg) {
			t.Fatal("the input was changed")
		}
		if len(out)+cut != len(msg) {
			t.Fatalf("len %d + cut %d != %d", len(out), cut, len(msg))
		}
		again, cut2 := WithoutField(out, "Reply-To")
		if cut2 != 0 || !bytes.Equal(again, out) {
			t.Fatalf("a second cut removed %d more bytes from %q", cut2, out)
		}
	})
}
