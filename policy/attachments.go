package policy

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	gomessage "github.com/emersion/go-message"

	"github.com/supportgate/supportgate/config"
)

// Refusal is a policy's "no", with a sentence for the agent.
type Refusal struct{ Msg string }

func (r *Refusal) Error() string { return r.Msg }

// CheckAttachments applies an inbox's attachment limits to an agent's
// message (DESIGN.md §5 item 8): the decoded size of each attachment and its
// media type. A part is an attachment when its Content-Disposition says so
// or it has a file name.
func CheckAttachments(inbox config.Inbox, raw []byte) error {
	if inbox.MaxAttachmentBytes == 0 && len(inbox.RefusedAttachmentTypes) == 0 {
		return nil
	}
	ent, err := gomessage.Read(bytes.NewReader(raw))
	if ent == nil {
		return nil // unreadable MIME: nothing to recognise as an attachment
	}
	_ = err
	var refusal error
	WalkParts(ent, func(part *gomessage.Entity) bool {
		if refusal != nil {
			return false
		}
		disp, dparams, _ := part.Header.ContentDisposition()
		mt, cparams, _ := part.Header.ContentType()
		name := dparams["filename"]
		if name == "" {
			name = cparams["name"]
		}
		if strings.HasPrefix(mt, "multipart/") || (disp != "attachment" && name == "") {
			return true
		}
		if name == "" {
			name = "an attachment"
		}
		if inbox.RefusedAttachmentType(mt) {
			refusal = &Refusal{fmt.Sprintf("Nothing was sent: %s is of type %s, which %s does not send", quoteName(name), mt, inbox.Address)}
			return false
		}
		if max := inbox.MaxAttachmentBytes; max > 0 {
			n, _ := io.Copy(io.Discard, io.LimitReader(part.Body, max+1))
			if n > max {
				refusal = &Refusal{fmt.Sprintf("Nothing was sent: %s is larger than the %d bytes %s allows for an attachment", quoteName(name), max, inbox.Address)}
			}
		}
		return refusal == nil
	})
	return refusal
}

// quoteName makes a file name safe for an SMTP reply line.
func quoteName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return fmt.Sprintf("%q", s)
}
