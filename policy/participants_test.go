package policy

import (
	"reflect"
	"strings"
	"testing"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/domain"
)

func TestPeopleFromInbound(t *testing.T) {
	cfg := testConfig(t)
	const owner = "ann@customer.example"
	tests := []struct {
		name    string
		current []string
		role    domain.SenderRole
		auto    bool
		to, cc  []string
		max     int
		want    InboundPeople
	}{
		{"owner's Cc joins", nil, domain.SenderOwner, false, []string{"support@example.test"}, []string{"Ben@Customer.example"}, 2,
			InboundPeople{Participants: []string{"ben@customer.example"}}},
		{"participant's Cc joins", []string{"ben@customer.example"}, domain.SenderParticipant, false, nil, []string{"cat@customer.example"}, 2,
			InboundPeople{Participants: []string{"cat@customer.example"}}},
		{"over the cap", []string{"ben@customer.example"}, domain.SenderOwner, false, nil, []string{"cat@x.example", "dan@x.example"}, 2,
			InboundPeople{Participants: []string{"cat@x.example"}, OverCap: []string{"dan@x.example"}}},
		{"support addresses, plus forms and bounces never join", nil, domain.SenderOwner, false,
			[]string{"support@example.test", "billing+42-abc@example.test", "bounces+1-x@example.test"}, nil, 5, InboundPeople{}},
		{"an agent copied becomes a follower", nil, domain.SenderOwner, false, nil, []string{"alice@example.test"}, 5,
			InboundPeople{Followers: []string{"alice@example.test"}}},
		{"owner and existing participants are not added again", []string{"ben@customer.example"}, domain.SenderOwner, false,
			[]string{owner, "BEN@customer.example"}, nil, 5, InboundPeople{}},
		{"a stranger adds nobody", nil, domain.SenderStranger, false, nil, []string{"cat@x.example"}, 5, InboundPeople{}},
		{"an auto-reply adds nobody", nil, domain.SenderOwner, true, nil, []string{"cat@x.example"}, 5, InboundPeople{}},
		{"cap 0", nil, domain.SenderOwner, false, nil, []string{"cat@x.example"}, 0, InboundPeople{OverCap: []string{"cat@x.example"}}},
	}
	for _, tt := range tests {
		got := PeopleFromInbound(cfg, owner, tt.current, tt.role, tt.auto, tt.to, tt.cc, tt.max)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestCheckAttachments(t *testing.T) {
	msg := func(ctype, disp, body string) []byte {
		return []byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
			"--b\r\nContent-Type: " + ctype + "\r\nContent-Disposition: " + disp + "\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body + "\r\n--b--\r\n")
	}
	in := config.Inbox{Address: "support@example.test", MaxAttachmentBytes: 10, RefusedAttachmentTypes: []string{"application/x-msdownload", "video/*"}}
	tests := []struct {
		name, ctype, disp, body, want string
	}{
		{"small pdf", "application/pdf", `attachment; filename="a.pdf"`, "aGVsbG8=", ""},
		{"too large", "application/pdf", `attachment; filename="big.pdf"`, "aGVsbG8gd29ybGQgaGVsbG8=", `"big.pdf" is larger than the 10 bytes`},
		{"refused type", "application/x-msdownload", `attachment; filename="setup.exe"`, "aGk=", `"setup.exe" is of type application/x-msdownload`},
		{"refused wildcard, inline with a name", "video/mp4", `inline; filename="clip.mp4"`, "aGk=", "video/mp4"},
		{"inline image without name is not an attachment", "image/png", "inline", "aGVsbG8gd29ybGQgaGVsbG8=", ""},
	}
	for _, tt := range tests {
		err := CheckAttachments(in, msg(tt.ctype, tt.disp, tt.body))
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if err := CheckAttachments(config.Inbox{}, msg("video/mp4", "attachment", "aGk=")); err != nil {
		t.Errorf("no limits configured: %v", err)
	}
}

// FuzzCheckAttachments: whatever MIME an agent's client sends (nested
// without end, broken encodings), the check ends, and a refusal is one line
// that can go into an SMTP reply.
func FuzzCheckAttachments(f *testing.F) {
	nested := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
	for range 50 {
		nested += "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
	}
	nested += "Content-Type: video/mp4\r\nContent-Disposition: attachment; filename=\"a\r\n.mp4\"\r\n\r\nxx\r\n--b--\r\n"
	f.Add([]byte(nested))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pdf; name=\"x\x00y.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!\r\n--b--\r\n"))
	in := config.Inbox{Address: "support@example.test", MaxAttachmentBytes: 10, RefusedAttachmentTypes: []string{"video/*"}}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := CheckAttachments(in, raw); err != nil && strings.ContainsAny(err.Error(), "\r\n\x00") {
			t.Fatalf("a refusal that is not one safe line: %q", err.Error())
		}
	})
}
